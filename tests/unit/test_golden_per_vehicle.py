"""The per-vehicle hot path keeps its exact output: files pinned from the code before issue 12's speed-up.

``tests/unit/golden/`` holds Dealer.com records (sandbox lots, a third mutated with hostile and odd values)
and what the code before the speed-up made of them: the canonical vehicle, its content hash, warnings, or
the reject reason; plus a staged file that code wrote. Four records (URLs urllib refuses) were re-made with
``main``'s code after its hostile-input hardening (see make_golden.py). Fingerprints stored in production are
``HASH_VERSION`` + content hash, so one changed byte here would re-send (or wrongly skip) vehicles.
See ``tests/unit/golden/make_golden.py``; never regenerate these files to make a test pass.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from od_scheduler.exceptions import PayloadError, RecordRejected
from od_scheduler.models.dealer_com import DealerComVehicle
from od_scheduler.models.vehicle import HASH_VERSION, Vehicle
from od_scheduler.staging import read_staged, read_vehicles

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden"


def _rows(name: str) -> list[dict[str, Any]]:
    with gzip.open(GOLDEN / name, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


RECORDS = _rows("dealer_com_records.jsonl.gz")
EXPECTED = _rows("dealer_com_expected.jsonl.gz")


def test_the_golden_files_cover_every_outcome() -> None:
    assert len(RECORDS) == len(EXPECTED) == 300
    kinds = {next(iter(set(e) & {"vehicle", "rejected", "error"})) for e in EXPECTED}
    # No "error" since main's hostile-input hardening: a URL urllib refuses is no longer a ValueError.
    assert kinds == {"vehicle", "rejected"}
    assert HASH_VERSION == 1


@pytest.mark.parametrize("index", range(len(RECORDS)))
def test_each_record_normalizes_to_the_same_vehicle_and_hash(index: int) -> None:
    record, expected = RECORDS[index], EXPECTED[index]
    parsed = DealerComVehicle.model_validate(record["item"])
    if "rejected" in expected:
        with pytest.raises(RecordRejected) as rejected:
            parsed.to_vehicle(dealer_id="golden", base_url=record["base_url"])
        assert rejected.value.reason == expected["rejected"]
        return
    vehicle = parsed.to_vehicle(dealer_id="golden", base_url=record["base_url"])
    assert vehicle.to_api() == expected["vehicle"]
    assert json.dumps(vehicle.to_api(), sort_keys=True) == json.dumps(expected["vehicle"], sort_keys=True)
    assert list(vehicle.warnings) == expected["warnings"]
    assert vehicle.content_hash() == expected["hash"]
    # The hash of a vehicle read back from its API form is the same too (what the ingest computes).
    assert Vehicle.from_api(vehicle.to_api()).content_hash() == expected["hash"]
    # And of one read back from a verified staged line (no second validation).
    staged = Vehicle.from_verified_staging(json.loads(vehicle.to_api_json()))
    assert (staged.to_api(), staged.content_hash()) == (expected["vehicle"], expected["hash"])


def test_known_hashes_stay_pinned() -> None:
    hashes = {e["vehicle"]["vin"]: e["hash"] for e in EXPECTED if "vehicle" in e}
    assert hashes["5UXCJPFUXTR491737"] == "8e95e096501213ba8175c5b9964c8696832660f8c3046296d599d5a27c36087d"
    assert len(set(hashes.values())) == len(hashes)


def _old_staged(tmp_path: Path) -> tuple[Any, str]:
    from airflow.sdk import ObjectStoragePath

    target = tmp_path / "old.jsonl.gz"
    shutil.copyfile(GOLDEN / "staged_by_old_code.jsonl.gz", target)
    checksum = (GOLDEN / "staged_by_old_code.sha256").read_text().strip()
    return ObjectStoragePath(f"file://{target}"), checksum


def test_a_file_staged_by_the_old_code_reads_back_the_same(tmp_path: Path) -> None:
    path, checksum = _old_staged(tmp_path)
    expected = [e for e in EXPECTED if "vehicle" in e][:80]
    for verified in (checksum, None):  # the trusted fast path and the fully validated one
        staged = read_staged(path, checksum=verified)
        assert [v.to_api() for v in staged.vehicles] == [e["vehicle"] for e in expected]
        assert [v.content_hash() for v in staged.vehicles] == [e["hash"] for e in expected]
        assert staged.rejected_vins == {"1HGCM82633A004353", "JUNKVIN"}
        assert [v.vin for v in read_vehicles(path, checksum=verified)] == [v.vin for v in staged.vehicles]


def test_a_tampered_old_file_is_refused(tmp_path: Path) -> None:
    path, checksum = _old_staged(tmp_path)
    local = tmp_path / "old.jsonl.gz"
    lines = gzip.decompress(local.read_bytes()).splitlines(keepends=True)
    lines[0] = lines[0].replace(b'"price": ', b'"price": 1', 1)
    local.write_bytes(gzip.compress(b"".join(lines), mtime=0))
    with pytest.raises(PayloadError, match="checksum"):
        read_staged(path, checksum=checksum)
