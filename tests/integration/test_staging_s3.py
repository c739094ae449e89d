"""Staging on an S3-compatible store (moto's server): the object-store half of ``od_scheduler.staging``,
and ``maintenance_cleanup``'s pruning of it.

The staging root comes from ``[od_scheduler] staging_url`` and the credentials from the connection named
by ``staging_conn_id``; the connection id travels inside every staged file's URL, so a reader on another
worker (which only has the URL from XCom) opens it with the same credentials. A file is uploaded under its
final key and committed only after its last byte (no ``_writing.`` name, no rename, which S3 does not
have); a write that fails midway leaves neither an object nor an unfinished multipart upload.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import pytest

from od_scheduler.exceptions import PayloadError
from od_scheduler.models.vehicle import Vehicle
from od_scheduler.settings import get_settings
from od_scheduler.staging import WRITING_PREFIX, read_staged, staging_path, write_vehicles
from tests.s3server import S3Server

pytestmark = pytest.mark.integration

CONN_ID = "od_test_staging_s3"
BUCKET = "od-staging-test"
RUN_ID = "manual__2026-03-02T09:00:00+00:00"
VINS = ("1HGCM82633A004352", "1FTFW1E57DFC10312", "5TDZA23C56S471623")


def vehicle(vin: str, price: int = 20_000) -> Vehicle:
    return Vehicle(dealer_id="d-1", source="cobalt", vin=vin, year=2021, make="Honda", price=price)


@pytest.fixture
def s3_root(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh prefix in the test bucket as the staging root, with the staging connection configured."""
    import json

    s3 = s3_server.client()
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    root = f"s3://{BUCKET}/{uuid.uuid4().hex}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(s3_server.connection()))
    monkeypatch.setenv("AIRFLOW__OD_SCHEDULER__STAGING_CONN_ID", CONN_ID)
    monkeypatch.setenv("OD_STAGING_URL", root)
    get_settings.cache_clear()
    yield root
    get_settings.cache_clear()


def keys(s3_server: S3Server, prefix: str) -> list[str]:
    listed = s3_server.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_a_staged_file_is_one_object_under_its_final_key_readable_from_its_url_alone(
    s3_server: S3Server, s3_root: str
) -> None:
    from airflow.sdk import ObjectStoragePath

    prefix = s3_root.removeprefix(f"s3://{BUCKET}/")
    path = staging_path("cobalt", "d-1", RUN_ID, try_number=1)  # root from the settings
    assert str(path).startswith(f"s3://{CONN_ID}@{BUCKET}/{prefix}/cobalt/d-1/")
    count, checksum = write_vehicles(path, [vehicle(v) for v in VINS], rejected_vins=["JUNK0000000000000"])
    assert count == 3

    key = f"{prefix}/cobalt/d-1/{path.name}"
    assert keys(s3_server, prefix) == [key]
    body = s3_server.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == checksum  # the checksum is of the bytes S3 holds
    written = [r for r in s3_server.requests() if r.bucket == BUCKET and r.key.startswith(prefix)]
    assert not any(WRITING_PREFIX in r.key for r in written), "no temporary name: S3 has no rename"
    assert not any(r.method == "PUT" and "x-id=CopyObject" in r.query for r in written)

    # What an ingest on another worker does: the URL from XCom is all it has.
    staged = read_staged(ObjectStoragePath(str(path)), checksum=checksum)
    assert [v.vin for v in staged.vehicles] == list(VINS)
    assert staged.rejected_vins == {"JUNK0000000000000"}
    reads = [r for r in s3_server.requests() if r.key == key and r.method == "GET"]
    assert reads, "the reader fetched the object from S3"
    assert all(r.status in (200, 206) for r in reads)


def test_a_write_that_fails_midway_leaves_no_object_and_no_unfinished_upload(
    s3_server: S3Server, s3_root: str
) -> None:
    prefix = s3_root.removeprefix(f"s3://{BUCKET}/")
    path = staging_path("cobalt", "d-1", RUN_ID, try_number=1)

    def vehicles() -> Iterator[Vehicle]:
        yield vehicle(VINS[0])
        raise RuntimeError("the feed went away mid-pull")

    with pytest.raises(RuntimeError, match="went away"):
        write_vehicles(path, vehicles())
    assert keys(s3_server, prefix) == []
    uploads = s3_server.client().list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    assert uploads.get("Uploads", []) == []
    aborted = [
        r
        for r in s3_server.requests()
        if r.key.startswith(prefix) and r.method == "DELETE" and "uploadId=" in r.query
    ]
    assert len(aborted) == 1, "the upload was aborted, not completed and then deleted"
    with pytest.raises(PayloadError, match="does not exist"):
        read_staged(path)


def test_maintenance_cleanup_prunes_staged_objects_past_the_retention(
    s3_server: S3Server, s3_root: str
) -> None:
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from od_scheduler.operators.cleanup import PruneStagingOperator

    prefix = s3_root.removeprefix(f"s3://{BUCKET}/")
    path = staging_path("cobalt", "d-1", RUN_ID, try_number=1)
    write_vehicles(path, [vehicle(VINS[0])])

    def run(days_later: int, **kwargs: object) -> dict[str, object]:
        context = {"dag_run": SimpleNamespace(run_after=datetime.now(UTC) + timedelta(days=days_later))}
        return PruneStagingOperator(task_id="prune_staging", retention_days=1, **kwargs).execute(context)

    assert run(0)["kept"] == 1  # younger than a day
    assert run(2, dry_run_only=True)["eligible"] == 1
    assert keys(s3_server, prefix) == [f"{prefix}/cobalt/d-1/{path.name}"]
    result = run(2)
    assert (result["deleted"], result["root"]) == (1, f"s3://{CONN_ID}@{BUCKET}/{prefix}")
    assert keys(s3_server, prefix) == []
