"""The sandbox's HomeNet transformer: per-rooftop auth, all-string fields, bare dealerurl, updatedSince."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from include.sandbox.dealers import find_dealer

pytestmark = pytest.mark.unit

PATH = "/homenet/v1/transform/homenet"
BEARER = "sandbox-homenet-token"
SHARED = "sandbox-homenet-integration"
LAKESIDE = "lakeside-honda"
LAKESIDE_ROOFTOP = "HN-20417"
LAKESIDE_TOKEN = "hn-int-lakeside-7c1e9b"


def rooftop_and_token(slug: str) -> tuple[str, str]:
    dealer = find_dealer(slug)
    assert dealer is not None
    config = dealer.platforms["homenet"]
    return config["rooftop_id"], config.get("integration_token") or SHARED


Transform = Callable[..., httpx.Response]


@pytest.fixture
def transform(client: httpx.Client) -> Transform:
    """``transform(slug, updated_since=None, token=<the dealer's>, bearer=BEARER)`` -> the response."""

    def get(
        slug: str, updated_since: str | None = None, token: str | None = None, bearer: str | None = BEARER
    ) -> httpx.Response:
        rooftop, own = rooftop_and_token(slug)
        params = {"rooftop": rooftop}
        if updated_since is not None:
            params["updatedSince"] = updated_since
        headers = {"X-HomeNet-Integration-Token": own if token is None else token}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        return client.get(PATH, params=params, headers=headers)

    return get


def _truth(client: httpx.Client, slug: str) -> dict[str, Any]:
    return client.get(f"/_sandbox/truth/homenet/{slug}").json()


def test_a_rooftop_is_served_whole_with_every_field_a_string(
    transform: Transform, client: httpx.Client
) -> None:
    response = transform(LAKESIDE)
    body = response.json()

    assert response.status_code == 200
    assert body["rooftop"] == LAKESIDE_ROOFTOP
    vehicles = body["vehicles"]
    assert sorted(v["vin"] for v in vehicles) == _truth(client, LAKESIDE)["vins"]
    assert len(vehicles) == 135
    for vehicle in vehicles:
        assert all(isinstance(value, str) for key, value in vehicle.items() if key != "imagelist"), vehicle
        assert all(isinstance(url, str) and url.startswith("https://") for url in vehicle["imagelist"])
        assert vehicle["type"] in ("New", "Used")
        assert vehicle["certified"] in ("True", "False")
    # 45 new / 70 used / 20 certified: certified pre-owned is Used + certified "True"
    kinds = Counter((v["type"], v["certified"]) for v in vehicles)
    assert kinds == {("New", "False"): 45, ("Used", "False"): 70, ("Used", "True"): 20}


def test_unknowns_are_zero_or_empty_strings(transform: Transform) -> None:
    vehicles = transform("bayview-auto-group").json()["vehicles"] + transform(LAKESIDE).json()["vehicles"]

    prices = Counter(v["price"] for v in vehicles if not v["price"].isdigit() or v["price"] == "0")
    assert set(prices) == {"0", ""}, prices  # unknown prices, both spellings
    assert all(v["msrp"] in ("0", "") for v in vehicles if v["type"] == "Used")
    assert any(v["miles"] == "0" for v in vehicles if v["type"] == "New")
    assert any(v["description"] == "" for v in vehicles)
    assert any(v["imagelist"] == [] for v in vehicles)


def test_dealerurl_is_mostly_the_bare_domain(transform: Transform) -> None:
    vehicles = transform(LAKESIDE).json()["vehicles"]
    urls = Counter(
        "bare" if "://" not in v["dealerurl"] else "home" if v["dealerurl"].endswith(".com/") else "page"
        for v in vehicles
    )
    assert urls["bare"] > urls["home"] > 0
    assert urls["bare"] > urls["page"] > 0
    assert {v["dealerurl"] for v in vehicles if "://" not in v["dealerurl"]} == {"www.lakesidehonda.com"}
    pages = [v for v in vehicles if v["dealerurl"].endswith(".htm")]
    assert all(v["vin"] in v["dealerurl"] for v in pages)


def test_updated_since_keeps_only_vehicles_changed_since(transform: Transform, client: httpx.Client) -> None:
    seeded = transform(LAKESIDE).json()["vehicles"]
    stamps = sorted(v["datelastmodified"] for v in seeded)
    assert stamps[-1] < "2025-11-15"  # seeded stamps are before the reference day
    middle = stamps[len(stamps) // 2]
    assert 0 < len(transform(LAKESIDE, middle).json()["vehicles"]) < len(seeded)

    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    assert transform(LAKESIDE, since).json()["vehicles"] == []

    vin = seeded[0]["vin"]
    client.post(f"/_sandbox/lots/homenet/{LAKESIDE}/update", json={"vin": vin, "fields": {"price": 21995}})
    added = client.post(f"/_sandbox/lots/homenet/{LAKESIDE}/add", json={"used": 2}).json()["added"]
    changed = transform(LAKESIDE, since).json()["vehicles"]

    assert sorted(v["vin"] for v in changed) == sorted([vin, *added])
    assert next(v for v in changed if v["vin"] == vin)["price"] == "21995"
    assert all(v["datelastmodified"] >= since[:19] for v in changed)
    # the same lot on Dealer.com is untouched: platforms' lots are independent
    assert not set(added) & set(client.get(f"/_sandbox/truth/dealer.com/{LAKESIDE}").json()["vins"])


def test_updated_since_accepts_z_and_offsets_and_rejects_garbage(transform: Transform) -> None:
    assert transform(LAKESIDE, "2030-01-01T00:00:00Z").json()["vehicles"] == []
    assert len(transform(LAKESIDE, "2020-01-01T00:00:00-05:00").json()["vehicles"]) == 135
    assert transform(LAKESIDE, "yesterday").status_code == 400


def test_bearer_token_is_checked_first(transform: Transform) -> None:
    assert transform(LAKESIDE, bearer=None).status_code == 401
    assert transform(LAKESIDE, bearer="wrong").status_code == 401


@pytest.mark.parametrize(
    ("slug", "token"),
    [
        (LAKESIDE, SHARED),  # a dealer with its own token must use it, not the shared one
        (LAKESIDE, "hn-int-bayview-3f8a2d"),  # another dealer's token
        (LAKESIDE, ""),
        ("twin-rivers-auto", LAKESIDE_TOKEN),  # a dealer without its own token takes only the shared one
    ],
)
def test_an_integration_token_that_is_not_the_rooftops_is_403(
    transform: Transform, slug: str, token: str
) -> None:
    response = transform(slug, token=token)
    assert response.status_code == 403
    assert "rooftop" in response.json()["error"]


def test_a_dealer_without_its_own_token_uses_the_shared_one(transform: Transform) -> None:
    response = transform("twin-rivers-auto", token=SHARED)
    assert response.status_code == 200
    assert len(response.json()["vehicles"]) == 45


def test_missing_or_unknown_rooftop(client: httpx.Client) -> None:
    headers = {"Authorization": f"Bearer {BEARER}", "X-HomeNet-Integration-Token": SHARED}
    assert client.get(PATH, headers=headers).status_code == 400
    assert client.get(PATH, params={"rooftop": "HN-00000"}, headers=headers).status_code == 404


def test_request_log_shows_rooftop_and_whose_token_never_the_token(
    transform: Transform, client: httpx.Client
) -> None:
    transform(LAKESIDE)
    transform("twin-rivers-auto", "2025-11-01T00:00:00Z")
    transform(LAKESIDE, token="hn-int-bayview-3f8a2d")
    log = client.get("/_sandbox/requests", params={"service": "homenet"}).json()["requests"]

    assert [(e["dealer_slug"], e["status"], e["detail"]) for e in log] == [
        (LAKESIDE, 200, {"rooftop": LAKESIDE_ROOFTOP, "updated_since": None, "token_owner": LAKESIDE}),
        (
            "twin-rivers-auto",
            200,
            {"rooftop": "HN-33190", "updated_since": "2025-11-01T00:00:00Z", "token_owner": "shared"},
        ),
        (
            LAKESIDE,
            403,
            {"rooftop": LAKESIDE_ROOFTOP, "updated_since": None, "token_owner": "bayview-auto-group"},
        ),
    ]
    text = str(log)
    assert LAKESIDE_TOKEN not in text
    assert SHARED not in text
    assert BEARER not in text


def test_the_faulty_rooftop_fails_every_odd_request(transform: Transform) -> None:
    statuses = [transform("northgate-subaru").status_code for _ in range(4)]
    assert statuses == [503, 200, 503, 200]
