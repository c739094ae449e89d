"""The canonical vehicle: what every platform is normalized to and what the Data API receives.

Unknown is ``None``, never invented: the validators canonicalize (strip text, ``0`` price -> ``None``,
drop duplicate image URLs) but never fill a gap. An invalid VIN is rejected with the reason code of
:func:`od_scheduler.models.vin.vin_problem` as the pydantic error type, so :func:`make_vehicle` can turn
it into a :class:`~od_scheduler.exceptions.RecordRejected` keyed by that reason.

``content_hash()`` fingerprints a vehicle for change detection (``vehicle_fingerprints``). It hashes an
explicit, versioned field list (:data:`HASH_FIELDS`, :data:`HASH_VERSION`) so adding a field to the
model later does not change existing hashes (which would re-send every vehicle once).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError, to_json

from od_scheduler.exceptions import RecordRejected
from od_scheduler.models.normalize import (
    MAX_INT_DIGITS,
    MAX_MODEL_YEAR,
    MIN_MODEL_YEAR,
    Condition,
    absolute_url,
    all_plain_absolute,
    clean_str,
    parse_condition,
    parse_datetime,
    parse_int,
    parse_money,
    parse_year,
)
from od_scheduler.models.quality import screen_fields
from od_scheduler.models.vin import VIN_PROBLEMS, normalize_vin, vin_problem

#: The fields ``content_hash()`` covers, in hashing order. ``source_updated_at`` is left out on purpose:
#: feeds that restamp every record on each export would otherwise make every vehicle look changed.
HASH_FIELDS: tuple[str, ...] = (
    "vin",
    "dealer_id",
    "source",
    "stock_number",
    "condition",
    "year",
    "make",
    "model",
    "trim",
    "body_style",
    "drivetrain",
    "transmission",
    "fuel_type",
    "engine",
    "exterior_color",
    "interior_color",
    "mileage",
    "price",
    "msrp",
    "images",
    "detail_url",
    "description",
    "in_stock_since",
)
#: Bump when the hashing scheme (not the model) changes: every fingerprint then differs once.
HASH_VERSION = 1

_OPTIONAL_TEXT = (
    "stock_number",
    "make",
    "model",
    "trim",
    "body_style",
    "drivetrain",
    "transmission",
    "fuel_type",
    "engine",
    "exterior_color",
    "interior_color",
    "description",
)


def _unique_images(v: Any) -> Any:
    if v is None:
        return []
    if not isinstance(v, list | tuple):
        return v
    if set(map(type, v)) <= {str}:  # exact strs only (hashable, equal as text)
        return list(dict.fromkeys(v))  # first occurrence wins, like the loop below
    unique: list[Any] = []
    for url in v:
        if url not in unique:
            unique.append(url)
    return unique


def _normalized(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its VIN checked and what never fails a field done, in one pass over the present keys.

    Raises pydantic's error for a VIN problem (its type is the reason code). The rest is what per-field
    "before" validators did, one call from pydantic-core each: text stripped, ids stripped, condition words
    read, amounts to cents or unknown, duplicate image URLs dropped. A value of the wrong type is left as it
    is, for the field's validation to report.
    """
    vin = normalize_vin(data.get("vin"))
    problem = vin_problem(vin, model_year=parse_year(data.get("year")))
    if problem is not None:
        raise PydanticCustomError(problem, "VIN {vin} rejected: {problem}", {"vin": vin, "problem": problem})
    data = {**data, "vin": vin}
    for name in _OPTIONAL_TEXT:
        if name in data:
            v = data[name]
            if v is None or isinstance(v, str):
                data[name] = clean_str(v)
    for name in ("dealer_id", "source"):
        v = data.get(name)
        if isinstance(v, str):
            data[name] = v.strip()
    if "condition" in data:
        # Unrecognized text ("Demo", "Loaner") is unknown, not a reason to drop the vehicle.
        data["condition"] = parse_condition(data["condition"])
    for name in ("price", "msrp"):
        if name in data:
            # 0, "$0", "" and negative amounts mean "unknown" (docs/design.md): canonicalize to None, cents.
            data[name] = parse_money(data[name])
    if "images" in data:
        data["images"] = _unique_images(data["images"])
    return data


class Vehicle(BaseModel):
    """One vehicle in the canonical shape of docs/design.md ("Canonical vehicle")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vin: str
    dealer_id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    stock_number: str | None = None
    condition: Condition | None = None
    year: int | None = None
    make: str | None = None
    model: str | None = None
    trim: str | None = None
    body_style: str | None = None
    drivetrain: str | None = None
    transmission: str | None = None
    fuel_type: str | None = None
    engine: str | None = None
    exterior_color: str | None = None
    interior_color: str | None = None
    mileage: int | None = None
    price: Decimal | None = None
    msrp: Decimal | None = None
    images: list[str] = Field(default_factory=list)
    detail_url: str | None = None
    description: str | None = None
    in_stock_since: date | None = None
    source_updated_at: datetime | None = None

    #: Data-quality warnings of the record this vehicle came from (fields nulled); not sent, not hashed.
    _warnings: tuple[str, ...] = PrivateAttr(default=())

    @property
    def warnings(self) -> tuple[str, ...]:
        """Warning codes of fields set to unknown while building this vehicle."""
        return self._warnings

    @model_validator(mode="before")
    @classmethod
    def _check_vin(cls, data: Any) -> Any:
        # Runs before field validation so a bad VIN is the reported reason even if other fields are bad.
        return _normalized(data) if isinstance(data, dict) else data

    @field_validator("year", mode="before")
    @classmethod
    def _year(cls, v: Any) -> Any:
        if v is None or v == "" or v == 0 or v == "0":
            return None
        year = parse_year(v)
        if year is None:
            raise ValueError(f"implausible model year {v!r}")
        return year

    @field_validator("mileage", mode="before")
    @classmethod
    def _mileage(cls, v: Any) -> Any:
        if v is None or v == "":
            return None
        miles = parse_int(v)
        if miles is None:
            raise ValueError(f"mileage {v!r} is not a whole number")
        return miles if miles >= 0 else None  # a negative odometer reading is unknown, not an error

    @field_validator("images")
    @classmethod
    def _images_absolute(cls, v: list[str]) -> list[str]:
        if all_plain_absolute(v):
            return v
        for url in v:
            if absolute_url(None, url) != url:
                raise ValueError(f"image URL {url[:100]!r} is not an absolute http(s) URL")
        return v

    @field_validator("detail_url")
    @classmethod
    def _detail_url_absolute(cls, v: str | None) -> str | None:
        if v is not None and absolute_url(None, v) != v:
            raise ValueError(f"detail_url {v[:100]!r} is not an absolute http(s) URL")
        return v

    @field_validator("source_updated_at", mode="before")
    @classmethod
    def _utc(cls, v: Any) -> Any:
        if v is None or v == "":
            return None
        parsed = parse_datetime(v)
        if parsed is None:
            raise ValueError(f"source_updated_at {v!r} is not an ISO-8601 datetime")
        return parsed

    @field_serializer("price", "msrp", when_used="json")
    def _money_json(self, v: Decimal | None) -> float | None:
        # The Data API takes amounts as JSON numbers; cents survive the float round trip.
        return None if v is None else float(v)

    def to_api(self) -> dict[str, Any]:
        """The JSON-safe dict the Data API receives: every field present, unknown as ``None``."""
        return self.model_dump(mode="json")

    def to_api_json(self) -> bytes:
        """``to_api()`` as compact UTF-8 JSON (fields in model order): the same values, serialized in Rust."""
        return self.__pydantic_serializer__.to_json(self)

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> Self:
        """The vehicle back from a ``to_api()`` dict (for example a staged JSON line)."""
        return cls.model_validate(dict(d))

    @classmethod
    def from_verified_staging(cls, d: Mapping[str, Any]) -> Self:
        """The vehicle back from a ``to_api()`` dict that this code wrote from a validated vehicle.

        Only for a staged line whose file matched the sha256 the pull recorded (see
        :func:`od_scheduler.staging.read_staged`): every value is then one that validation produced and
        that survives a second validation unchanged, so the vehicle is built without running the
        validators again (the JSON types are turned back into enum, ``Decimal``, ``date`` and
        ``datetime`` by the same functions the validators use). A dict without exactly the model's fields
        (a file staged by a release with other fields), or any other mapping than a ``dict``, is validated
        in full.
        """
        if type(d) is not dict or d.keys() != _FIELD_NAMES_SET:
            return cls.from_api(d)
        values = {name: d[name] for name in _FIELD_NAMES}
        try:
            if values["condition"] is not None:
                values["condition"] = Condition(values["condition"])
            for name in ("price", "msrp"):
                if values[name] is not None:
                    values[name] = parse_money(values[name])
            if values["in_stock_since"] is not None:
                values["in_stock_since"] = date.fromisoformat(values["in_stock_since"])
            if values["source_updated_at"] is not None:
                values["source_updated_at"] = parse_datetime(values["source_updated_at"])
        except (TypeError, ValueError):  # not what to_api() writes after all: let validation say why
            return cls.from_api(d)
        return cls._assemble(values, set(_FIELD_NAMES))

    @classmethod
    def _assemble(cls, values: dict[str, Any], fields_set: set[str], warnings: tuple[str, ...] = ()) -> Self:
        """The vehicle holding ``values`` (every field, in model order, each as validation makes it).

        What ``model_construct`` does for a model without aliases or extras, minus its per-field loop (about
        14 µs a vehicle on the bench machine); test_vehicle.py checks its callers build what validation
        builds, attribute for attribute.
        """
        vehicle = cls.__new__(cls)
        object.__setattr__(vehicle, "__dict__", values)
        object.__setattr__(vehicle, "__pydantic_fields_set__", fields_set)
        object.__setattr__(vehicle, "__pydantic_extra__", None)
        object.__setattr__(vehicle, "__pydantic_private__", {"_warnings": warnings})
        return vehicle

    def content_hash(self) -> str:
        """sha256 hex over :data:`HASH_FIELDS` (stable across model changes, see the module docstring).

        The hashed text is compact JSON ``[HASH_VERSION, [[field, value], ...]]`` in ``HASH_FIELDS`` order,
        amounts as strings with cents (``"5999.50"``), dates as ISO strings, enums as their values, text as
        UTF-8 with only ``"``, ``\\`` and control characters escaped: the bytes of
        ``json.dumps(..., ensure_ascii=False, separators=(",", ":")).encode()`` with amounts and dates as
        ``str(amount)`` and ``date.isoformat()``, which is what the fingerprints stored so far were made of.
        pydantic-core's ``to_json`` writes those very bytes (``str()`` of a ``Decimal``, ISO dates, the same
        escapes) at a third of the json module's cost; test_vehicle.py checks both agree on arbitrary values.
        """
        fields = self.__dict__
        payload = to_json([HASH_VERSION, [[name, fields[name]] for name in HASH_FIELDS]])
        return hashlib.sha256(payload).hexdigest()


def _summarize(err: ValidationError, limit: int = 300) -> str:
    """Field locations and messages only: input values may hold long text, never echo them whole."""
    parts = []
    for e in err.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in e["loc"]) or "record"
        parts.append(f"{loc}: {e['msg']}")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_FIELD_NAMES: tuple[str, ...] = tuple(Vehicle.model_fields)
_FIELD_NAMES_SET = frozenset(_FIELD_NAMES)

#: Fields a record can lose (set to unknown, with a warning) without being rejected: all but its identity.
_NULLABLE = frozenset(Vehicle.model_fields) - {"vin", "dealer_id", "source"}
#: The fields whose default is ``None`` (all but ``images``), in model order.
_EMPTY = dict.fromkeys(_FIELD_NAMES)


def _canonical_vehicle(fields: dict[str, Any], warnings: tuple[str, ...]) -> Vehicle | None:
    """The vehicle ``Vehicle(**fields)`` builds, built without pydantic-core, or ``None``: then validate.

    After :func:`_normalized` (the model validator's own code), every value a platform's ``to_vehicle()``
    passes is normally already of the field's exact type and acceptable to its validator, and pydantic-core
    then gives it back unchanged: checking that in Python costs a fraction of a validation (the bench's
    ``to_vehicle`` step). Exact types only (``type(v) is int``, not a ``bool``; ``str``, not a subclass):
    anything else, and any value a validator would change or refuse, returns ``None`` so that validation
    runs and decides, with its own errors. test_vehicle.py checks this against validation on arbitrary input.
    """
    if not fields.keys() <= _FIELD_NAMES_SET:
        return None
    try:
        data = _normalized(fields)
    except PydanticCustomError:  # a VIN problem: validation reports it
        return None
    values = {**_EMPTY, "images": [], **data}
    for name in ("vin", "dealer_id", "source"):
        if type(values[name]) is not str or not values[name]:
            return None
    for name in _OPTIONAL_TEXT:
        if values[name] is not None and type(values[name]) is not str:
            return None
    year, mileage = values["year"], values["mileage"]
    if year is not None and not (type(year) is int and MIN_MODEL_YEAR <= year <= MAX_MODEL_YEAR):
        return None
    if mileage is not None and not (type(mileage) is int and 0 <= mileage < 10**MAX_INT_DIGITS):
        return None
    images = values["images"]
    if type(images) is not list or (images and not all_plain_absolute(images)):
        return None
    detail = values["detail_url"]
    if detail is not None and (type(detail) is not str or absolute_url(None, detail) != detail):
        return None
    in_stock, updated = values["in_stock_since"], values["source_updated_at"]
    if in_stock is not None and type(in_stock) is not date:
        return None
    if updated is not None and not (type(updated) is datetime and updated.tzinfo is UTC):
        return None
    # condition, price and msrp: _normalized made them a Condition, Decimal or None, which validation keeps.
    return Vehicle._assemble(values, set(fields), warnings)


def make_vehicle(**fields: Any) -> Vehicle:
    """Build a :class:`Vehicle`, or raise ``RecordRejected`` (never pydantic's ``ValidationError``).

    Without a valid VIN the record is rejected with the VIN problem code (``missing_vin``,
    ``invalid_vin_check_digit``, ...). An implausible or malformed optional field is set to ``None`` and
    recorded in ``vehicle.warnings`` (see :mod:`od_scheduler.models.quality`); only a record whose
    identity (``dealer_id``, ``source``) is unusable is rejected as ``invalid_record``. When the screened
    values are already canonical (the usual case) the vehicle is built without pydantic-core
    (:func:`_canonical_vehicle`), as validation would build it.
    """
    ref = normalize_vin(fields.get("vin")) or clean_str(fields.get("stock_number"))
    fields, warnings = screen_fields(fields)
    canonical = _canonical_vehicle(fields, tuple(warnings))
    if canonical is not None:
        return canonical
    for _ in range(2):
        try:
            vehicle = Vehicle(**fields)
        except ValidationError as err:
            errors = err.errors(include_input=False, include_url=False)
            for e in errors:
                if e["type"] in VIN_PROBLEMS:
                    raise RecordRejected(e["type"], ref=ref) from err
            bad = {str(e["loc"][0]) for e in errors if e["loc"]}
            if not bad or not bad <= _NULLABLE:
                raise RecordRejected("invalid_record", ref=ref, detail=_summarize(err)) from err
            for name in sorted(bad):
                fields[name] = [] if name == "images" else None
                warnings.append(f"invalid_{name}")
            continue
        vehicle._warnings = tuple(warnings)
        return vehicle
    raise RecordRejected("invalid_record", ref=ref, detail="fields still invalid after nulling")
