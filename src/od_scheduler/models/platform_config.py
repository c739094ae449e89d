"""What every platform's CMS config model shares: the base class and the field types.

A dealer document carries one config object per platform it uses (``cobalt_config``, ...; docs/contracts.md
§1). Each platform's model lives beside its raw vehicle model (``models/<platform>.py``) and is named by its
registry entry (``od_scheduler.platforms``), from which ``models/dealer.py`` validates the documents.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict


def _id_to_str(v: object) -> object:
    # Payload on Postgres uses numeric ids; treat them as the strings the rest of the project expects.
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


def _non_empty(v: str) -> str:
    v = v.strip()
    if not v:
        raise ValueError("must not be empty")
    return v


NonEmptyStr = Annotated[str, BeforeValidator(_id_to_str), AfterValidator(_non_empty)]


class PlatformConfig(BaseModel):
    """Base of a platform's ``<platform>_config`` object: frozen, unknown keys ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)
