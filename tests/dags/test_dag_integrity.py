"""DAG integrity: every DAG file imports, parsing does no I/O, every pool exists, wiring is as documented."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from include.tools import setup_project

pytestmark = pytest.mark.dags

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted(p.name for p in (ROOT / "dags").glob("*.py"))

#: Parses the dags folder in a fresh interpreter where any Python-level network connection raises and the
#: metadata database points at a closed port, then prints what it found as JSON.
PARSE_GUARDED = textwrap.dedent(
    """
    import json, sys, time

    def guard(event, args):
        if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname"):
            raise RuntimeError(f"network access at parse time: {event} {args!r}")
    sys.addaudithook(guard)

    from airflow.dag_processing.dagbag import DagBag
    start = time.monotonic()
    bag = DagBag(dag_folder=sys.argv[1])
    print(json.dumps({
        "dags": sorted(bag.dag_ids),
        "errors": {k: v for k, v in bag.import_errors.items()},
        "seconds": time.monotonic() - start,
    }))
    """
)


@pytest.fixture(scope="module")
def guarded_parse() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = "postgresql+psycopg2://nobody@127.0.0.1:1/closed"
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", PARSE_GUARDED, str(ROOT / "dags")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_every_dag_file_imports_without_network_or_database(guarded_parse: dict) -> None:
    assert guarded_parse["errors"] == {}
    expected = {Path(f).stem for f in DAG_FILES}
    assert expected <= set(guarded_parse["dags"]), "each DAG id must equal its file name"


def test_every_pool_named_by_a_task_is_one_setup_creates(dagbag) -> None:
    """The shared pools of include/pools.json and each platform's (its registry entry)."""
    pools = set(setup_project.pools())
    missing = {
        (dag_id, task.task_id, task.pool)
        for dag_id, dag in dagbag.dags.items()
        for task in dag.tasks
        if task.pool != "default_pool" and task.pool not in pools
    }
    assert not missing


def test_platform_dags_have_the_documented_shape(dagbag) -> None:
    from od_scheduler.platforms import PLATFORMS

    for platform in PLATFORMS.values():
        dag = dagbag.dags[platform.dag_id]
        assert dag is not None, platform.dag_id
        tasks = {t.task_id: t for t in dag.tasks}
        assert set(tasks) == {
            "list_dealers",
            "shard.pull_inventory",
            "shard.ingest_inventory",
            "summarize_run",
            "announce_changes",
        }
        assert tasks["shard.pull_inventory"].pool == platform.pool
        assert tasks["shard.ingest_inventory"].pool == "data_api"
        assert tasks["summarize_run"].trigger_rule == "all_done"
        assert tasks["shard.pull_inventory"].upstream_task_ids == {"list_dealers"}
        # The ingest runs beside its pull (it ingests each dealer as soon as it is staged): no edge.
        assert tasks["shard.ingest_inventory"].upstream_task_ids == {"list_dealers"}
        assert tasks["shard.ingest_inventory"].pull_task_id == "shard.pull_inventory"
        assert tasks["shard.pull_inventory"].ingest_task_id == "shard.ingest_inventory"
        both = {"shard.pull_inventory", "shard.ingest_inventory"}
        assert tasks["summarize_run"].upstream_task_ids == both, "after every shard's two tasks"
        assert tasks["summarize_run"].downstream_task_ids == set(), "a leaf: its verdict is the run's"
        announce = tasks["announce_changes"]
        assert announce.upstream_task_ids == both
        assert announce.trigger_rule == "all_done"
        assert [a.uri for a in announce.outlets] == [f"x-od://inventory/{platform.id}"]
        for task_id in ("shard.pull_inventory", "shard.ingest_inventory"):
            assert "task.shard" in (tasks[task_id].map_index_template or ""), task_id
        assert dag.max_active_runs == 1
        assert dag.catchup is False
        assert dag.doc_md, "the DAG file's docstring is its documentation"
        assert set(dag.params) == {"dealer_id", "force", "full_refresh", "force_delist", "max_failure_rate"}


def test_every_task_is_bounded_and_owned(dagbag) -> None:
    """No task runs forever (a hung upstream or a stuck worker ends in a timeout and a retry)."""
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            assert task.execution_timeout is not None, (dag.dag_id, task.task_id)
            assert task.owner == "open-dealer-data", (dag.dag_id, task.task_id)


def test_every_dag_has_an_owner_retries_tags_and_documented_params(dagbag) -> None:
    """What the UI's DAG list and trigger form show: who owns it, how it retries, what each field is."""
    for dag in dagbag.dags.values():
        assert dag.tags, dag.dag_id
        assert dag.doc_md, dag.dag_id
        assert dag.default_args.get("owner") == "open-dealer-data", dag.dag_id
        assert dag.default_args.get("retries") is not None, dag.dag_id
        for name in dag.params:
            declared = dag.params.get_param(name)
            assert declared.schema.get("title"), (dag.dag_id, name, "a title for the trigger form")
            assert len(declared.description or "") > 20, (dag.dag_id, name, "a description")
    for platform_dag in (
        d for d in dagbag.dags.values() if "inventory" in d.tags and "shard" in str(d.task_ids)
    ):
        sections = {
            name: platform_dag.params.get_param(name).schema.get("section") for name in platform_dag.params
        }
        assert sections == {
            "dealer_id": None,
            "force": None,
            "full_refresh": None,
            "force_delist": "Advanced",
            "max_failure_rate": "Advanced",
        }, platform_dag.dag_id


def test_every_task_fits_its_pool(dagbag) -> None:
    """A task whose ``pool_slots`` exceed its pool's size would wait forever: the shipped pools fit them."""
    pools = setup_project.pools()
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if task.pool in pools:
                assert task.pool_slots <= pools[task.pool]["slots"], (dag.dag_id, task.task_id, task.pool)


def test_dealer_com_runs_hourly(dagbag) -> None:
    dag = dagbag.dags["inventory_dealer_com"]
    assert dag.timetable.expression == "0 * * * *"
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable", "runs need real data intervals"


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"force": "yes"}, "'yes' is not of type 'boolean'"),
        ({"full_refresh": 1}, "is not of type 'boolean'"),
        ({"dealer_id": 42}, "is not of type 'null', 'string'"),
        ({"dealer_id": ""}, "should be non-empty"),
        ({"max_failure_rate": 2}, "is greater than the maximum"),
    ],
)
def test_invalid_conf_is_rejected_with_a_clear_message(dagbag, conf: dict, message: str) -> None:
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    dag = dagbag.dags["inventory_dealer_com"]
    params = ParamsDict(dag.params)

    def apply_and_validate() -> None:
        params.update(conf)
        params.validate()

    with pytest.raises(ParamValidationError) as excinfo:
        apply_and_validate()
    assert message in str(excinfo.value)


def test_valid_conf_passes(dagbag) -> None:
    from airflow.sdk.definitions.param import ParamsDict

    params = ParamsDict(dagbag.dags["inventory_dealer_com"].params)
    params.update({"dealer_id": "9b1f", "force": True, "full_refresh": False, "max_failure_rate": 0.25})
    assert params.validate()["force"] is True
