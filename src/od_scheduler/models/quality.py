"""Data-quality screening of a record's canonical fields before it becomes a ``Vehicle``.

A record without a valid VIN is rejected (the ``Vehicle`` model does that). Every other field is
optional: an implausible or malformed value is set to ``None`` — unknown, never guessed — and the record
carries a warning code, so the pull can count and log warnings by reason. The bounds are explicit here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from od_scheduler.models.normalize import (
    absolute_url,
    all_plain_absolute,
    clean_str,
    parse_condition,
    parse_int,
    parse_money,
    parse_year,
)

FIRST_MODEL_YEAR = 1900
#: A listed price below this is a placeholder ($1, $99), not a price.
MIN_PLAUSIBLE_PRICE = Decimal("100")
MAX_PLAUSIBLE_PRICE = Decimal("5000000")
MAX_PLAUSIBLE_MILEAGE = 1_500_000
_USED = ("used", "certified", "pre-owned", "preowned", "cpo")
#: The canonical condition values (equal to the ``Condition`` members): known without reading any words.
_CONDITIONS = ("new", "used", "certified")


def next_model_year(now: datetime | None = None) -> int:
    """The newest plausible model year: next calendar year (model years run ahead)."""
    return (now or datetime.now(UTC)).year + 1


def screen_fields(fields: dict[str, Any], *, now: datetime | None = None) -> tuple[dict[str, Any], list[str]]:
    """Null implausible optional fields; returns (fields, warning codes)."""
    out = dict(fields)
    warnings: list[str] = []

    def drop(name: str, code: str) -> None:
        out[name] = None
        warnings.append(code)

    year_raw = out.get("year")
    if year_raw not in (None, "", 0, "0"):
        year = parse_year(year_raw)
        if year is None or not FIRST_MODEL_YEAR <= year <= next_model_year(now):
            drop("year", "implausible_year")
    for name in ("price", "msrp"):
        amount = parse_money(out.get(name))
        if amount is not None and not MIN_PLAUSIBLE_PRICE <= amount <= MAX_PLAUSIBLE_PRICE:
            drop(name, f"implausible_{name}")
    mileage_raw = out.get("mileage")
    if mileage_raw not in (None, ""):
        miles = parse_int(mileage_raw)
        condition = str(clean_str(out.get("condition")) or "").lower()
        if miles is None or miles < 0 or miles > MAX_PLAUSIBLE_MILEAGE:
            drop("mileage", "implausible_mileage")
        elif miles == 0 and condition in _USED:
            drop("mileage", "zero_mileage_used")
    images = out.get("images")
    if isinstance(images, list | tuple):
        kept = (
            list(images)
            if all_plain_absolute(images)
            else [url for url in images if isinstance(url, str) and absolute_url(None, url) == url]
        )
        if len(kept) != len(images):
            warnings.append("invalid_image_url")
        out["images"] = kept
    detail = out.get("detail_url")
    if detail not in (None, "") and (not isinstance(detail, str) or absolute_url(None, detail) != detail):
        drop("detail_url", "invalid_detail_url")
    condition_raw = (
        clean_str(out.get("condition")) if isinstance(out.get("condition"), str) else out.get("condition")
    )
    if (
        condition_raw is not None
        and condition_raw not in _CONDITIONS
        and parse_condition(condition_raw) is None
    ):
        drop("condition", "invalid_condition")
    return out, warnings
