"""What ``make setup`` and the local environment derive from the platform registry: the pools and the
sandbox connections, each platform's from its entry (and its sandbox module), the shared ones as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.sandbox.platforms import PLATFORMS as SANDBOX_PLATFORMS
from include.tools import localenv, setup_project
from od_scheduler import conn_ids
from od_scheduler.platforms import COBALT, DATA_API_POOL, PAYLOAD_CMS_POOL, PLATFORMS

pytestmark = pytest.mark.unit


def test_the_pools_file_holds_only_the_shared_pools() -> None:
    assert set(json.loads(setup_project.POOLS_FILE.read_text())) == {PAYLOAD_CMS_POOL, DATA_API_POOL}


def test_setup_creates_the_shared_pools_and_every_platforms_pool() -> None:
    pools = setup_project.pools()
    assert set(pools) == {PAYLOAD_CMS_POOL, DATA_API_POOL, *(p.pool for p in PLATFORMS.values())}
    for platform in PLATFORMS.values():
        spec = pools[platform.pool]
        assert (spec["slots"], spec["description"]) == (platform.pool_slots, platform.pool_description)
        assert spec["include_deferred"] is False
    assert pools[DATA_API_POOL]["slots"] == 4


def test_a_platform_pool_in_the_pools_file_is_refused(tmp_path: Path) -> None:
    shared = json.loads(setup_project.POOLS_FILE.read_text())
    pools_file = tmp_path / "pools.json"
    pools_file.write_text(json.dumps({**shared, COBALT.pool: {"slots": 99, "description": "stale"}}))
    with pytest.raises(SystemExit, match="defines cobalt_api, which a platform's registry entry sizes"):
        setup_project.pools(pools_file)


def test_every_platform_has_its_sandbox_connection_under_its_conn_id() -> None:
    connections = localenv.sandbox_connections("http://127.0.0.1:9")
    assert set(connections) == {
        conn_ids.PAYLOAD_CMS,
        conn_ids.DATA_API,
        conn_ids.ALERTS,
        *(p.conn_id for p in PLATFORMS.values()),
    }
    for platform in PLATFORMS.values():
        expected = SANDBOX_PLATFORMS[platform.id].airflow_connection("http://127.0.0.1:9")
        assert connections[platform.conn_id] == expected, platform.id
    assert connections[COBALT.conn_id] == {
        "conn_type": "http",
        "host": "http://127.0.0.1:9/cobalt",
        "login": "sandbox-cobalt",
        "password": "sandbox-cobalt-pass",
    }


def test_a_platform_the_sandbox_does_not_serve_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(SANDBOX_PLATFORMS, COBALT.id)
    with pytest.raises(RuntimeError, match="the sandbox serves no cobalt"):
        localenv.sandbox_connections("http://127.0.0.1:9")
