"""The sandbox's Cobalt feeds: Basic auth, a BOM'd CSV with quoted commas, strong ETags and 304s."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import httpx
import pytest

from include.sandbox.config import SandboxConfig
from include.sandbox.dealers import find_dealer

pytestmark = pytest.mark.unit

AUTH = ("sandbox-cobalt", "sandbox-cobalt-pass")
HEADER = (
    "VIN,Stock,Type,Year,Make,Model,Trim,Body,ExtColor,IntColor,Miles,SellingPrice,MSRP,"
    "Transmission,Drivetrain,FuelType,ImageURLs,VDPURL"
)
HERITAGE = "heritage-chevrolet"

Feed = Callable[..., httpx.Response]


def code(slug: str) -> str:
    dealer = find_dealer(slug)
    assert dealer is not None
    return str(dealer.platforms["cobalt"]["dealer_code"])


@pytest.fixture
def feed(client: httpx.Client) -> Feed:
    """``feed(slug, if_none_match=None, auth=AUTH)`` -> the feed response."""

    def get(
        slug: str, if_none_match: str | None = None, auth: tuple[str, str] | None = AUTH
    ) -> httpx.Response:
        headers = {"If-None-Match": if_none_match} if if_none_match else {}
        return client.get(f"/cobalt/feeds/{code(slug)}/inventory.csv", headers=headers, auth=auth)

    return get


def rows(response: httpx.Response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))


def test_the_feed_is_a_bom_crlf_csv_of_the_whole_lot(feed: Feed, client: httpx.Client) -> None:
    response = feed(HERITAGE)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf" + HEADER.encode() + b"\r\n")
    parsed = rows(response)
    truth = client.get(f"/_sandbox/truth/cobalt/{HERITAGE}").json()
    assert parsed == truth["vehicles"]  # the CSV round-trips to the rendered rows, quoted commas included
    assert sorted(r["VIN"] for r in parsed) == truth["vins"]
    assert len(parsed) == 120
    assert {r["Type"] for r in parsed} == {"New", "Used", "Certified"}
    assert sum(r["Type"] == "Certified" for r in parsed) == 10


def test_quirks_quoted_commas_dollar_prices_and_pipes(feed: Feed) -> None:
    response = feed(HERITAGE)
    parsed = rows(response)

    assert any(", " in r["Trim"] for r in parsed)
    assert b'"$' in response.content  # "$25,999.00" needs quoting
    priced = [r["SellingPrice"] for r in parsed if r["SellingPrice"] not in ("", "$0.00")]
    assert all(p.startswith("$") and p.endswith(".00") for p in priced)
    assert {r["SellingPrice"] for r in parsed} & {"", "$0.00"}  # some unknown prices
    assert all(r["MSRP"] == "" for r in parsed if r["Type"] != "New")
    assert any("|" in r["ImageURLs"] for r in parsed)
    assert any(r["VDPURL"] == "" for r in parsed)
    assert any("," in r["Miles"] for r in parsed)


def test_etag_is_strong_stable_and_a_match_is_304(feed: Feed, client: httpx.Client) -> None:
    first = feed(HERITAGE)
    etag = first.headers["ETag"]
    assert etag.startswith('"')  # strong: no W/ prefix
    assert feed(HERITAGE).headers["ETag"] == etag

    not_modified = feed(HERITAGE, if_none_match=etag)
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["ETag"] == etag
    assert feed(HERITAGE, if_none_match=f'"other", {etag}').status_code == 304
    assert feed(HERITAGE, if_none_match="*").status_code == 304
    assert feed(HERITAGE, if_none_match='"stale"').status_code == 200

    client.post("/_sandbox/reset")
    assert feed(HERITAGE, if_none_match=etag).status_code == 304  # same lot, same bytes, same ETag


def test_a_lot_change_changes_the_etag(feed: Feed, client: httpx.Client) -> None:
    etag = feed(HERITAGE).headers["ETag"]
    vin = rows(feed(HERITAGE))[0]["VIN"]
    client.post(f"/_sandbox/lots/cobalt/{HERITAGE}/update", json={"vin": vin, "fields": {"price": 18750}})

    changed = feed(HERITAGE, if_none_match=etag)
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert next(r for r in rows(changed) if r["VIN"] == vin)["SellingPrice"] == "$18,750.00"


@pytest.mark.parametrize("auth", [None, ("sandbox-cobalt", "wrong"), ("someone", "sandbox-cobalt-pass")])
def test_missing_or_wrong_basic_auth_is_401(feed: Feed, auth: tuple[str, str] | None) -> None:
    response = feed(HERITAGE, auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_a_broken_authorization_header_is_401_not_500(client: httpx.Client) -> None:
    response = client.get(
        f"/cobalt/feeds/{code(HERITAGE)}/inventory.csv", headers={"Authorization": "Basic !!notbase64"}
    )
    assert response.status_code == 401


def test_unknown_dealer_code_is_404(client: httpx.Client) -> None:
    assert client.get("/cobalt/feeds/NOSUCH/inventory.csv", auth=AUTH).status_code == 404


def test_request_log_records_conditional_requests_never_the_password(
    feed: Feed, client: httpx.Client
) -> None:
    etag = feed(HERITAGE).headers["ETag"]
    feed(HERITAGE, if_none_match=etag)
    log = client.get("/_sandbox/requests", params={"service": "cobalt", "dealer": HERITAGE}).json()[
        "requests"
    ]

    assert [(e["status"], e["n_vehicles"], e["detail"]["if_none_match"]) for e in log] == [
        (200, 120, None),
        (304, 0, etag),
    ]
    assert all(e["detail"]["etag"] == etag for e in log)
    assert "sandbox-cobalt-pass" not in str(log)


def test_the_faulty_feed_answers_429_with_retry_after_on_odd_requests(feed: Feed) -> None:
    responses = [feed("bluegrass-gmc") for _ in range(3)]
    assert [r.status_code for r in responses] == [429, 200, 429]
    assert responses[0].headers["Retry-After"] == "1"
    assert len(rows(responses[1])) == 76


def test_same_seed_same_etag_and_no_shared_state_across_sandboxes(
    make_client: Callable[[SandboxConfig], httpx.Client],
) -> None:
    one, two = make_client(SandboxConfig()), make_client(SandboxConfig())
    path = f"/cobalt/feeds/{code(HERITAGE)}/inventory.csv"
    seeded = one.get(path, auth=AUTH)
    assert two.get(path, auth=AUTH).headers["ETag"] == seeded.headers["ETag"]

    vin = rows(seeded)[0]["VIN"]
    one.post(f"/_sandbox/lots/cobalt/{HERITAGE}/update", json={"vin": vin, "fields": {"price": 1000}})
    assert one.get(path, auth=AUTH).headers["ETag"] != two.get(path, auth=AUTH).headers["ETag"]
