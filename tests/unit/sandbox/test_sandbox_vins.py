"""Every VIN the sandbox generates is valid: 17 allowed characters, correct check digit, right year code."""

from __future__ import annotations

import re

import pytest

from include.sandbox.config import SandboxConfig
from include.sandbox.state import SandboxState

pytestmark = pytest.mark.unit

# An independent implementation of the North-American check digit (49 CFR 565), on purpose not
# the sandbox's own, so a bug there cannot hide here.
_VALUES = dict(
    zip(
        "ABCDEFGHJKLMNPRSTUVWXYZ",
        [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9],
        strict=True,
    )
)
_WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]
_YEARS = {
    2015: "F",
    2016: "G",
    2017: "H",
    2018: "J",
    2019: "K",
    2020: "L",
    2021: "M",
    2022: "N",
    2023: "P",
    2024: "R",
    2025: "S",
    2026: "T",
}


def expected_check_digit(vin: str) -> str:
    total = sum((int(ch) if ch.isdigit() else _VALUES[ch]) * w for ch, w in zip(vin, _WEIGHTS, strict=True))
    return "X" if total % 11 == 10 else str(total % 11)


def test_known_vin() -> None:
    assert expected_check_digit("1M8GDM9AXKP042788") == "X"
    assert expected_check_digit("11111111111111111") == "1"


@pytest.mark.parametrize("seed", [42, 7])
def test_every_generated_vin_is_valid_and_unique(seed: int) -> None:
    state = SandboxState(SandboxConfig(seed=seed))
    vehicles = [v for lot in state.lots.values() for v in lot.vehicles]
    unique = {v.vin: v for v in vehicles}

    assert len(unique) > 2000
    for vin, vehicle in unique.items():
        assert re.fullmatch(r"[A-HJ-NPR-Z0-9]{17}", vin)
        assert vin[8] == expected_check_digit(vin), vin
        assert vin[9] == _YEARS[vehicle.year], vin
    assert {vin[0] for vin in unique} >= {"1", "2", "3", "4", "5", "J", "K", "W"}


def test_arrivals_get_fresh_valid_vins() -> None:
    state = SandboxState(SandboxConfig())
    dealer = state.dealer("riverside-toyota")
    before = {v.vin for lot in state.lots.values() for v in lot.vehicles}

    added = state.add_arrivals("dealer.com", dealer, new=3, used=3, certified=3)

    assert len(set(added)) == 9
    assert not set(added) & before
    assert all(vin[8] == expected_check_digit(vin) for vin in added)
