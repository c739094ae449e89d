"""Staging of normalized vehicles: gzipped JSON lines under an ``ObjectStoragePath``.

``OD_STAGING_URL`` (or ``[od_scheduler] staging_url``) is the root: a local folder by default,
``s3://bucket/prefix`` in a cluster, with ``[od_scheduler] staging_conn_id`` naming the connection that
holds the store's credentials (an ``aws`` connection for S3; its ``endpoint_url`` extra for an
S3-compatible server). The connection id travels inside each staged file's URL
(``s3://<conn_id>@bucket/...``, Airflow's ``ObjectStoragePath`` syntax), so the ingest, on whichever
worker it runs, opens the file with the same credentials. The ingest reads a staged file back and checks
its SHA-256, so a truncated or swapped file is caught instead of ingested.

**One file per pull attempt, written once.** A pull stages to
``<root>/<platform>/<dealer>/<run>.try<N>.<random>.jsonl.gz``: unique per (run, dealer, try) and, through
the random part, even per copy of one try (a zombie task still running beside the retry that replaced it
carries the same try number). Each attempt's XCom summary names its own file and checksum, so no attempt
can overwrite the file another attempt's ingest reads — with one shared name per run, a zombie's late
write changed the bytes under the retry's checksum and failed the ingest for the rest of the run.

How the write is made atomic depends on the store, and a name unique per attempt is what makes that
portable:

- ``file://`` (and other filesystems with a real rename): write ``_writing.<name>`` beside the final
  name, then rename it onto the final name — an atomic ``rename(2)`` on one filesystem, so nobody ever
  sees a half-written final file;
- object stores (``s3://``, ``gs://``, ...): there is no atomic rename (it is copy + delete), but an object
  appears only once its upload completes, so the final key is written directly, once. Because the key is
  unique per attempt, "written once" holds without conditional writes. On S3 and GCS the upload is opened
  with ``autocommit=False`` and committed only after the last byte: a write that fails midway is
  discarded (its multipart upload aborted) instead of closing, and so publishing, a truncated file under
  the final key. A pull killed outright leaves at most an unfinished multipart upload, which is not an
  object (give the bucket a lifecycle rule that aborts incomplete uploads after a day).

Abandoned ``_writing.*`` files (a pull killed mid-write) end in ``.jsonl.gz`` too, so
``maintenance_cleanup`` prunes them with the staged files once they pass the retention.

**Two kinds of line.** A vehicle line is a canonical vehicle (``Vehicle.to_api()`` as JSON; key order,
spacing and escaping are not part of the format: files written before issue 12 have sorted keys and
ASCII escapes, later ones compact UTF-8 in field order, and both read back the same). After the vehicles,
one line ``{"rejected_vin": "<VIN>"}`` per record the pull rejected whose VIN was readable: such a vehicle
is still on the lot (only its record is unusable), so the ingest counts it present, never missing
(:func:`read_staged`). The checksum covers both kinds; :func:`read_vehicles` yields only the vehicles.

**Reading back: validated in full, unless the checksum vouches for the bytes.** A staged file is input
like any other. Read with the checksum the pull recorded, the file is first copied to a private temporary
file while its sha256 is computed, and only that copy is parsed, so the bytes parsed are exactly the bytes
verified (a file swapped between the check and the read cannot slip through). When the sha256 matches,
the bytes are the ones ``write_vehicles`` produced from validated ``Vehicle`` objects, and the checksum
came from the pull's XCom (Airflow's metadata database, not the staging store): the lines are turned back
into vehicles without running the validators a second time (:meth:`Vehicle.from_verified_staging`).
Any change to the file — truncation, a swapped or edited byte — fails the checksum and nothing is read.
Without a checksum, every line is validated in full as before.

The files are ordinary gzip, written and read with ISA-L (``isal.igzip``, the ``gzip`` module's interface
and format): a quarter of zlib's CPU at its fastest level for files 10 % smaller (bench/README.md). Files
written by zlib before read back the same. They live for one run: speed matters more than size.
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
