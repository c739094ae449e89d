"""A shard's dealers look each Connection up once: ``shared_connections`` around ``run_dealers``."""

from __future__ import annotations

import json
import threading

import pytest

from od_scheduler.hooks.cobalt import CobaltHook
from od_scheduler.hooks.dealer_com import DealerComHook
from od_scheduler.hooks.http_base import shared_connections
from od_scheduler.models.job import DealerRef
from od_scheduler.operators.shard import DealerState, run_dealers

pytestmark = pytest.mark.unit


class Log:
    def info(self, *args: object) -> None:
        pass


def define(monkeypatch: pytest.MonkeyPatch, login: str) -> None:
    conn = {"conn_type": "http", "host": "https://feeds.test/cobalt", "login": login, "password": "p4ss-w0rd"}
    monkeypatch.setenv("AIRFLOW_CONN_OD_COBALT", json.dumps(conn))


def test_the_dealers_of_a_shard_share_one_lookup_of_each_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    define(monkeypatch, "reader")
    seen: list[object] = []
    lock = threading.Lock()

    def work(ref: DealerRef) -> None:
        conn = CobaltHook().connection
        with lock:
            seen.append(conn)

    dealers = [DealerRef(dealer_id=f"d{i}", platform="cobalt") for i in range(12)]
    outcomes = run_dealers(dealers, work, in_flight=4, log=Log(), what="pull")
    assert [o.state for o in outcomes] == [DealerState.DONE] * 12
    assert len(seen) == 12
    assert len({id(c) for c in seen}) == 1, "one lookup shared by the shard's dealers"
    assert seen[0].login == "reader"  # type: ignore[attr-defined]


def test_outside_a_shard_every_hook_looks_its_connection_up(monkeypatch: pytest.MonkeyPatch) -> None:
    define(monkeypatch, "reader")
    first = CobaltHook().connection
    define(monkeypatch, "other-reader")
    assert first.login == "reader"
    assert CobaltHook().connection.login == "other-reader"


def test_the_next_shard_sees_a_connection_edited_since(monkeypatch: pytest.MonkeyPatch) -> None:
    define(monkeypatch, "reader")
    with shared_connections():
        assert CobaltHook().connection.login == "reader"
        define(monkeypatch, "other-reader")
        assert CobaltHook().connection.login == "reader"
    with shared_connections():
        assert CobaltHook().connection.login == "other-reader"


def test_a_shard_reads_a_connections_extras_once_and_hands_each_hook_its_own_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn = {"conn_type": "http", "host": "https://site.test", "extra": {"requests_per_second": 2}}
    monkeypatch.setenv("AIRFLOW_CONN_OD_DEALER_COM", json.dumps(conn))
    with shared_connections():
        first = DealerComHook().extras
        first["requests_per_second"] = 99
        conn["extra"] = {"requests_per_second": 5}
        monkeypatch.setenv("AIRFLOW_CONN_OD_DEALER_COM", json.dumps(conn))
        assert DealerComHook().extras["requests_per_second"] == 2, "read once per shard, each a copy"
    assert DealerComHook().extras["requests_per_second"] == 5, "the next shard reads them again"
