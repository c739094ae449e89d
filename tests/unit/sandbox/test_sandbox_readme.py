"""The README's dealer table says what the code does: every dealer, its platforms, status and lot sizes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from include.sandbox.dealers import DEALERS

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[3] / "include" / "sandbox" / "README.md"
ROW = re.compile(
    r"^\| `([a-z0-9-]+)` \| [^|]+ \| (\w+) \| ([^|]+) \| (\d+) \| (\d+) / (\d+) / (\d+) \|", re.MULTILINE
)


def test_readme_dealer_table_matches_the_code() -> None:
    rows = {m[0]: m[1:] for m in ROW.findall(README.read_text())}

    assert set(rows) == {dealer.slug for dealer in DEALERS}
    for dealer in DEALERS:
        status, platforms, total, new, used, certified = rows[dealer.slug]
        assert status == dealer.status, dealer.slug
        assert [p.strip() for p in platforms.split(",")] == list(dealer.platforms), dealer.slug
        lot = dealer.lot
        assert (int(total), int(new), int(used), int(certified)) == (
            lot.total,
            lot.new,
            lot.used,
            lot.certified,
        )
