"""Fingerprint builders shared by the tests of the ingest's pure decisions (``delta``, ``ingest_plan``)."""

from __future__ import annotations

from od_scheduler.delta import NEW, Fingerprint
from od_scheduler.models.vehicle import HASH_VERSION, Vehicle


def rejected_content(vehicle: Vehicle, reason: str, base: Fingerprint = NEW) -> Fingerprint:
    """The job history's fingerprint once the Data API rejected ``vehicle``'s content for ``reason``;
    ``base`` is what it knew of the VIN before (the content the Data API holds, live or not)."""
    return Fingerprint(
        content_hash=base.content_hash,
        hash_version=base.hash_version,
        live=base.live,
        revision=base.revision,
        rejected_hash=vehicle.content_hash(),
        rejected_hash_version=HASH_VERSION,
        rejected_reason=reason,
    )
