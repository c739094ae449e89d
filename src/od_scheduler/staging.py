"""Staging of normalized vehicles: gzipped JSON lines under an ``ObjectStoragePath``.

The root is ``OD_STAGING_URL`` (or ``[od_scheduler] staging_url``; ``staging_conn_id`` for the store's
credentials). A pull writes one file per attempt, once (renamed into place on a filesystem, committed after
the last byte on an object store); vehicle lines are followed by one ``{"rejected_vin": ...}`` line per
rejected record with a readable VIN. Reading back verifies the SHA-256 the pull recorded before anything
is parsed. Why: docs/design.md, "Staging".
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from airflow.sdk import ObjectStoragePath
from airflow.sdk.io import attach
from fsspec.implementations.local import LocalFileSystem
from isal import igzip
from pydantic_core import from_json

from od_scheduler.exceptions import PayloadError
from od_scheduler.models.vehicle import Vehicle
from od_scheduler.settings import get_settings

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Suffix of every staged file (``maintenance_cleanup`` globs ``*`` + this).
SUFFIX = ".jsonl.gz"
#: Prefix of a file still being written (local filesystems); renamed away once complete.
WRITING_PREFIX = "_writing."
#: Filesystems where a rename within one directory is atomic.
RENAMING_PROTOCOLS = ("file", "local")
#: Object stores whose fsspec files take ``autocommit=False`` and then ``commit()`` or ``discard()``.
DEFERRED_COMMIT_PROTOCOLS = ("s3", "s3a", "gs", "gcs")
#: Key of a staged line naming the VIN of a record the pull rejected (not a vehicle).
REJECTED_VIN = "rejected_vin"
#: ISA-L's compression level of staged files (0-3; 2 is its default, and on the bench as fast as 1).
COMPRESSLEVEL = 2
#: Lines are handed to gzip in chunks of about this many bytes (one call per line cost more than zlib).
_CHUNK = 1 << 16


#: Schemes of a local staging folder (Airflow's own names for fsspec's local filesystem).
LOCAL_PROTOCOLS = ("file", "local")


def attach_local(protocol: str) -> None:
    """Give a local staging folder its filesystem directly, once per process.

    Airflow finds a scheme's filesystem by importing every provider's filesystem module first (s3fs and
    boto among them): 0.15 s of CPU in every pull and ingest task, for a local folder that needs none of
    them. ``attach`` with ``fs`` registers the same ``LocalFileSystem()`` Airflow's own ``file`` scheme
    would build; a store attached earlier is kept as it is.
    """
    if protocol in LOCAL_PROTOCOLS:
        attach(protocol, fs=LocalFileSystem())


def safe_component(value: str) -> str:
    """A path component from a run id or dealer id (run ids contain ``:`` and ``+``)."""
    return _UNSAFE.sub("_", value).strip("_") or "_"


def staging_root(url: str | None = None) -> ObjectStoragePath:
    """The staging root as an ObjectStoragePath (a bare local path becomes ``file://``).

    On object storage the root carries ``[od_scheduler] staging_conn_id`` (when set), and so does every
    path under it, its string form included.
    """
    settings = get_settings()
    url = url or settings.staging_url
    if "://" not in url:
        url = "file://" + url
    protocol = url.split("://", 1)[0]
    attach_local(protocol)
    if settings.staging_conn_id and protocol not in RENAMING_PROTOCOLS:
        return ObjectStoragePath(url, conn_id=settings.staging_conn_id)
    return ObjectStoragePath(url)


def staging_path(
    platform: str,
    dealer_id: str,
    run_id: str,
    *,
    try_number: int,
    root: str | None = None,
    token: str | None = None,
) -> ObjectStoragePath:
    """Where one pull attempt stages one dealer's vehicles: unique per run, try and copy of the try.

    ``token`` (default: random) tells two copies of one try apart; give it only to reproduce a name.
    """
    token = safe_component(token) if token else secrets.token_hex(4)
    name = f"{safe_component(run_id)}.try{int(try_number)}.{token}{SUFFIX}"
    return staging_root(root) / safe_component(platform) / safe_component(dealer_id) / name


def write_vehicles(
    path: ObjectStoragePath, vehicles: Iterable[Vehicle], *, rejected_vins: Iterable[str] = ()
) -> tuple[int, str]:
    """Stream vehicles to ``path`` and commit it atomically; returns (count, sha256 of the file's bytes).

    ``rejected_vins`` (VINs of records the pull rejected) is iterated only once ``vehicles`` is exhausted,
    so the pull may fill it while the vehicles stream; ``count`` counts vehicles only.

    On a renaming filesystem the bytes go to ``_writing.<name>`` first and are renamed onto ``path`` once
    complete; on an object store they go to ``path`` itself (an upload is visible only when complete, and
    on S3/GCS only once committed after the last byte). A failed write leaves no file under ``path``.
    ``path`` should be fresh (see :func:`staging_path`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    protocol = str(path.protocol)
    renaming = protocol in RENAMING_PROTOCOLS
    deferred = protocol in DEFERRED_COMMIT_PROTOCOLS
    target = path.with_name(WRITING_PREFIX + path.name) if renaming else path
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

    opened: Any = None
    try:
        opened = target.open("wb", autocommit=False) if deferred else target.open("wb")
        with (
            opened as raw,
            igzip.GzipFile(fileobj=_Hashing(raw), mode="wb", mtime=0, compresslevel=COMPRESSLEVEL) as gz,
        ):
            chunk: list[bytes] = []
            size = 0
            for vehicle in vehicles:
                line = vehicle.to_api_json()
                chunk.append(line)
                size += len(line)
                count += 1
                if size >= _CHUNK:
                    gz.write(b"\n".join(chunk) + b"\n")
                    chunk, size = [], 0
            chunk += [json.dumps({REJECTED_VIN: vin}).encode() for vin in sorted(set(rejected_vins))]
            if chunk:
                gz.write(b"\n".join(chunk) + b"\n")
        if renaming:
            target.rename(path)
        elif deferred:
            opened.commit()  # the object appears now, whole
    except BaseException:
        # Leave nothing half-written behind under either name (best effort: the error is what matters).
        if deferred and opened is not None:
            try:
                opened.discard()  # abort the upload: what was written never becomes an object
            except Exception:
                logger.warning("could not abort the upload of the staged file %s", path, exc_info=True)
        for leftover in (target, path) if renaming else (path,):
            try:
                if leftover.exists():
                    leftover.unlink()
            except OSError:
                logger.warning("could not remove the partly written staged file %s", leftover)
        raise
    return count, digest.hexdigest()


@dataclass
class StagedPull:
    """A staged file read back: the vehicles, and the VINs of records the pull rejected."""

    vehicles: list[Vehicle] = field(default_factory=list)
    rejected_vins: set[str] = field(default_factory=set)


def read_staged(path: ObjectStoragePath, *, checksum: str | None = None) -> StagedPull:
    """Read a staged file back whole (both kinds of line), verifying the checksum first when given."""
    staged = StagedPull()
    for item in _read_lines(path, checksum=checksum):
        if isinstance(item, Vehicle):
            staged.vehicles.append(item)
        else:
            staged.rejected_vins.add(item)
    return staged


def read_vehicles(path: ObjectStoragePath, *, checksum: str | None = None) -> Iterator[Vehicle]:
    """Read staged vehicles back, verifying the checksum first when given."""
    for item in _read_lines(path, checksum=checksum):
        if isinstance(item, Vehicle):
            yield item


def _read_lines(path: ObjectStoragePath, *, checksum: str | None) -> Iterator[Vehicle | str]:
    """Each staged line: a Vehicle, or the VIN of a rejected record (a ``str``)."""
    attach_local(path.protocol)
    if not path.exists():
        raise PayloadError(f"staged file {path} does not exist (cleaned up, or the pull wrote elsewhere)")
    if checksum is None:
        with path.open("rb") as raw:
            yield from _parse(path, raw, verified=False)
        return
    with tempfile.TemporaryFile(prefix="od-staged-") as copy:
        digest = _copy_hashing(path, copy)
        if digest != checksum:
            raise PayloadError(
                f"staged file {path} has checksum {digest}, expected {checksum}: "
                "it changed after the pull; re-run the pull"
            )
        copy.seek(0)
        yield from _parse(path, copy, verified=True)


def _copy_hashing(path: ObjectStoragePath, copy: IO[bytes]) -> str:
    """Copy ``path`` into ``copy`` (a private file) and return the sha256 of the bytes copied."""
    digest = hashlib.sha256()
    with path.open("rb") as raw:
        for chunk in iter(lambda: raw.read(1 << 20), b""):
            digest.update(chunk)
            copy.write(chunk)
    return digest.hexdigest()


def _parse(path: ObjectStoragePath, raw: IO[bytes], *, verified: bool) -> Iterator[Vehicle | str]:
    """The lines of a staged file; ``verified``: its bytes are the ones the pull wrote (module docstring)."""
    loads = from_json if verified else json.loads
    build = Vehicle.from_verified_staging if verified else Vehicle.from_api
    with igzip.GzipFile(fileobj=raw, mode="rb") as gz:
        for lineno, line in enumerate(gz, start=1):
            try:
                data = loads(line)
                if isinstance(data, dict) and len(data) == 1 and REJECTED_VIN in data:
                    yield str(data[REJECTED_VIN])
                    continue
                yield build(data)
            except ValueError as err:
                raise PayloadError(f"staged file {path} line {lineno} is not a valid vehicle: {err}") from err
