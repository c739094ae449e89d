"""VIN normalization and validation against hand-checked real-world vectors."""

from __future__ import annotations

import pytest

from od_scheduler.models.vin import check_digit, normalize_vin, vin_problem

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("vin", "digit"),
    [
        # 1HGCM82633A004352: weighted sum 311, 311 % 11 = 3 (checked by hand)
        ("1HGCM82633A004352", "3"),
        # 1M8GDM9AXKP042788: weighted sum 351, 351 % 11 = 10 -> "X" (the textbook example)
        ("1M8GDM9AXKP042788", "X"),
        # all ones: 1 x (sum of weights = 89), 89 % 11 = 1
        ("11111111111111111", "1"),
    ],
)
def test_check_digit_vectors(vin: str, digit: str) -> None:
    assert check_digit(vin) == digit
    assert vin_problem(vin) is None


def test_check_digit_rejects_non_vins() -> None:
    with pytest.raises(ValueError, match="not a 17-character VIN"):
        check_digit("1HGCM82633A00435")


@pytest.mark.parametrize(
    ("vin", "model_year", "problem"),
    [
        ("1HGCM82633A004353", None, "invalid_vin_check_digit"),  # last digit changed
        ("1HGCM82633A004325", None, "invalid_vin_check_digit"),  # two digits swapped
        ("1M8GDM9A0KP042788", None, "invalid_vin_check_digit"),  # X replaced by 0
        # 49 CFR 565: the check digit is mandatory for every vehicle sold in the US, whatever the WMI.
        ("JT2BF22K0Y0123456", None, "invalid_vin_check_digit"),  # Japan (it would be 1)
        ("JT2BF22K1Y0123456", None, None),
        ("WBA3A5C50CF256651", None, "invalid_vin_check_digit"),  # Germany (it would be 7)
        ("WBA3A5C57CF256651", None, None),
        ("KM8J33A45HU123456", None, "invalid_vin_check_digit"),  # Korea (it would be 0)
        ("KM8J33A40HU123456", None, None),
        ("SALGS2SE1LA123456", None, "invalid_vin_check_digit"),  # United Kingdom (it would be 3)
        ("WBA3A5C50CF256651", 1980, None),  # pre-1981: exempt, whatever the WMI
        (" 1hgcm82633a004352 ", None, None),  # normalized before checking
        ("1HGCM82633A00435", None, "invalid_vin_length"),
        ("1HGCM82633A0043521", None, "invalid_vin_length"),
        ("1HGCM82633AO04352", None, "invalid_vin_charset"),  # letter O
        ("1HGCM82633AI04352", None, "invalid_vin_charset"),  # letter I
        ("JT2BF22K0Y012345Q", None, "invalid_vin_charset"),  # letter Q
        ("1HGCM82633A-04352", None, "invalid_vin_charset"),
        (None, None, "missing_vin"),
        ("", None, "missing_vin"),
        ("   ", 1975, "missing_vin"),  # pre-standard VINs still must exist
        ("F10GCR12345", 1975, None),  # pre-1981: exempt from the 17-character rules
        ("1HGCM82633A004353", 1980, None),
        ("F10GCR12345", 1981, "invalid_vin_length"),
        ("1HGCM82633A004353", 1981, "invalid_vin_check_digit"),
    ],
)
def test_vin_problem(vin: str | None, model_year: int | None, problem: str | None) -> None:
    assert vin_problem(vin, model_year=model_year) == problem


def test_normalize_vin() -> None:
    assert normalize_vin(" 1hgcm82633a004352\n") == "1HGCM82633A004352"
    assert normalize_vin("") is None
    assert normalize_vin("   ") is None
    assert normalize_vin(None) is None
    assert normalize_vin(["1HGCM82633A004352"]) is None
