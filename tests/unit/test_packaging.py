"""The od-scheduler distribution: its metadata agrees with the pins, the repository layout, and what ships."""

from __future__ import annotations

import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from od_scheduler.hooks.job_history import SQL_DIR

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def pins() -> dict[str, str]:
    """``{name: version}`` of every ``name==version`` line in requirements.txt."""
    found = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        requirement = line.split("#")[0].split(";")[0].strip().rstrip("\\").strip()
        if "==" in requirement:
            name, _, version = requirement.partition("==")
            found[canonicalize_name(name.split("[")[0])] = version.strip()
    return found


def test_every_dependency_range_holds_the_pinned_version() -> None:
    pinned = pins()
    for spec in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not pinned in requirements.txt"
        assert requirement.specifier.contains(pinned[name]), f"{spec} excludes the pinned {pinned[name]}"


def test_airflow_finds_the_provider_entry_point() -> None:
    declared = PYPROJECT["project"]["entry-points"]["apache_airflow_provider"]
    ours = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.dist is not None and canonicalize_name(ep.dist.name) == "od-scheduler"
    ]
    assert [(ep.name, ep.value) for ep in ours] == list(declared.items())
    assert declared == {"provider_info": "od_scheduler.provider_info:get_provider_info"}


def test_the_migrations_ship_in_the_package() -> None:
    assert SQL_DIR.parent.name == "od_scheduler"
    names = sorted(p.name for p in SQL_DIR.glob("*.sql"))
    assert names[:1] == ["001_job_executions.sql"]
    # A migration added under the old folder (e.g. by a branch from before the move) would never be applied.
    assert not list((ROOT / "include" / "sql").glob("*.sql")), "migrations belong in src/od_scheduler/sql/"


def test_plugins_holds_only_the_airflow_plugin() -> None:
    tracked = sorted(p.name for p in (ROOT / "plugins").iterdir() if p.name != "__pycache__")
    assert tracked == ["od_scheduler_plugin.py"]
