"""VIN arithmetic for the sandbox: the check digit and a deterministic generator.

Written here on purpose instead of imported from ``od_scheduler``: the sandbox must not share
code with the clients it tests, or a bug in one would be mirrored in the other.

Every generated VIN has the North-American check digit (position 9) computed correctly, also
for VINs whose WMI is not North American (``JT…``, ``WBA…``, ``KM8…``): many such makers fill it in
the same way, and a client that validates it for North-American VINs only must still accept them.
"""

from __future__ import annotations

import random
import re

VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
"""The 33 characters a VIN may contain (no I, O or Q)."""

VIN_PATTERN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")

_TRANSLITERATION: dict[str, int] = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)

# Position 10: model year. The 30-year cycle repeats, 2010..2039 shown here.
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"


def year_code(year: int) -> str:
    """Return the position-10 model-year character for ``year`` (2010..2039)."""
    if not 2010 <= year <= 2039:
        raise ValueError(f"model year {year} is outside 2010..2039")
    return _YEAR_CODES[year - 2010]


def check_digit(vin: str) -> str:
    """Return the check digit (``0``..``9`` or ``X``) for a 17-character VIN; position 9 is ignored."""
    if len(vin) != 17:
        raise ValueError(f"a VIN has 17 characters, got {len(vin)}")
    total = sum(_TRANSLITERATION[ch] * weight for ch, weight in zip(vin, _WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def is_valid(vin: str) -> bool:
    """True when ``vin`` has 17 allowed characters and a correct check digit."""
    return bool(VIN_PATTERN.match(vin)) and vin[8] == check_digit(vin)


def make_vin(rng: random.Random, wmi: str, year: int) -> str:
    """Build a VIN: WMI, five VDS characters, check digit, year, plant, six-digit serial."""
    if len(wmi) != 3 or not VIN_PATTERN.match(wmi + "0" * 14):
        raise ValueError(f"bad WMI {wmi!r}")
    vds = "".join(rng.choice(VIN_ALPHABET) for _ in range(5))
    plant = rng.choice(VIN_ALPHABET)
    serial = f"{rng.randrange(1_000_000):06d}"
    draft = f"{wmi}{vds}0{year_code(year)}{plant}{serial}"
    return draft[:8] + check_digit(draft) + draft[9:]
