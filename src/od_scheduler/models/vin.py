"""VIN normalization and validation (ISO 3779 / 49 CFR 565).

A modern VIN has 17 characters from ``[A-HJ-NPR-Z0-9]`` (no I, O, Q). Position 9 is a check digit that
49 CFR 565 makes mandatory for every vehicle made for sale in the US, whatever its country of manufacture:
it is enforced for every WMI (``JT...``, ``WBA...`` as much as ``1HG...``), as the Data API does
(docs/contracts.md §8). Vehicles before model year 1981 predate the standard: their VINs only need to be
present.

:func:`vin_problem` returns a reason code that doubles as the rejects-by-reason key in job history.
"""

from __future__ import annotations

import re
from operator import mul

MISSING_VIN = "missing_vin"
INVALID_VIN_LENGTH = "invalid_vin_length"
INVALID_VIN_CHARSET = "invalid_vin_charset"
INVALID_VIN_CHECK_DIGIT = "invalid_vin_check_digit"
#: Every code :func:`vin_problem` can return.
VIN_PROBLEMS = (MISSING_VIN, INVALID_VIN_LENGTH, INVALID_VIN_CHARSET, INVALID_VIN_CHECK_DIGIT)

VIN_LENGTH = 17
#: The first model year that had to carry a standard 17-character VIN.
FIRST_STANDARD_MODEL_YEAR = 1981
_VIN_CHARS = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_TRANSLITERATION = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}


def normalize_vin(raw: object) -> str | None:
    """The VIN stripped and upper-cased; ``None`` for ``None``, blanks and non-text values."""
    if raw is None or isinstance(raw, bool):
        return None
    if not isinstance(raw, str | int):
        return None
    vin = str(raw).strip().upper()
    return vin or None


def check_digit(vin: str) -> str:
    """The check digit (``"0"``-``"9"`` or ``"X"``) a 17-character VIN should carry at position 9.

    Raises ``ValueError`` for a VIN that is not 17 valid characters.
    """
    vin = vin.upper()
    if not _VIN_CHARS.match(vin):
        raise ValueError(f"not a 17-character VIN: {vin!r}")
    total = sum(map(mul, map(_TRANSLITERATION.__getitem__, vin), _WEIGHTS))  # 17 of each: checked above
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def vin_problem(vin: str | None, *, model_year: int | None = None) -> str | None:
    """``None`` when ``vin`` is acceptable, else the reason code (one of :data:`VIN_PROBLEMS`).

    ``model_year`` before 1981 exempts the VIN from every 17-character rule.
    """
    normalized = normalize_vin(vin)
    if normalized is None:
        return MISSING_VIN
    if model_year is not None and model_year < FIRST_STANDARD_MODEL_YEAR:
        return None
    if len(normalized) != VIN_LENGTH:
        return INVALID_VIN_LENGTH
    if not _VIN_CHARS.match(normalized):
        return INVALID_VIN_CHARSET
    if normalized[8] != check_digit(normalized):
        return INVALID_VIN_CHECK_DIGIT
    return None
