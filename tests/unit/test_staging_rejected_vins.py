"""Staged files also name the VINs of records the pull rejected, so the ingest counts them present."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from od_scheduler.exceptions import PayloadError
from od_scheduler.models.vehicle import Vehicle
from od_scheduler.staging import read_staged, read_vehicles, staging_path, write_vehicles

pytestmark = pytest.mark.unit

RUN_ID = "scheduled__2026-03-02T09:00:00+00:00"
VINS = ("1HGCM82633A004352", "1FTFW1E57DFC10312", "5TDZA23C56S471623")


def vehicle(vin: str) -> Vehicle:
    return Vehicle(dealer_id="d-1", source="homenet", vin=vin, year=2021, make="Honda")


def test_rejected_vins_filled_while_the_vehicles_stream_are_staged_after_them(tmp_path: Path) -> None:
    path = staging_path("homenet", "d-1", RUN_ID, try_number=1, root=f"file://{tmp_path}")
    rejected: set[str] = set()

    def stream() -> Iterator[Vehicle]:
        yield vehicle(VINS[0])
        rejected.add(VINS[2])  # the pull learns of a rejected record only while it streams
        yield vehicle(VINS[1])

    count, checksum = write_vehicles(path, stream(), rejected_vins=rejected)
    assert count == 2
    staged = read_staged(path, checksum=checksum)
    assert [v.vin for v in staged.vehicles] == list(VINS[:2])
    assert staged.rejected_vins == {VINS[2]}
    assert [v.vin for v in read_vehicles(path, checksum=checksum)] == list(VINS[:2])


def test_the_checksum_covers_the_rejected_vins(tmp_path: Path) -> None:
    a = staging_path("homenet", "d-1", RUN_ID, try_number=1, root=f"file://{tmp_path}")
    b = staging_path("homenet", "d-1", RUN_ID, try_number=2, root=f"file://{tmp_path}")
    _, plain = write_vehicles(a, [vehicle(VINS[0])])
    _, with_rejects = write_vehicles(b, [vehicle(VINS[0])], rejected_vins=[VINS[1]])
    assert plain != with_rejects
    with pytest.raises(PayloadError, match="checksum"):
        read_staged(b, checksum=plain)
