"""Staging of normalized vehicles: gzipped JSON lines under an ``ObjectStoragePath``.

``OD_STAGING_URL`` (or ``[od_scheduler] staging_url``) is the root: a local folder by default,
``s3://bucket/prefix`` in a cluster (give ``staging_conn_id`` for the credentials). A pull writes one file
per (platform, dealer, run); the ingest reads it back and checks its SHA-256, so a truncated or swapped
file is caught instead of ingested.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from airflow.sdk import ObjectStoragePath

from od_scheduler.exceptions import PayloadError
from od_scheduler.models.vehicle import Vehicle
from od_scheduler.settings import get_settings

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_component(value: str) -> str:
    """A path component from a run id or dealer id (run ids contain ``:`` and ``+``)."""
    return _UNSAFE.sub("_", value).strip("_") or "_"


def staging_root(url: str | None = None) -> ObjectStoragePath:
    """The staging root as an ObjectStoragePath (a bare local path becomes ``file://``)."""
    url = url or get_settings().staging_url
    if "://" not in url:
        url = "file://" + url
    return ObjectStoragePath(url)


def staging_path(platform: str, dealer_id: str, run_id: str, *, root: str | None = None) -> ObjectStoragePath:
    """Where a pull stages one dealer's vehicles for one run."""
    return (
        staging_root(root)
        / safe_component(platform)
        / safe_component(dealer_id)
        / f"{safe_component(run_id)}.jsonl.gz"
    )


def write_vehicles(path: ObjectStoragePath, vehicles: Iterable[Vehicle]) -> tuple[int, str]:
    """Stream vehicles to ``path``; returns (count, sha256 of the file's bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    count = 0

    class _Hashing:
        """File wrapper hashing what gzip writes, so the checksum needs no second read."""

        def __init__(self, raw: Any) -> None:
            self.raw = raw

        def write(self, data: bytes) -> int:
            digest.update(data)
            return int(self.raw.write(data))

        def flush(self) -> None:
            self.raw.flush()

    with path.open("wb") as raw, gzip.GzipFile(fileobj=_Hashing(raw), mode="wb", mtime=0) as gz:
        for vehicle in vehicles:
            gz.write(json.dumps(vehicle.to_api(), sort_keys=True).encode() + b"\n")
            count += 1
    return count, digest.hexdigest()


def read_vehicles(path: ObjectStoragePath, *, checksum: str | None = None) -> Iterator[Vehicle]:
    """Read staged vehicles back, verifying the checksum first when given."""
    if not path.exists():
        raise PayloadError(f"staged file {path} does not exist (cleaned up, or the pull wrote elsewhere)")
    if checksum is not None:
        digest = hashlib.sha256()
        with path.open("rb") as raw:
            for chunk in iter(lambda: raw.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != checksum:
            raise PayloadError(
                f"staged file {path} has checksum {digest.hexdigest()}, expected {checksum}: "
                "it changed after the pull; re-run the pull"
            )
    with path.open("rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz:
        for lineno, line in enumerate(gz, start=1):
            try:
                yield Vehicle.from_api(json.loads(line))
            except ValueError as err:
                raise PayloadError(f"staged file {path} line {lineno} is not a valid vehicle: {err}") from err
