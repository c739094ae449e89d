"""Pure normalization functions shared by every platform's raw model.

Every function turns a value a source uses for "unknown" (``""``, ``"0"``, ``"$0"``, ``"N/A"``, ...) into
``None`` rather than guessing. The ``Loose*`` annotated types and :func:`dicts_only` / :func:`dict_or_none`
let raw models accept anything a source sends, so a record fails only where ``to_vehicle()`` decides it
must. See docs/design.md, "Canonical vehicle".
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urljoin, urlsplit

from pydantic import BeforeValidator

_CENT = Decimal("0.01")
_MONEY_NOISE = re.compile(r"[\s$,]|USD", re.IGNORECASE)
_INT_UNITS = re.compile(r"\s*(mi|miles)\.?$", re.IGNORECASE)
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_SURROGATE = re.compile("[\ud800-\udfff]")
_TRUE = frozenset({"true", "yes", "y", "1", "t"})
_FALSE = frozenset({"false", "no", "n", "0", "f"})

#: Integers with more digits than this are unknown (``parse_int``): nothing we count is that large.
MAX_INT_DIGITS = 18
_INT_LIMIT = 10**MAX_INT_DIGITS

#: Model years outside this range are treated as unknown (a typo, or "0" for unknown).
MIN_MODEL_YEAR = 1886
MAX_MODEL_YEAR = 2100


class Condition(StrEnum):
    """Sale condition of a vehicle."""

    NEW = "new"
    USED = "used"
    CERTIFIED = "certified"


_CONDITION_WORDS = {
    "new": Condition.NEW,
    "used": Condition.USED,
    "pre-owned": Condition.USED,
    "preowned": Condition.USED,
    "certified": Condition.CERTIFIED,
    "cpo": Condition.CERTIFIED,
}


def clean_str(v: object) -> str | None:
    """A stripped string, or ``None`` for ``None``, blanks and values that are not text or numbers."""
    if isinstance(v, str):
        # A JSON "\ud800" escape decodes to a lone surrogate that UTF-8 cannot encode (staging, hashing and
        # the Data API all need UTF-8): it becomes U+FFFD like any other undecodable byte. ASCII text (the
        # flag CPython keeps on every string) holds no surrogate: no regex pass for it.
        s = (v if v.isascii() else _SURROGATE.sub("\ufffd", v)).strip()
        return s or None
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int | float | Decimal):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return str(v)
    return None


def parse_condition(v: object) -> Condition | None:
    """``Condition`` from source text such as ``"New"``, ``"USED"``, ``"Certified Pre-Owned"``, ``"CPO"``.

    Certified wins over used when both appear; unrecognized text is unknown (``None``).
    """
    if isinstance(v, Condition):
        return v
    text = clean_str(v)
    if text is None:
        return None
    words = {w for w in text.lower().replace("_", " ").replace("/", " ").split()}
    found = {_CONDITION_WORDS[w] for w in words if w in _CONDITION_WORDS}
    for condition in (Condition.CERTIFIED, Condition.NEW, Condition.USED):
        if condition in found:
            return condition
    return None


def _to_decimal(v: object) -> Decimal | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, Decimal):
        d = v
    elif isinstance(v, int):
        d = Decimal(v)
    elif isinstance(v, float):
        if not math.isfinite(v):
            return None
        d = Decimal(repr(v))  # repr is the shortest round-tripping form: 0.1 -> Decimal("0.1")
    elif isinstance(v, str):
        text = _MONEY_NOISE.sub("", v)
        if not text:
            return None
        try:
            d = Decimal(text)
        except InvalidOperation:
            return None
    else:
        return None
    return d if d.is_finite() else None


def parse_money(v: object) -> Decimal | None:
    """A positive amount rounded to cents, or ``None`` when unknown.

    Accepts numbers and strings like ``"$37,088"``, ``"$25,999.00"``, ``"37088.5"``. Zero, negative
    amounts and text (``"N/A"``, ``"Call for price"``) are unknown: a dealer never sells a car for $0.
    """
    d = _to_decimal(v)
    if d is None:
        return None
    try:
        cents = d.quantize(_CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:  # absurdly large (beyond 28 digits)
        return None
    return cents if cents > 0 else None


def parse_int(v: object) -> int | None:
    """An integer from ``34512``, ``"34,512"``, ``"34512.0"`` or ``"34,512 mi"``; ``None`` otherwise.

    ``"0"`` is 0 (an odometer can read 0); a fractional value (``"12.5"``) is not an integer: ``None``.
    """
    if type(v) is int:  # what the Decimal round trip below gives an int (not a bool): itself, if small enough
        return v if -_INT_LIMIT < v < _INT_LIMIT else None
    if isinstance(v, str):
        v = _INT_UNITS.sub("", v.strip()).replace(",", "")
    d = _to_decimal(v)
    # Magnitude first: "1e999999999" is a valid Decimal whose int() would take minutes and gigabytes,
    # and no count, year or odometer of ours has more than 18 digits.
    if d is None or d.adjusted() > MAX_INT_DIGITS - 1 or d != d.to_integral_value():
        return None
    return int(d)


def parse_year(v: object) -> int | None:
    """A plausible model year, or ``None`` (``"0"``, ``""``, ``"20"`` are unknown)."""
    year = parse_int(v)
    if year is None or not MIN_MODEL_YEAR <= year <= MAX_MODEL_YEAR:
        return None
    return year


def parse_bool(v: object) -> bool | None:
    """``True``/``False`` from booleans, ``"True"``/``"false"``/``"yes"``/``1``...; ``None`` otherwise."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str):
        s = v.strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
    return None


def parse_us_date(v: object) -> date | None:
    """A date from ``"MM/DD/YYYY"`` (also ``"M/D/YYYY"``); malformed (``"00/24/2025"``) -> ``None``."""
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    if not isinstance(v, str):
        return None
    m = _US_DATE.match(v.strip())
    if m is None:
        return None
    month, day, year = map(int, m.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_datetime(v: object) -> datetime | None:
    """A timezone-aware UTC datetime from ISO-8601 text (``Z`` or an offset; naive means UTC)."""
    if isinstance(v, datetime):
        dt = v
    elif isinstance(v, str) and v.strip():
        try:
            dt = datetime.fromisoformat(v.strip())
        except ValueError:
            return None
    else:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


# urllib's split, join and unsplit are pure Python and cost microseconds per call, and a lot has a dozen
# image URLs per vehicle, each checked three times on its way to the staging file. For the links that
# make up nearly every feed, the result of :func:`_absolute_url_urllib` is known without calling urllib:
#
# - a "plain" link: printable ASCII without spaces and brackets (so urlsplit neither strips nor removes
#   characters, never raises for an IPv6 host, and never NFKC-checks the host), whose host has no ``:``
#   (a port, or a password, is left to urllib: whether it is acceptable is urllib's call, not ours);
# - that the urllib round trip (urlparse + urlunparse in urljoin) gives back unchanged: no ``;`` (an
#   empty ``;params`` would be dropped), no empty query or fragment (a trailing ``?`` or ``#``, or
#   ``?#``), and, for a link relative to the site's root, no ``//`` or ``/.`` (urljoin would drop empty
#   segments and resolve dot segments).
#
# Such an ``http(s)://host...`` link comes back as it is, whatever the base; such a ``/path`` link becomes
# ``scheme://host`` of the base + the link when the base is an http(s) URL with a host. Everything else
# takes the urllib path. tests/unit/models/test_normalize.py checks both paths agree on a corpus of
# hostile and odd URLs.
_PLAIN = r"[^\[\]\x00-\x20\x7f-\U0010ffff]"
_PLAIN_HEAD = r"[^/?#\[\]\x00-\x20\x7f-\U0010ffff]"
_PLAIN_HOST = r"[^:/?#\[\]\x00-\x20\x7f-\U0010ffff]+"
_PLAIN_ABSOLUTE = re.compile(rf"https?://{_PLAIN_HOST}(?:[/?#]{_PLAIN}*)?")
_PLAIN_ROOTED = re.compile(rf"/{_PLAIN_HEAD}{_PLAIN}*")


# A whole list in one regex call (joined by "\n", which no plain link holds) instead of one Python call per
# link: every link plain, absolute, without ";" and with every "?" or "#" followed by a character that is
# none of "?#;" (so no empty query or fragment): what _PLAIN_ABSOLUTE + _round_trips accept, or less.
# Only for ASCII text (str.isascii() first, a flag CPython keeps): the classes then need no range beyond
# \x7f, which makes the regex a fifth faster.
_C = r"[^;?#\[\]\x00-\x20\x7f]"
_H = r"[^:/;?#\[\]\x00-\x20\x7f]+"
_ITEM = rf"https?://{_H}(?:/{_C}*)?(?:[?#]{_C}+)*"
_PLAIN_ABSOLUTE_LIST = re.compile(rf"{_ITEM}(?:\n{_ITEM})*")


def all_plain_absolute(urls: Sequence[object]) -> bool:
    """Whether :func:`absolute_url` returns every one of ``urls`` unchanged, with or without a base.

    ``False`` means "not known": check the URLs one by one (for a base urllib cannot split,
    :func:`absolute_url` returns ``None``; see :func:`absolute_urls`).
    """
    global _last_plain
    if not urls or set(map(type, urls)) != {str}:
        return False
    key = tuple(urls)
    if key == _last_plain:  # exact strs: equal means the same text
        return True
    joined = "\n".join(key)  # type: ignore[arg-type]
    # The count rules out one element made of two plain links with a "\n" between them.
    if (
        joined.isascii()
        and joined.count("\n") == len(key) - 1
        and _PLAIN_ABSOLUTE_LIST.fullmatch(joined) is not None
    ):
        _last_plain = key  # type: ignore[assignment]
        return True
    return False


# The last list all_plain_absolute accepted: a vehicle's image list is checked three times on its way to
# the staging file (joined, screened, validated), as the same strings. Any value it holds was accepted, so
# threads racing on it can only miss, never make a wrong list pass.
_last_plain: tuple[str, ...] = ()


def _remember_plain(urls: Sequence[str]) -> None:
    """Record ``urls``, which are all elements of a list :func:`all_plain_absolute` accepted, as accepted."""
    global _last_plain
    _last_plain = tuple(urls)


def _round_trips(link: str, *, rooted: bool = False) -> bool:
    if rooted and ("//" in link or "/." in link):
        return False
    return ";" not in link and "?#" not in link and not link.endswith(("?", "#"))


@functools.lru_cache(maxsize=256)
def _split_base(base_s: str) -> tuple[str, str, str]:
    """(the base prepared for joining: a scheme, a path; its scheme, its host); may raise ValueError."""
    if base_s.startswith("//"):
        base_s = "https:" + base_s
    elif "://" not in base_s:
        base_s = "https://" + base_s
    if not base_s.endswith("/") and not urlsplit(base_s).path:
        base_s += "/"
    parts = urlsplit(base_s)
    return base_s, parts.scheme, parts.netloc


def absolute_url(base: str | None, link: str | None) -> str | None:
    """``link`` made absolute against ``base``; only ``http(s)`` results are kept.

    ``"/used/x.htm"`` + ``"https://dealer.com"`` -> ``"https://dealer.com/used/x.htm"``; ``"//cdn/x.jpg"``
    -> ``"https://cdn/x.jpg"``; ``"javascript:..."``, ``"mailto:..."`` or a relative link without a base
    -> ``None``. A base without a scheme (``"dealer.com"``) is taken as https.
    """
    if type(link) is str and (base is None or isinstance(base, str)):
        base_s = clean_str(base)
        if _PLAIN_ABSOLUTE.fullmatch(link):
            if base_s is None:
                return link
            if _round_trips(link):
                try:
                    _split_base(base_s)  # a base urllib cannot split gives None: urllib's path decides
                except ValueError:
                    pass
                else:
                    return link
        elif base_s is not None and _PLAIN_ROOTED.fullmatch(link) and _round_trips(link, rooted=True):
            try:
                _, scheme, host = _split_base(base_s)
            except ValueError:
                pass
            else:
                if host and ":" not in host and scheme in ("http", "https"):
                    return f"{scheme}://{host}{link}"
    return _absolute_url_urllib(base, link)


def _absolute_url_urllib(base: str | None, link: str | None) -> str | None:
    """:func:`absolute_url` by urllib alone: the reference, and the path for every unusual link."""
    link_s = clean_str(link)
    if link_s is None:
        return None
    if link_s.startswith("//"):
        link_s = "https:" + link_s
    base_s = clean_str(base)
    try:  # urlsplit raises ValueError for text such as "http://[" (an unclosed IPv6 bracket)
        if base_s is not None:
            link_s = urljoin(_split_base(base_s)[0], link_s)
        parts = urlsplit(link_s)
        _ = parts.port  # raises ValueError for a port that is no number in range
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return link_s


def dicts_only(v: object) -> list[Any]:
    """A list keeping only its dict elements; anything that is not a list becomes ``[]``."""
    if not isinstance(v, list):
        return []
    return [item for item in v if isinstance(item, dict)]


def dict_or_none(v: object) -> object:
    """``v`` if it is a dict, else ``None``: a nested object of the wrong type counts as absent."""
    return v if isinstance(v, dict) else None


def strings_only(v: object) -> list[str]:
    """A list of the non-blank strings in ``v``; anything that is not a list becomes ``[]``."""
    if not isinstance(v, list):
        return []
    return [s for s in (clean_str(item) for item in v if isinstance(item, str)) if s is not None]


#: Tolerant field types for raw models: never fail, fall back to ``None``.
LooseStr = Annotated[str | None, BeforeValidator(clean_str)]
LooseInt = Annotated[int | None, BeforeValidator(parse_int)]
LooseBool = Annotated[bool | None, BeforeValidator(parse_bool)]
LooseStrList = Annotated[list[str], BeforeValidator(strings_only)]


def absolute_urls(base: str | None, links: Iterable[object]) -> list[str]:
    """Image links made absolute against ``base``, each once, in order.

    A link that cannot be made absolute is kept as it came, so the data-quality screen
    (:mod:`od_scheduler.models.quality`) drops it with an ``invalid_image_url`` warning instead of it
    vanishing silently here.
    """
    links = list(links)
    if all_plain_absolute(links) and _joins_unchanged(base):
        unique: list[str] = list(dict.fromkeys(links))  # type: ignore[arg-type]
        _remember_plain(unique)  # what the screen and the Vehicle check next
        return unique
    urls: dict[str, None] = {}  # insertion-ordered: first occurrence wins, as with a list
    for link in links:
        if not isinstance(link, str) or not link.strip():
            continue
        urls.setdefault(absolute_url(base, link) or link.strip())
    return list(urls)


def _joins_unchanged(base: str | None) -> bool:
    """Whether :func:`absolute_url` returns any link :func:`all_plain_absolute` accepts unchanged."""
    if base is None:
        return True
    if not isinstance(base, str):
        return False
    base_s = clean_str(base)
    if base_s is None:
        return True
    try:
        _split_base(base_s)
    except ValueError:
        return False  # urllib cannot split this base: absolute_url gives None for every link
    return True
