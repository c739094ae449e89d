"""Sandbox settings: seed, API keys and the upstream limits it enforces."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_SEED = 42
DEFAULT_CMS_API_KEY = "sandbox-cms-key"
DEFAULT_DATA_API_KEY = "sandbox-data-api-key"


class SandboxConfig(BaseModel):
    """Everything that can differ between two sandboxes. The defaults are what ``make demo`` uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = DEFAULT_SEED
    cms_api_key: str = DEFAULT_CMS_API_KEY
    cms_auth_collection: str = "users"
    cms_default_limit: int = Field(default=10, ge=1)
    data_api_key: str = DEFAULT_DATA_API_KEY
    data_api_max_batch: int = Field(default=500, ge=1)
    dealer_com_max_page_size: int = Field(default=100, ge=1)
    request_log_limit: int = Field(default=100_000, ge=1)
    #: Generated Dealer.com dealers added after the table (``fleet-00001`` …), for benchmarks at scale.
    fleet: int = Field(default=0, ge=0, le=100_000)
    #: Serve only the generated dealers (benchmarks that must not include the table's fault dealers).
    fleet_only: bool = False
    #: Vehicles on each generated dealer's lot (a third new, half used, the rest certified).
    fleet_vehicles: int = Field(default=30, ge=0, le=10_000)
    #: Latency of every request to a generated dealer's site (a fault profile of its own).
    fleet_latency_s: float = Field(default=0.0, ge=0.0, le=30.0)
