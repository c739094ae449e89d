"""The installed package as Airflow's own CLI sees it: a provider with one connection type per upstream.

Runs ``airflow providers list`` and ``airflow providers hooks`` in fresh processes with a fresh AIRFLOW_HOME,
the way an operator checks an installation (no metadata database is involved).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from od_scheduler import __version__
from od_scheduler.provider_info import CONNECTION_TYPES

pytestmark = pytest.mark.dags


def airflow(home: Path, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", *args, "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "od_scheduler" not in proc.stderr, proc.stderr[-3000:]  # no warning about our provider or hooks
    return json.loads(proc.stdout)


def test_airflow_lists_the_provider_and_its_connection_types(tmp_path: Path) -> None:
    providers = {p["package_name"]: p for p in airflow(tmp_path, "providers", "list")}
    assert providers["od-scheduler"]["version"] == __version__

    hooks = {h["connection_type"]: h for h in airflow(tmp_path, "providers", "hooks")}
    for ct in CONNECTION_TYPES:
        hook = hooks[ct["connection-type"]]
        assert hook["class"] == ct["hook-class-name"]
        assert hook["package_name"] == "od-scheduler"
        assert hook["hook_name"] == ct["hook-name"]
    assert hooks["http"]["package_name"] == "apache-airflow-providers-http"  # http connections still resolve
