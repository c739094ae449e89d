"""The sandbox's Apify: scripted runs counted in polls, waitForFinish, abort, datasets with noisy items."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from include.sandbox.config import SandboxConfig
from include.sandbox.dealers import DEALERS, find_dealer
from include.sandbox.vin import check_digit, is_valid

pytestmark = pytest.mark.unit

TOKEN = "sandbox-apify-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ACTOR = "opendealer~dealer-inventory-scraper"
SCRAPED = [d for d in DEALERS if "web_scraping" in d.platforms]


def run_input(slug: str, **over: Any) -> dict[str, Any]:
    dealer = find_dealer(slug)
    assert dealer is not None
    config = dealer.platforms["web_scraping"]
    body: dict[str, Any] = {"startUrls": [{"url": u} for u in config["start_urls"]], "dealerId": dealer.id}
    if config.get("max_items"):
        body["maxItems"] = config["max_items"]
    body.update(over)
    return body


Start = Callable[..., dict[str, Any]]


@pytest.fixture
def start(client: httpx.Client) -> Start:
    """``start(slug, **input overrides)`` -> the new run (asserts 201)."""

    def post(slug: str, **over: Any) -> dict[str, Any]:
        response = client.post(f"/apify/v2/acts/{ACTOR}/runs", json=run_input(slug, **over), headers=AUTH)
        assert response.status_code == 201, response.text
        return response.json()["data"]

    return post


def poll(client: httpx.Client, run_id: str, wait: int = 0) -> httpx.Response:
    return client.get(f"/apify/v2/actor-runs/{run_id}", params={"waitForFinish": wait}, headers=AUTH)


def statuses(client: httpx.Client, run_id: str, n: int) -> list[str]:
    return [poll(client, run_id).json()["data"]["status"] for _ in range(n)]


def all_items(client: httpx.Client, dataset_id: str, limit: int = 25, clean: bool = True) -> list[dict]:
    items: list[dict] = []
    offset = 0
    while True:
        response = client.get(
            f"/apify/v2/datasets/{dataset_id}/items",
            params={"offset": offset, "limit": limit, "clean": str(clean).lower(), "format": "json"},
            headers=AUTH,
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items += page
        offset += len(page)
        if not page or offset >= int(response.headers["X-Apify-Pagination-Total"]):
            return items


def test_a_started_run_is_ready_with_apify_shaped_ids(start: Start) -> None:
    run = start("hilltop-used-cars")

    assert run["status"] == "READY"
    assert run["actId"] == ACTOR
    assert len(run["id"]) == len(run["defaultDatasetId"]) == 17
    assert run["id"].isalnum()
    assert run["finishedAt"] is None


def test_default_run_is_running_for_two_polls_then_succeeds(client: httpx.Client, start: Start) -> None:
    run = start("hilltop-used-cars")

    assert statuses(client, run["id"], 4) == ["RUNNING", "RUNNING", "SUCCEEDED", "SUCCEEDED"]
    finished = poll(client, run["id"]).json()["data"]
    assert finished["finishedAt"] is not None


@pytest.mark.parametrize(
    ("slug", "expected"),
    [
        ("canyon-creek-autos", ["RUNNING", "FAILED", "FAILED"]),
        ("prairie-wind-motors", ["RUNNING", "RUNNING", "TIMED-OUT"]),
        ("endless-acres-auto", ["RUNNING"] * 3),
    ],
)
def test_scripted_runs_end_as_their_dealer_says(
    client: httpx.Client, start: Start, slug: str, expected: list[str]
) -> None:
    run = start(slug)

    assert statuses(client, run["id"], len(expected)) == expected


def test_a_failed_run_says_why(client: httpx.Client, start: Start) -> None:
    run = start("canyon-creek-autos")
    statuses(client, run["id"], 2)

    assert "403" in poll(client, run["id"]).json()["data"]["statusMessage"]


def test_a_run_that_never_finishes_ends_only_when_aborted(client: httpx.Client, start: Start) -> None:
    run = start("endless-acres-auto")
    assert set(statuses(client, run["id"], 12)) == {"RUNNING"}

    aborted = client.post(f"/apify/v2/actor-runs/{run['id']}/abort", headers=AUTH)

    assert aborted.status_code == 200
    assert aborted.json()["data"]["status"] == "ABORTING"
    assert statuses(client, run["id"], 2) == ["ABORTED", "ABORTED"]
    listed = client.get("/_sandbox/apify/runs", params={"dealer": "endless-acres-auto"}).json()["runs"]
    assert [(r["id"], r["status"], r["aborted"]) for r in listed] == [(run["id"], "ABORTED", True)]
    log = client.get("/_sandbox/requests", params={"service": "apify"}).json()["requests"]
    assert [e["path"] for e in log if e["method"] == "POST"][-1].endswith(f"/{run['id']}/abort")


def test_aborting_a_finished_run_changes_nothing(client: httpx.Client, start: Start) -> None:
    run = start("hilltop-used-cars")
    statuses(client, run["id"], 3)

    answer = client.post(f"/apify/v2/actor-runs/{run['id']}/abort", headers=AUTH).json()["data"]

    assert answer["status"] == "SUCCEEDED"
    assert client.get("/_sandbox/apify/runs").json()["runs"][0]["aborted"] is False


def test_wait_for_finish_holds_a_running_poll_briefly_and_a_finishing_one_not_at_all(
    client: httpx.Client, start: Start
) -> None:
    run = start("hilltop-used-cars")

    began = time.monotonic()
    assert poll(client, run["id"], wait=60).json()["data"]["status"] == "RUNNING"
    held = time.monotonic() - began
    began = time.monotonic()
    assert poll(client, run["id"], wait=0).json()["data"]["status"] == "RUNNING"
    not_held = time.monotonic() - began
    began = time.monotonic()
    assert poll(client, run["id"], wait=60).json()["data"]["status"] == "SUCCEEDED"
    finishing = time.monotonic() - began

    assert 0.2 <= held < 2
    assert not_held < 0.2
    assert finishing < 0.2


@pytest.mark.parametrize("wait", ["61", "-1", "soon"])
def test_wait_for_finish_outside_0_to_60_is_refused(client: httpx.Client, start: Start, wait: str) -> None:
    run = start("hilltop-used-cars")
    response = client.get(f"/apify/v2/actor-runs/{run['id']}", params={"waitForFinish": wait}, headers=AUTH)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid-parameter"


def test_the_token_is_required_in_the_header_and_refused_in_the_url(
    client: httpx.Client, start: Start
) -> None:
    run = start("hilltop-used-cars")
    path = f"/apify/v2/actor-runs/{run['id']}"

    missing = client.get(path)
    wrong = client.get(path, headers={"Authorization": "Bearer nope"})
    in_url = client.get(path, params={"token": TOKEN}, headers=AUTH)

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.json()["error"]["type"] == "token-not-valid"
    assert in_url.status_code == 400
    assert "Authorization: Bearer" in in_url.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (f"/apify/v2/acts/{ACTOR}/runs", {"dealerId": "nobody", "startUrls": []}, 400),
        (f"/apify/v2/acts/{ACTOR}/runs", run_input("hilltop-used-cars", startUrls=[{"url": "x"}]), 400),
        (f"/apify/v2/acts/{ACTOR}/runs", run_input("hilltop-used-cars", maxItems=0), 400),
        ("/apify/v2/acts/someone~other-actor/runs", run_input("hilltop-used-cars"), 404),
        (  # a dealer that is not scraped
            f"/apify/v2/acts/{ACTOR}/runs",
            {**run_input("hilltop-used-cars"), "dealerId": find_dealer("riverside-toyota").id},  # type: ignore[union-attr]
            400,
        ),
    ],
)
def test_bad_run_input_is_refused(client: httpx.Client, path: str, body: dict, status: int) -> None:
    response = client.post(path, json=body, headers=AUTH)

    assert response.status_code == status
    assert set(response.json()["error"]) == {"type", "message"}


def test_unknown_runs_and_datasets_are_404(client: httpx.Client) -> None:
    assert poll(client, "A" * 17).status_code == 404
    assert client.get("/apify/v2/datasets/nope/items", headers=AUTH).status_code == 404
    assert client.post("/apify/v2/actor-runs/nope/abort", headers=AUTH).status_code == 404


def test_dataset_pages_reach_every_item_and_announce_the_total(client: httpx.Client, start: Start) -> None:
    run = start("hilltop-used-cars")
    statuses(client, run["id"], 3)
    first = client.get(
        f"/apify/v2/datasets/{run['defaultDatasetId']}/items",
        params={"offset": 0, "limit": 25, "clean": "true", "format": "json"},
        headers=AUTH,
    )

    items = all_items(client, run["defaultDatasetId"], limit=25)
    truth = client.get("/_sandbox/truth/web_scraping/hilltop-used-cars").json()

    total = int(first.headers["X-Apify-Pagination-Total"])
    assert first.headers["X-Apify-Pagination-Count"] == "25"
    assert first.headers["X-Apify-Pagination-Limit"] == "25"
    assert len(items) == total > len(truth["vins"]) == 60  # re-crawled pages come again at the end
    assert items[:60] == [{k: v for k, v in i.items() if k != "#debug"} for i in truth["vehicles"]]
    for item in items[60:]:
        assert item in items[:60]


def test_clean_drops_hidden_fields(client: httpx.Client, start: Start) -> None:
    run = start("twin-rivers-auto")
    statuses(client, run["id"], 3)

    cleaned = all_items(client, run["defaultDatasetId"], clean=True)
    raw = all_items(client, run["defaultDatasetId"], clean=False)

    assert all("#debug" in item for item in raw)
    assert not any(k.startswith("#") for item in cleaned for k in item)
    assert len(cleaned) == len(raw)


def test_before_success_the_dataset_holds_only_what_was_scraped_so_far(
    client: httpx.Client, start: Start
) -> None:
    run = start("hilltop-used-cars")
    dataset = run["defaultDatasetId"]
    sizes = []
    for _ in range(3):
        sizes.append(len(all_items(client, dataset)))
        poll(client, run["id"])
    sizes.append(len(all_items(client, dataset)))

    assert sizes[0] == 0
    assert sizes[0] < sizes[1] < sizes[2] < sizes[3]


def test_max_items_caps_the_dataset(client: httpx.Client, start: Start) -> None:
    run = start("hilltop-used-cars", maxItems=7)
    statuses(client, run["id"], 3)

    assert len(all_items(client, run["defaultDatasetId"], limit=5)) == 7


def test_scraped_items_are_noisy_but_never_wrong_about_valid_vins(client: httpx.Client) -> None:
    vins: Counter[str] = Counter()
    prices: Counter[str] = Counter()
    miles: Counter[str] = Counter()
    for dealer in SCRAPED:
        truth = client.get(f"/_sandbox/truth/web_scraping/{dealer.slug}").json()
        lot = set(truth["vins"])
        for item in truth["vehicles"]:
            vin = item.get("vin", "<absent>")
            if vin in (None, "", "<absent>"):
                vins[f"missing {vin!r}"] += 1
            elif is_valid(vin):
                vins["valid"] += 1
                assert vin in lot
            elif "O" in vin:
                vins["letter O"] += 1
            elif len(vin) == 16:
                vins["cut off"] += 1
            elif len(vin) == 17 and vin[8] != check_digit(vin):
                vins["check digit"] += 1
            else:
                vins["other"] += 1
            price = item["price"]
            prices[
                "number" if isinstance(price, int) else "$" if str(price).startswith("$") else "unknown"
            ] += 1
            miles["text" if isinstance(item["mileage"], str) else "number"] += 1

    assert set(vins) == {
        "valid",
        "missing None",
        "missing ''",
        "missing '<absent>'",
        "check digit",
        "letter O",
        "cut off",
    }
    assert vins["valid"] > 0.85 * sum(vins.values())
    assert set(prices) == {"number", "$", "unknown"}
    assert set(miles) == {"number", "text"}


def test_bargain_barn_rate_limits_every_third_request_with_apify_s_body(client: httpx.Client) -> None:
    body = run_input("bargain-barn-autos")
    responses = [client.post(f"/apify/v2/acts/{ACTOR}/runs", json=body, headers=AUTH) for _ in range(3)]

    assert [r.status_code for r in responses] == [201, 201, 429]
    assert responses[2].headers["Retry-After"] == "1"
    assert responses[2].json()["error"]["type"] == "rate-limit-exceeded"


def test_request_log_records_runs_and_never_the_token(client: httpx.Client, start: Start) -> None:
    run = start("hilltop-used-cars")
    poll(client, run["id"])

    log = client.get("/_sandbox/requests", params={"service": "apify", "dealer": "hilltop-used-cars"})
    entries = log.json()["requests"]

    assert [(e["method"], e["status"], e["detail"]["run_id"]) for e in entries] == [
        ("POST", 201, run["id"]),
        ("GET", 200, run["id"]),
    ]
    assert entries[1]["detail"]["wait_for_finish"] == 0
    assert TOKEN not in log.text


def test_reset_forgets_runs(client: httpx.Client, start: Start) -> None:
    run = start("hilltop-used-cars")

    client.post("/_sandbox/reset").raise_for_status()

    assert client.get("/_sandbox/apify/runs").json() == {"runs": []}
    assert poll(client, run["id"]).status_code == 404


def test_same_seed_same_runs_and_datasets(make_client: Callable[[SandboxConfig], httpx.Client]) -> None:
    def scrape(http: httpx.Client) -> tuple[str, list[dict]]:
        response = http.post(f"/apify/v2/acts/{ACTOR}/runs", json=run_input("twin-rivers-auto"), headers=AUTH)
        run = response.json()["data"]
        statuses(http, run["id"], 3)
        return run["id"], all_items(http, run["defaultDatasetId"])

    first, second = scrape(make_client(SandboxConfig())), scrape(make_client(SandboxConfig()))
    other = scrape(make_client(SandboxConfig(seed=7)))

    assert first == second
    assert other != first


def list_runs(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get(f"/apify/v2/acts/{ACTOR}/runs", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_the_actors_runs_are_listed_as_apify_lists_them(client: httpx.Client, start: Start) -> None:
    first = start("hilltop-used-cars")
    second = start("canyon-creek-autos")
    third = start("hilltop-used-cars")

    oldest_first = list_runs(client)
    newest_two = list_runs(client, desc=1, limit=2)

    assert [r["id"] for r in oldest_first["items"]] == [first["id"], second["id"], third["id"]]
    assert (oldest_first["total"], oldest_first["count"], oldest_first["desc"]) == (3, 3, False)
    assert [r["id"] for r in newest_two["items"]] == [third["id"], second["id"]]
    assert (newest_two["total"], newest_two["count"], newest_two["limit"]) == (3, 2, 2)
    item = newest_two["items"][0]
    assert {"id", "actId", "status", "startedAt", "defaultDatasetId", "defaultKeyValueStoreId"} <= set(item)
    assert "input" not in item  # Apify lists runs without their input
    assert client.get(f"/apify/v2/acts/{ACTOR}/runs").status_code == 401


def test_a_runs_input_is_its_default_stores_input_record(client: httpx.Client, start: Start) -> None:
    run = start("twin-rivers-auto", maxItems=40)

    by_run = client.get(f"/apify/v2/actor-runs/{run['id']}/key-value-store/records/INPUT", headers=AUTH)
    by_store = client.get(
        f"/apify/v2/key-value-stores/{run['defaultKeyValueStoreId']}/records/INPUT", headers=AUTH
    )
    other = client.get(f"/apify/v2/actor-runs/{run['id']}/key-value-store/records/OUTPUT", headers=AUTH)

    assert by_run.status_code == by_store.status_code == 200
    assert by_run.json() == by_store.json() == run_input("twin-rivers-auto", maxItems=40)
    assert other.status_code == 404
    assert (
        client.get("/apify/v2/actor-runs/NoSuchRun/key-value-store/records/INPUT", headers=AUTH).status_code
        == 404
    )


def test_a_lost_start_answer_still_starts_the_run(client: httpx.Client) -> None:
    client.put("/_sandbox/apify/outages/hilltop-used-cars", json={"lose_start_answers": 1, "status": 504})

    lost = client.post(f"/apify/v2/acts/{ACTOR}/runs", json=run_input("hilltop-used-cars"), headers=AUTH)
    answered = client.post(f"/apify/v2/acts/{ACTOR}/runs", json=run_input("hilltop-used-cars"), headers=AUTH)

    assert lost.status_code == 504
    assert "data" not in lost.text
    assert answered.status_code == 201
    runs = client.get("/_sandbox/apify/runs", params={"dealer": "hilltop-used-cars"}).json()["runs"]
    assert len(runs) == 2, "the start whose answer was lost did start a run"
    starts = [e for e in client.get("/_sandbox/requests", params={"service": "apify"}).json()["requests"]]
    assert [(e["status"], e["detail"].get("answer_lost", False)) for e in starts] == [
        (504, True),
        (201, False),
    ]


def test_a_dataset_outage_fails_reads_then_ends(client: httpx.Client, start: Start) -> None:
    run = start("hilltop-used-cars")
    statuses(client, run["id"], 3)
    client.put("/_sandbox/apify/outages/hilltop-used-cars", json={"fail_dataset_reads": 2})
    assert client.get("/_sandbox/apify/outages").json() == {
        "outages": {"hilltop-used-cars": {"lose_start_answers": 0, "fail_dataset_reads": 2, "status": 503}}
    }

    path = f"/apify/v2/datasets/{run['defaultDatasetId']}/items"
    codes = [client.get(path, params={"limit": 10}, headers=AUTH).status_code for _ in range(3)]

    assert codes == [503, 503, 200]
    assert client.delete("/_sandbox/apify/outages/hilltop-used-cars").status_code == 200
    assert client.get("/_sandbox/apify/outages").json() == {"outages": {}}
    assert client.put("/_sandbox/apify/outages/metro-nissan", json={}).status_code == 404
