"""Staging files: one per pull attempt, committed atomically, read back only with their own checksum."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from od_scheduler.exceptions import PayloadError
from od_scheduler.models.vehicle import Vehicle
from od_scheduler.staging import SUFFIX, WRITING_PREFIX, read_vehicles, staging_path, write_vehicles

pytestmark = pytest.mark.unit

RUN_ID = "scheduled__2026-03-02T09:00:00+00:00"
VINS = ("1HGCM82633A004352", "1FTFW1E57DFC10312", "5TDZA23C56S471623")


def vehicle(vin: str, price: int = 20_000) -> Vehicle:
    return Vehicle(dealer_id="d-1", source="homenet", vin=vin, year=2021, make="Honda", price=price)


def root(tmp_path: Path) -> str:
    return f"file://{tmp_path}"


def test_each_attempt_gets_its_own_name_even_two_copies_of_one_try(tmp_path: Path) -> None:
    a = staging_path("homenet", "d-1", RUN_ID, try_number=1, root=root(tmp_path))
    b = staging_path("homenet", "d-1", RUN_ID, try_number=1, root=root(tmp_path))
    retry = staging_path("homenet", "d-1", RUN_ID, try_number=2, root=root(tmp_path))
    assert len({str(a), str(b), str(retry)}) == 3
    assert a.parent == b.parent == retry.parent
    assert a.name.startswith("scheduled__2026-03-02T09_00_00_00_00.try1.")
    assert retry.name.startswith("scheduled__2026-03-02T09_00_00_00_00.try2.")
    assert all(p.name.endswith(SUFFIX) for p in (a, b, retry))
    assert str(
        staging_path("homenet", "d-1", RUN_ID, try_number=3, root=root(tmp_path), token="abc")
    ).endswith("/homenet/d-1/scheduled__2026-03-02T09_00_00_00_00.try3.abc.jsonl.gz")


def test_two_copies_of_a_pull_each_read_back_their_own_vehicles(tmp_path: Path) -> None:
    # A zombie and its retry write at the same time for the same run and dealer: neither disturbs the
    # other's file, so each summary's checksum verifies.
    zombie = staging_path("homenet", "d-1", RUN_ID, try_number=1, root=root(tmp_path))
    retry = staging_path("homenet", "d-1", RUN_ID, try_number=2, root=root(tmp_path))
    n_zombie, sum_zombie = write_vehicles(zombie, [vehicle(VINS[0])])
    n_retry, sum_retry = write_vehicles(retry, [vehicle(v, 25_000) for v in VINS])
    n_late, _ = write_vehicles(
        staging_path("homenet", "d-1", RUN_ID, try_number=1, root=root(tmp_path)), [vehicle(VINS[1])]
    )
    assert (n_zombie, n_retry, n_late) == (1, 3, 1)
    assert [v.vin for v in read_vehicles(retry, checksum=sum_retry)] == list(VINS)
    assert [v.vin for v in read_vehicles(zombie, checksum=sum_zombie)] == [VINS[0]]
    with pytest.raises(PayloadError, match="checksum"):
        list(read_vehicles(zombie, checksum=sum_retry))


def test_the_file_appears_under_its_final_name_only_once_complete(tmp_path: Path) -> None:
    path = staging_path("homenet", "d-1", RUN_ID, try_number=1, root=root(tmp_path))
    temp = Path(str(path.parent).removeprefix("file://")) / (WRITING_PREFIX + path.name)
    seen: list[tuple[bool, bool]] = []

    def vehicles() -> Iterator[Vehicle]:
        for vin in VINS:
            seen.append((path.exists(), temp.exists()))
            yield vehicle(vin)

    count, checksum = write_vehicles(path, vehicles())
    assert count == 3
    assert seen == [(False, True)] * 3  # written under the temporary name, committed by a rename
    assert path.exists()
    assert not temp.exists()
    assert len(list(read_vehicles(path, checksum=checksum))) == 3


def test_a_write_that_fails_midway_leaves_no_file(tmp_path: Path) -> None:
    path = staging_path("homenet", "d-1", RUN_ID, try_number=1, root=root(tmp_path))

    def vehicles() -> Iterator[Vehicle]:
        yield vehicle(VINS[0])
        raise RuntimeError("the source went away mid-pull")

    with pytest.raises(RuntimeError, match="went away"):
        write_vehicles(path, vehicles())
    folder = Path(str(path.parent).removeprefix("file://"))
    assert list(folder.iterdir()) == []


def test_an_abandoned_temporary_file_is_found_by_the_cleanup_glob(tmp_path: Path) -> None:
    # maintenance_cleanup prunes rglob("*.jsonl.gz"): a file a killed pull left half-written matches it.
    path = staging_path("homenet", "d-1", RUN_ID, try_number=1, root=root(tmp_path))
    assert (WRITING_PREFIX + path.name).endswith(SUFFIX)
    write_vehicles(path, [vehicle(VINS[0])])
    found = list(Path(tmp_path).rglob("*" + SUFFIX))
    assert [p.name for p in found] == [path.name]


def _local(path: object) -> Path:
    return Path(str(path).removeprefix("file://"))


def test_a_new_file_holds_the_api_form_and_the_old_reader_reads_it(tmp_path: Path) -> None:
    # A worker still on the release before issue 12 may ingest what a newer pull staged (rolling deploy).
    path = staging_path("homenet", "d-1", RUN_ID, try_number=1, root=root(tmp_path))
    vehicles = [vehicle(vin, 20_000 + i) for i, vin in enumerate(VINS)]
    write_vehicles(path, vehicles, rejected_vins=["JUNK"])
    lines = gzip.decompress(_local(path).read_bytes()).splitlines()
    assert [json.loads(line) for line in lines[:-1]] == [v.to_api() for v in vehicles]
    assert [Vehicle.from_api(json.loads(line)) for line in lines[:-1]] == vehicles
    assert json.loads(lines[-1]) == {"rejected_vin": "JUNK"}


def test_a_changed_file_is_refused_whatever_changed(tmp_path: Path) -> None:
    path = staging_path("homenet", "d-1", RUN_ID, try_number=1, root=root(tmp_path))
    _, checksum = write_vehicles(path, [vehicle(vin) for vin in VINS])
    good = _local(path).read_bytes()
    text = gzip.decompress(good)
    assert b"20000.0" in text
    for changed in (
        good[:-9],  # truncated
        good[:-1] + bytes([good[-1] ^ 1]),  # one bit of the trailer
        gzip.compress(text.replace(b"20000.0", b"2000.0"), mtime=0, compresslevel=1),  # an edited price
        gzip.compress(text, mtime=0, compresslevel=9),  # same content, other bytes
    ):
        _local(path).write_bytes(changed)
        with pytest.raises(PayloadError, match="checksum"):
            list(read_vehicles(path, checksum=checksum))


def test_a_file_swapped_after_the_check_is_not_what_gets_read(tmp_path: Path) -> None:
    # The bytes parsed are the private copy whose sha256 matched, not whatever the store holds later.
    path = staging_path("homenet", "d-1", RUN_ID, try_number=1, root=root(tmp_path))
    other = staging_path("homenet", "d-1", RUN_ID, try_number=2, root=root(tmp_path))
    _, checksum = write_vehicles(path, [vehicle(vin) for vin in VINS])
    write_vehicles(other, [vehicle(vin, 1) for vin in reversed(VINS)])
    reading = read_vehicles(path, checksum=checksum)
    first = next(reading)
    _local(path).write_bytes(_local(other).read_bytes())
    assert [first.vin, *(v.vin for v in reading)] == list(VINS)


def test_without_a_checksum_every_line_is_validated(tmp_path: Path) -> None:
    path = staging_path("homenet", "d-1", RUN_ID, try_number=1, root=root(tmp_path))
    bad = {**vehicle(VINS[0]).to_api(), "vin": "1HGCM82633A004353"}  # wrong check digit
    _local(path).parent.mkdir(parents=True)
    _local(path).write_bytes(gzip.compress(json.dumps(bad).encode() + b"\n"))
    with pytest.raises(PayloadError, match="line 1 is not a valid vehicle"):
        list(read_vehicles(path))
