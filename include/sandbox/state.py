"""All sandbox state, in memory: lots, fault profiles and counters, the request log, the Data API store.

One ``SandboxState`` per app. Handlers are ``async`` and never await while mutating state, so the
single event loop serialises every change without locks.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import Request

from include.sandbox.config import SandboxConfig
from include.sandbox.dealers import DEALERS, DealerSpec, fleet_dealers
from include.sandbox.faults import CLEAN, FaultCounters, FaultDecision, FaultProfile
from include.sandbox.lots import Lot, SourceVehicle, generate_lot, generate_vehicles

SERVICE_TARGETS: tuple[str, ...] = ("cms", "data_api", "webhook")
"""Fault targets that are whole services rather than one dealer."""


@dataclass
class Exchange:
    """One request as the log records it; handlers fill in what they learn."""

    service: str
    method: str
    path: str
    dealer: str | None = None
    dealer_slug: str | None = None
    idempotency_key: str | None = None
    n_vehicles: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    status: int | None = None
    ts: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))

    def for_dealer(self, dealer: DealerSpec) -> None:
        self.dealer, self.dealer_slug = dealer.id, dealer.slug

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "dealer": self.dealer,
            "dealer_slug": self.dealer_slug,
            "idempotency_key": self.idempotency_key,
            "n_vehicles": self.n_vehicles,
            "detail": self.detail,
            "ts": self.ts,
        }


@dataclass
class StoredVehicle:
    """The Data API's latest copy of one (dealer_id, source, vin)."""

    vehicle: dict[str, Any]
    delisted: bool = False
    writes: int = 1


@dataclass
class CachedResponse:
    """An applied batch, replayed for the same Idempotency-Key and body."""

    body_hash: str
    status: int
    body: dict[str, Any]


class DataApiStore:
    """What the Open Dealer Data API has received: vehicles, idempotency cache, counters."""

    def __init__(self) -> None:
        self.vehicles: dict[tuple[str, str, str], StoredVehicle] = {}
        self.idempotency: dict[str, CachedResponse] = {}
        self.reject_vins: dict[str, str] = {}
        self.stats: dict[str, int] = {}
        self.reset()

    def reset(self) -> None:
        self.vehicles.clear()
        self.idempotency.clear()
        self.reject_vins.clear()
        self.stats = {
            "batch_calls": 0,
            "batches_applied": 0,
            "batches_replayed": 0,
            "delist_calls": 0,
            "vehicles_processed": 0,
            "vehicles_rejected": 0,
            "vehicles_delisted": 0,
        }

    def snapshot(self) -> dict[str, int]:
        live = sum(1 for stored in self.vehicles.values() if not stored.delisted)
        return {
            **self.stats,
            "vehicles_stored": len(self.vehicles),
            "vehicles_live": live,
            "vehicles_delisted_now": len(self.vehicles) - live,
        }


class SandboxState:
    """The mutable world behind one sandbox app."""

    def __init__(self, config: SandboxConfig, dealers: Iterable[DealerSpec] = DEALERS) -> None:
        self.config = config
        fleet = fleet_dealers(config.fleet, vehicles=config.fleet_vehicles, latency_s=config.fleet_latency_s)
        self.dealers: tuple[DealerSpec, ...] = (*(() if config.fleet_only else dealers), *fleet)
        self._by_key = {key: d for d in self.dealers for key in (d.slug, d.id)}
        self._seeded_vins: set[str] = set()
        # Each dealer's lot is generated once, in table order (VINs are unique across dealers).
        self._seeded_lots: dict[str, tuple[SourceVehicle, ...]] = {
            dealer.id: generate_lot(dealer, config.seed, self._seeded_vins) for dealer in self.dealers
        }
        self.seeded_faults: dict[str, FaultProfile] = {
            dealer.id: dealer.fault for dealer in self.dealers if dealer.fault is not None
        }
        self.counters = FaultCounters()
        self.data_api = DataApiStore()
        self.lots: dict[tuple[str, str], Lot] = {}
        self.faults: dict[str, FaultProfile] = {}
        self.request_log: list[Exchange] = []
        #: JSON bodies received by the alert webhook (``include/sandbox/webhook.py``), oldest first.
        self.webhook_alerts: list[dict[str, Any]] = []
        self._taken_vins: set[str] = set()
        self.reset()

    # --- lifecycle ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the seeded world: lots, faults, counters, log and Data API store."""
        self.lots = {
            (platform, dealer.id): Lot(self._seeded_lots[dealer.id])
            for dealer in self.dealers
            for platform in dealer.platforms
        }
        self._taken_vins = set(self._seeded_vins)
        self.faults = dict(self.seeded_faults)
        self.counters.reset()
        self.request_log.clear()
        self.data_api.reset()
        self.webhook_alerts.clear()

    # --- dealers and lots -----------------------------------------------------------------------
    def dealer(self, key: str) -> DealerSpec | None:
        """A dealer by slug or id (only dealers of this state's table)."""
        return self._by_key.get(key)

    def lot(self, platform: str, dealer: DealerSpec) -> Lot | None:
        return self.lots.get((platform, dealer.id))

    def add_arrivals(
        self, platform: str, dealer: DealerSpec, *, new: int, used: int, certified: int
    ) -> list[str]:
        """New vehicles on the lot, as deterministic as the seeded ones; returns their VINs."""
        lot = self.lots[(platform, dealer.id)]
        rng = random.Random(f"{self.config.seed}:{dealer.slug}:{platform}:arrivals:{lot.additions}")
        vehicles = generate_vehicles(dealer, rng, self._taken_vins, new=new, used=used, certified=certified)
        lot.add(vehicles)
        return [v.vin for v in vehicles]

    # --- faults ---------------------------------------------------------------------------------
    def fault_target(self, name: str) -> str | None:
        """The counter key of a fault target: a service name, or a dealer's id (from slug or id)."""
        if name in SERVICE_TARGETS:
            return name
        dealer = self.dealer(name)
        return dealer.id if dealer else None

    def profile(self, target: str) -> FaultProfile:
        return self.faults.get(target, CLEAN)

    def set_profile(self, target: str, profile: FaultProfile | None) -> None:
        """Replace a target's profile (``None`` restores the seeded one); its counter restarts."""
        if profile is None:
            self.faults.pop(target, None)
            if target in self.seeded_faults:
                self.faults[target] = self.seeded_faults[target]
        else:
            self.faults[target] = profile
        self.counters.reset(target)

    def decide(self, target: str) -> FaultDecision:
        return self.counters.decide(target, self.profile(target))

    # --- request log ----------------------------------------------------------------------------
    def begin(self, request: Request, service: str) -> Exchange:
        return Exchange(service=service, method=request.method, path=request.url.path)

    def finish(self, exchange: Exchange, status: int) -> None:
        exchange.status = status
        self.request_log.append(exchange)
        overflow = len(self.request_log) - self.config.request_log_limit
        if overflow > 0:
            del self.request_log[:overflow]
