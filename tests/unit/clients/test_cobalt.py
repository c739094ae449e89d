"""CobaltClient against a fake feed server: conditional GET, BOM, quoted commas, failures (CONTRACTS §7)."""

from __future__ import annotations

import base64
import logging
from typing import Any

import httpx
import pytest

from od_scheduler.clients.cobalt import CobaltClient, feed_path
from od_scheduler.clients.retry import RetryPolicy
from od_scheduler.exceptions import ConfigError, PayloadError, PermanentUpstreamError

from .conftest import FakeClock, Script

pytestmark = pytest.mark.unit

BASE = "https://feeds.cobalt.test"
LOGIN = "od-reader"
PASSWORD = "pa55-cobalt-9e1f"
CODE = "HERCHEV"
ETAG = '"a1b2c3d4"'
HEADER = (
    "VIN,Stock,Type,Year,Make,Model,Trim,Body,ExtColor,IntColor,Miles,SellingPrice,MSRP,"
    "Transmission,Drivetrain,FuelType,ImageURLs,VDPURL"
)
ROW_1 = (
    '1GCUYDED7NZ100001,C1001,Certified,2022,Chevrolet,Silverado 1500,"LT Trail Boss, 4WD",'
    '"Crew Cab 5\'8"" Box",Summit White,Jet Black,"34,512","$41,999.00",,10-Speed Automatic,4WD,'
    "Gasoline Fuel,https://img.test/1.jpg|https://img.test/2.jpg,https://www.heritage.test/used/1"
)
ROW_2 = (
    '2GNAXUEV0L6100002,N2002,New,2025,Chevrolet,Equinox,LS,SUV,Mosaic Black,Jet Black,12,"$0.00",'
    '"$29,995.00",6-Speed Automatic,FWD,Gasoline Fuel,,'
)


def feed(*rows: str, bom: bool = True, header: str = HEADER) -> bytes:
    text = "\r\n".join([header, *rows]) + "\r\n"
    return (("\ufeff" if bom else "") + text).encode("utf-8")


def served(body: bytes, etag: str | None = ETAG) -> httpx.Response:
    headers = {"Content-Type": "text/csv; charset=utf-8"}
    if etag:
        headers["ETag"] = etag
    return httpx.Response(200, content=body, headers=headers)


def make_client(script: Script, clock: FakeClock, **kw: Any) -> CobaltClient:
    kw.setdefault("retry", RetryPolicy(max_attempts=3, jitter=False))
    return CobaltClient(
        base_url=BASE,
        login=LOGIN,
        password=PASSWORD,
        transport=script.transport,
        sleep=clock.sleep,
        clock=clock,
        conn_id="od_cobalt",
        **kw,
    )


def test_first_pull_fetches_with_basic_auth_and_keeps_the_etag(clock: FakeClock) -> None:
    script = Script(served(feed(ROW_1, ROW_2)))
    client = make_client(script, clock)
    vehicles = list(client.iter_inventory(CODE))

    assert [v.vin for v in vehicles] == ["1GCUYDED7NZ100001", "2GNAXUEV0L6100002"]
    (request,) = script.requests
    assert request.url.path == f"/feeds/{CODE}/inventory.csv"
    assert "If-None-Match" not in request.headers
    expected = base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert (client.feed.status, client.feed.etag, client.feed.not_modified) == (200, ETAG, False)
    assert (client.feed.rows, client.feed.malformed_rows) == (2, 0)


def test_304_to_the_saved_etag_yields_nothing(clock: FakeClock) -> None:
    script = Script(httpx.Response(304, headers={"ETag": ETAG}))
    client = make_client(script, clock)

    assert list(client.iter_inventory(CODE, etag=ETAG)) == []
    assert script.requests[0].headers["If-None-Match"] == ETAG
    assert client.feed.not_modified
    assert client.feed.etag == ETAG
    assert client.feed.status == 304


def test_a_changed_feed_answers_200_with_a_new_etag(clock: FakeClock) -> None:
    script = Script(served(feed(ROW_2), etag='"new-tag"'))
    client = make_client(script, clock)

    assert len(list(client.iter_inventory(CODE, etag=ETAG))) == 1
    assert script.requests[0].headers["If-None-Match"] == ETAG
    assert (client.feed.not_modified, client.feed.etag) == (False, '"new-tag"')


def test_304_without_having_asked_is_a_payload_error(clock: FakeClock) -> None:
    with pytest.raises(PayloadError, match="304 Not Modified to a request without If-None-Match"):
        list(make_client(Script(httpx.Response(304)), clock).iter_inventory(CODE))


def test_bom_quoted_commas_escaped_quotes_and_pipes_survive(clock: FakeClock) -> None:
    (first, second) = make_client(Script(served(feed(ROW_1, ROW_2))), clock).iter_inventory(CODE)

    assert first.vin == "1GCUYDED7NZ100001"  # not "\ufeffVIN" -> the BOM did not stick to the header
    assert first.trim == "LT Trail Boss, 4WD"
    assert first.body == "Crew Cab 5'8\" Box"
    assert first.miles == "34,512"
    assert first.selling_price == "$41,999.00"
    assert first.msrp is None
    assert first.image_urls == ["https://img.test/1.jpg", "https://img.test/2.jpg"]
    assert first.vdp_url == "https://www.heritage.test/used/1"
    assert first.row_problem is None
    assert second.image_urls == []
    assert second.vdp_url is None


def test_a_feed_without_bom_and_with_lf_line_ends_reads_the_same(clock: FakeClock) -> None:
    body = feed(ROW_1, ROW_2, bom=False).replace(b"\r\n", b"\n")
    vehicles = list(make_client(Script(served(body)), clock).iter_inventory(CODE))
    assert [v.trim for v in vehicles] == ["LT Trail Boss, 4WD", "LS"]


def test_header_names_match_regardless_of_case_blanks_and_order(clock: FakeClock) -> None:
    header = " vin ,TYPE,SellingPrice,Stock,Dealer Notes"
    body = feed('1GCUYDED7NZ100001,Used,"$9,500.00",S1,"call, ask for Sam"', header=header)
    client = make_client(Script(served(body)), clock)
    (vehicle,) = client.iter_inventory(CODE)

    assert (vehicle.vin, vehicle.type, vehicle.selling_price, vehicle.stock) == (
        "1GCUYDED7NZ100001",
        "Used",
        "$9,500.00",
        "S1",
    )
    assert client.feed.unknown_columns == ("Dealer Notes",)


def test_a_row_with_an_unquoted_comma_is_marked_not_shifted(clock: FakeClock) -> None:
    shifted = ROW_2.replace(",LS,", ",LS, AWD,")  # 19 fields for 18 columns
    client = make_client(Script(served(feed(ROW_1, shifted, "", ""))), clock)
    vehicles = list(client.iter_inventory(CODE))

    assert [v.row_problem for v in vehicles] == [None, "line 3: 19 fields, the header has 18"]
    assert (client.feed.rows, client.feed.malformed_rows) == (2, 1)  # blank lines are not rows


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the feed is empty"),
        (b"\xef\xbb\xbf", "the feed is empty"),
        (feed(ROW_1, header="Stock,Type,Year"), "the header row has no VIN column"),
        (feed(ROW_1).replace(b"Summit White", b"Summit Wh\xefte"), "not UTF-8"),
        # a runaway quote swallows the rest of the feed into one field, beyond the csv module's limit
        (feed(ROW_1, '1GCUYDED5NZ100009,"S9' + "x," * 70_000), "unreadable CSV at line 3"),
    ],
)
def test_unusable_feeds_are_payload_errors(clock: FakeClock, body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        list(make_client(Script(served(body)), clock).iter_inventory(CODE))


@pytest.mark.parametrize("status", [401, 403, 404])
def test_auth_and_unknown_feed_failures_are_permanent_and_not_retried(clock: FakeClock, status: int) -> None:
    script = Script(httpx.Response(status, text="Unauthorized"))
    with pytest.raises(PermanentUpstreamError) as info:
        list(make_client(script, clock).iter_inventory(CODE, etag=ETAG))

    assert info.value.status_code == status
    assert len(script.requests) == 1
    assert clock.sleeps == []


def test_5xx_and_429_are_retried_with_retry_after(clock: FakeClock) -> None:
    script = Script(
        httpx.Response(503),
        httpx.Response(429, headers={"Retry-After": "4"}),
        served(feed(ROW_1)),
    )
    client = make_client(script, clock)
    assert len(list(client.iter_inventory(CODE, etag=ETAG))) == 1

    assert clock.sleeps == [0.5, 4.0]
    assert all(r.headers["If-None-Match"] == ETAG for r in script.requests)  # every retry is conditional
    assert client.stats.rate_limits_hit == 1


def test_the_password_never_reaches_a_log_line_or_an_error(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    echo = f"bad credentials {LOGIN}:{PASSWORD}"
    script = Script(httpx.Response(503, text=echo), httpx.ReadTimeout, httpx.Response(401, text=echo))
    with caplog.at_level(logging.DEBUG), pytest.raises(PermanentUpstreamError) as info:
        list(make_client(script, clock).iter_inventory(CODE, etag=ETAG))

    assert len(caplog.records) >= 2
    for record in caplog.records:
        assert PASSWORD not in record.getMessage(), record.name
    assert PASSWORD not in str(info.value)
    assert "od_cobalt" in str(info.value)


def test_the_dealer_code_is_a_path_segment_never_a_path() -> None:
    assert feed_path("A/../B") == "/feeds/A%2F..%2FB/inventory.csv"


def test_missing_credentials_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Basic credentials"):
        CobaltClient(base_url=BASE, login="", password=PASSWORD)
