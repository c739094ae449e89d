"""Normalization of the values sources send: money, numbers, dates, URLs, text."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from od_scheduler.models.normalize import (
    Condition,
    absolute_url,
    clean_str,
    parse_bool,
    parse_condition,
    parse_datetime,
    parse_int,
    parse_money,
    parse_us_date,
    parse_year,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$37,088", Decimal("37088.00")),
        ("$25,999.00", Decimal("25999.00")),
        (37088, Decimal("37088.00")),
        ("37088.5", Decimal("37088.50")),
        (19999.99, Decimal("19999.99")),
        (" USD 1,200 ", Decimal("1200.00")),
        ("0", None),
        ("$0", None),
        ("0.00", None),
        (0, None),
        ("", None),
        (None, None),
        ("N/A", None),
        ("Call for price", None),
        ("-500", None),
        (-1, None),
        (True, None),
        (float("nan"), None),
        ("Infinity", None),
        ("0.004", None),  # rounds to $0.00: unknown too
        ("1e40", None),
    ],
)
def test_parse_money(raw: object, expected: Decimal | None) -> None:
    assert parse_money(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("34,512", 34512),
        (34512, 34512),
        ("34512.0", 34512),
        ("34,512 mi", 34512),
        ("0", 0),
        ("-3", -3),
        ("", None),
        (None, None),
        ("12.5", None),
        ("twelve", None),
        (True, None),
    ],
)
def test_parse_int(raw: object, expected: int | None) -> None:
    assert parse_int(raw) == expected


def test_parse_year() -> None:
    assert parse_year("2024") == 2024
    assert parse_year(1975) == 1975
    assert parse_year("0") is None
    assert parse_year("24") is None
    assert parse_year("") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("03/15/2024", date(2024, 3, 15)),
        ("3/5/2024", date(2024, 3, 5)),
        (" 12/31/2023 ", date(2023, 12, 31)),
        ("00/24/2025", None),
        ("13/01/2025", None),
        ("02/30/2024", None),
        ("2024-03-15", None),
        ("", None),
        (None, None),
        (20240315, None),
    ],
)
def test_parse_us_date(raw: object, expected: date | None) -> None:
    assert parse_us_date(raw) == expected


def test_parse_datetime_is_utc() -> None:
    assert parse_datetime("2025-01-02T03:04:05Z") == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_datetime("2025-01-02T05:04:05+02:00") == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    naive = parse_datetime("2025-01-02T03:04:05")
    assert naive == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert naive is not None
    assert naive.utcoffset() == timedelta(0)
    aware = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5)))
    parsed = parse_datetime(aware)
    assert parsed is not None
    assert parsed.tzinfo is UTC
    assert parsed.hour == 8
    for bad in ("", "yesterday", "2025-13-01T00:00:00Z", None, 12345):
        assert parse_datetime(bad) is None


@pytest.mark.parametrize(
    ("base", "link", "expected"),
    [
        ("https://www.dealer.test", "/used/Ford/x.htm", "https://www.dealer.test/used/Ford/x.htm"),
        ("https://www.dealer.test/", "used/x.htm", "https://www.dealer.test/used/x.htm"),
        ("www.dealer.test", "/used/x.htm", "https://www.dealer.test/used/x.htm"),
        ("https://www.dealer.test", "//pictures.test/a.jpg", "https://pictures.test/a.jpg"),
        (None, "//pictures.test/a.jpg", "https://pictures.test/a.jpg"),
        ("https://www.dealer.test", "http://other.test/a", "http://other.test/a"),
        (None, "https://other.test/a", "https://other.test/a"),
        (None, "/relative/without/base", None),
        ("https://www.dealer.test", "javascript:void(0)", None),
        ("https://www.dealer.test", "mailto:sales@dealer.test", None),
        ("https://www.dealer.test", "", None),
        ("https://www.dealer.test", None, None),
    ],
)
def test_absolute_url(base: str | None, link: str | None, expected: str | None) -> None:
    assert absolute_url(base, link) == expected


def test_clean_str_and_parse_bool() -> None:
    assert clean_str("  Ford ") == "Ford"
    assert clean_str("   ") is None
    assert clean_str("") is None
    assert clean_str(None) is None
    assert clean_str(2024) == "2024"
    assert clean_str({"a": 1}) is None
    assert [parse_bool(v) for v in ("True", "false", True, 0, "yes", "maybe", None)] == [
        True,
        False,
        True,
        False,
        True,
        None,
        None,
    ]


def _absolute_url_before_issue_12(base: str | None, link: str | None) -> str | None:
    """``absolute_url`` exactly as ``main`` has it (urllib for every link, no fast paths): the reference.

    Main's version at 10c3719 (hostile-input hardening): a URL urllib cannot split, or whose port is no
    number in range, gives ``None`` instead of a ``ValueError``.
    """
    from urllib.parse import urljoin, urlsplit

    from od_scheduler.models.normalize import clean_str

    link_s = clean_str(link)
    if link_s is None:
        return None
    if link_s.startswith("//"):
        link_s = "https:" + link_s
    base_s = clean_str(base)
    try:  # urlsplit raises ValueError for text such as "http://[" (an unclosed IPv6 bracket)
        if base_s is not None:
            if base_s.startswith("//"):
                base_s = "https:" + base_s
            elif "://" not in base_s:
                base_s = "https://" + base_s
            if not base_s.endswith("/") and not urlsplit(base_s).path:
                base_s += "/"
            link_s = urljoin(base_s, link_s)
        parts = urlsplit(link_s)
        _ = parts.port  # raises ValueError for a port that is no number in range
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return link_s


def _outcome(fn: Any, base: Any, link: Any) -> tuple[str, object]:
    try:
        return ("ok", fn(base, link))
    except ValueError as err:
        return (type(err).__name__, str(err))


_BASES: tuple[object, ...] = (
    None,
    "",
    "   ",
    42,
    "https://www.example.com",
    "https://www.example.com/",
    "https://dealer.test/inventory/index.htm",
    "https://dealer.test/a/b/",
    "https://dealer.test?x=1",
    "https://dealer.test#top",
    "http://dealer.test",
    "HTTPS://Dealer.Test",
    "  https://dealer.test  ",
    "dealer.test",
    "dealer.test:8080",
    "dealer.test:abc",
    "https://dealer.test:99999/x/",
    "//dealer.test/site/",
    "https://user:pw@dealer.test:8443",
    "ftp://dealer.test",
    "mailto:sales@dealer.test",
    "https://",
    "https:///path",
    "https://[::1]",
    "https://[::1",
    "https://bücher.test",
    "https://dealer.te\tst",
)
_LINKS: tuple[object, ...] = (
    None,
    42,
    "",
    "  ",
    "https://pictures.dealer.com/r/riversidetoyotail/5143/bc6be95407aefc2b57906b1e455a75f6x.jpg",
    "http://cdn.test/x.jpg",
    "https://cdn.test",
    "https://cdn.test?x=1",
    "https://cdn.test#top",
    "https://cdn.test/p.jpg?w=640&h=480",
    "https://cdn.test/q.jpg#frag",
    "https://cdn.test/k.jpg?",
    "https://cdn.test/l.jpg#",
    "https://cdn.test/m.jpg?#",
    "https://cdn.test/m.jpg?a#",
    "https://cdn.test/m.jpg#a?",
    "https://cdn.test/n.jpg;",
    "https://cdn.test/o.jpg;v=1",
    "https://cdn.test/a/../r.jpg",
    "https://cdn.test/a/./s.jpg",
    "https://cdn.test//t.jpg",
    "https://cdn.test/i j.jpg",
    "https://cdn.test/tab\t.jpg",
    "https://cdn.test/nl\n.jpg",
    "https://cdn.test/é.jpg",
    "https://bücher.test/x.jpg",
    "https://\u2100.test/x.jpg",
    "https://[::1]/z.jpg",
    "https://[::1/z.jpg",
    "https://user:pw@cdn.test:8443/auth.jpg",
    "https://cdn.test:8443/port.jpg",
    "https://cdn.test:99999/port.jpg",
    "https://cdn.test:abc/port.jpg",
    "https://cdn.test:/port.jpg",
    "https://cdn.test/a:b/colon.jpg",
    "HTTPS://CDN.TEST/F.JPG",
    "Https://cdn.test/g.jpg",
    " https://cdn.test/h.jpg ",
    "\x00https://cdn.test/null.jpg",
    "https://cdn.test/ctl\x1f",
    "https://cdn.test/del\x7f",
    "https:///w.jpg",
    "https:x.jpg",
    "http:/cdn.test/one-slash.jpg",
    "https://",
    "https://?q",
    "https://#f",
    "//cdn.test/e.jpg",
    "///cdn.test/e.jpg",
    "/used/Honda/2003-Honda-Accord.htm",
    "/used/x.htm?utm=1#top",
    "/used/x.htm?",
    "/used/x.htm#",
    "/used/x.htm;jsessionid=1",
    "/a//u.jpg",
    "/a/../v.jpg",
    "/a/./v.jpg",
    "/.well-known/x",
    "/a/",
    "/",
    "/?q=1",
    "/#f",
    "img/b.jpg",
    "../c.jpg",
    "./d.jpg",
    "?q=1",
    "#frag",
    "javascript:alert(1)",
    "mailto:a@b.test",
    "data:image/png;base64,AAAA",
    "ftp://cdn.test/y.jpg",
)


@pytest.mark.parametrize("base", _BASES)
def test_absolute_url_fast_paths_agree_with_urllib(base: object) -> None:
    for link in _LINKS:
        assert _outcome(absolute_url, base, link) == _outcome(_absolute_url_before_issue_12, base, link), link


def test_absolute_url_fast_paths_agree_with_urllib_on_random_links() -> None:
    import random

    rng = random.Random(12)
    pieces = ["https://", "http://", "HTTP://", "//", "/", "/.", "..", ".", "?", "#", ";", "[", "]", ":", "@",
              "a", "b.jpg", "x", "é", " ", "\t", "%20", "=", "&", "\\", "\x00", "~"]  # fmt: skip
    for _ in range(20_000):
        link = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        base = rng.choice(_BASES)
        assert _outcome(absolute_url, base, link) == _outcome(_absolute_url_before_issue_12, base, link), (
            base,
            link,
        )


def _absolute_urls_before_issue_12(base: str | None, links: list[object]) -> list[str]:
    urls: list[str] = []
    for link in links:
        if not isinstance(link, str) or not link.strip():
            continue
        url = _absolute_url_before_issue_12(base, link) or link.strip()
        if url not in urls:
            urls.append(url)
    return urls


def test_list_fast_paths_agree_with_urllib_on_random_lists() -> None:
    import random

    from od_scheduler.models.normalize import absolute_urls, all_plain_absolute

    rng = random.Random(7)
    plain = [link for link in _LINKS if isinstance(link, str) and link.startswith("http")]
    accepted = 0
    for _ in range(5_000):
        links = [rng.choice(plain) for _ in range(rng.randint(0, 5))]
        if rng.random() < 0.2 and links:
            links.append(links[0])
        if all_plain_absolute(links):
            accepted += 1
            assert all(_absolute_url_before_issue_12(None, link) == link for link in links)
        for base in _BASES:
            assert _outcome(absolute_urls, base, links) == _outcome(
                _absolute_urls_before_issue_12, base, links
            )
    assert accepted > 100  # the fast path was taken, not only the fallback


def test_all_plain_absolute_accepts_only_links_that_come_back_unchanged() -> None:
    from od_scheduler.models.normalize import all_plain_absolute

    assert all_plain_absolute(["https://cdn.test/a.jpg", "http://cdn.test/b.jpg?w=1#x"])
    for odd in _LINKS:
        if all_plain_absolute([odd]):
            for base in _BASES:
                # unchanged, or None for a base urllib cannot split
                outcome = _outcome(_absolute_url_before_issue_12, base, odd)
                assert outcome in (("ok", odd), ("ok", None)), (base, odd)
    assert not all_plain_absolute([])
    assert not all_plain_absolute(["https://cdn.test/a.jpg", 42])
    assert not all_plain_absolute(["https://cdn.test/a.jpg\nhttps://cdn.test/b.jpg"])


def test_all_plain_absolute_remembers_only_lists_it_accepted() -> None:
    from od_scheduler.models.normalize import absolute_urls, all_plain_absolute

    good = ["https://cdn.test/a.jpg", "https://cdn.test/b.jpg"]
    assert all_plain_absolute(good)
    assert all_plain_absolute(list(good))  # remembered: same answer
    assert not all_plain_absolute([*good, "https://cdn.test/c.jpg;"])
    assert not all_plain_absolute(["https://cdn.test/a.jpg?", "https://cdn.test/b.jpg"])

    class Sneaky(str):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = str.__hash__

    assert not all_plain_absolute([Sneaky("javascript:x"), Sneaky("y")])  # only exact strs
    # absolute_urls remembers its de-duplicated result; a list with one link changed is checked again.
    assert absolute_urls(None, [*good, good[0]]) == good
    assert all_plain_absolute(good)
    assert not all_plain_absolute([good[0], "https://cdn.test/b.jpg "])


def test_parse_int_of_an_int_is_what_the_decimal_path_gives() -> None:
    from decimal import Decimal

    from hypothesis import given
    from hypothesis import strategies as st

    from od_scheduler.models.normalize import parse_int

    @given(st.one_of(st.integers(), st.integers(min_value=-(10**19), max_value=10**19)))
    def check(v: int) -> None:
        d = Decimal(v)
        assert parse_int(v) == (int(d) if d.adjusted() <= 17 else None)
        assert parse_int(v) == parse_int(str(v))

    check()
    for edge in (10**18 - 1, 10**18, -(10**18 - 1), -(10**18), 0):
        assert parse_int(edge) == parse_int(Decimal(edge))
    assert parse_int(True) is None
    assert parse_int(False) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("New", Condition.NEW),
        ("USED", Condition.USED),
        ("Pre-Owned", Condition.USED),
        ("Certified Used", Condition.CERTIFIED),
        ("CPO", Condition.CERTIFIED),
        ("Demo", None),
        ("", None),
        ("Renewed", None),
    ],
)
def test_parse_condition(text: str, expected: Condition | None) -> None:
    assert parse_condition(text) == expected
