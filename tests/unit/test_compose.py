"""The docker compose deployment, read as Compose would read it (Docker is not needed to check it):
docker-compose.yaml, .env.example, include/tools/compose_env.py, the Dockerfile and .dockerignore.

What a user of the deployment relies on: it builds the project's image for every Airflow service, every
connection and ``[od_scheduler]`` setting the project reads can be given in ``.env`` and reaches the
containers, every service reports its health, staging is S3 on the bundled MinIO, the login is what ``.env``
says, and no task can get at Airflow's metadata database (the job history and Celery's results have their
own roles and databases; the workers get no metadata URL or secret). Where a ``docker compose`` plugin
exists, ``docker compose config`` checks the file as well.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from include.tools import compose_env
from od_scheduler import conn_ids
from od_scheduler.platforms import DEALER_COM, HOMENET, PLATFORMS, VINSOLUTIONS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
INIT_DIR = ROOT / "include" / "sql" / "docker-init"
JOB_HISTORY_SCRIPT = INIT_DIR / "01-job-history.sh"
CELERY_RESULTS_SCRIPT = INIT_DIR / "02-celery-results.sh"

AIRFLOW_IMAGE = "apache/airflow:3.3.2-python3.11"
CONSTRAINTS_URL = "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.2/constraints-3.11.txt"
#: The shared connection ids (each a constant of ``od_scheduler.conn_ids``).
SHARED_CONN_IDS = tuple(
    value for name, value in vars(conn_ids).items() if name.isupper() and isinstance(value, str)
)
#: Every connection id the project reads: the shared ones and each registered platform's.
CONN_IDS = (*SHARED_CONN_IDS, *(p.conn_id for p in PLATFORMS.values()))
#: The optional file of connections every service running the project's code reads (``env_file``).
CONNECTIONS_FILE = ".env.connections"

#: Every service running Airflow (the project's image).
AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-db-clean",
    "flower",
)
#: The ones that run the project's code with its connections: setup, the status plugin (api-server), DAG
#: parsing and DAG callbacks (dag-processor), triggers (triggerer), tasks (workers), the scheduler.
PROJECT_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
#: Airflow's own components, which hold the metadata database's URL and the secrets that guard it.
METADATA_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-db-clean",
)
#: What only Airflow's own components may hold (a task that had one could rewrite Airflow's state or mint
#: an API token for any user).
METADATA_ONLY_KEYS = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CORE__SQL_ALCHEMY_CONN",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_SECRET",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW_CONN_OD_AIRFLOW_DB",
)

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, bare $NAME, and $$ (a "$").
_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?)([-?])([^}]*))?\}|\$(\w+)")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation of one string (without nesting, which the compose file does not use)."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, colon, kind, arg, bare = match.groups()
        name = name or bare
        value = env.get(name)
        missing = value is None or (colon == ":" and value == "")
        if kind == "-" and missing:
            return arg
        if kind == "?" and missing:
            raise ValueError(f"{name}: {arg}")
        return value or ""

    return _VARIABLE.sub(replace, value)


def variables(value: str) -> Iterator[tuple[str, str | None]]:
    """(name, default or None) of every variable ``value`` reads."""
    for match in _VARIABLE.finditer(value):
        if match.group(0) != "$$":
            name, _colon, kind, arg, bare = match.groups()
            yield name or bare, arg if kind == "-" else None


def strings(node: Any) -> Iterator[str]:
    """Every string in a loaded YAML document, keys included."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def resolve(node: Any, env: Mapping[str, str]) -> Any:
    """The document with every string interpolated, as ``docker compose config`` would print it."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {resolve(k, env): resolve(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(item, env) for item in node]
    return node


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader (it resolves the ``<<`` merge keys), refusing what Compose refuses: a key given
    twice in one mapping (PyYAML would silently keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_compose() -> dict[str, Any]:
    return yaml.load(COMPOSE_FILE.read_text(), Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass


# -- .env files --------------------------------------------------------------------------------------------
_ENV_LINE = re.compile(r"^(?P<comment>#\s*)?(?P<key>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def env_value(raw: str) -> str:
    """A .env value in the subset .env.example uses, which compose and python-dotenv read alike: unquoted
    (no "$", no " #", no quotes around it) or single-quoted (literal)."""
    if raw.startswith("'"):
        assert len(raw) >= 2, raw
        assert raw.endswith("'"), raw
        assert "'" not in raw[1:-1], raw
        return raw[1:-1]
    assert not raw.startswith('"'), f"double quotes: compose would unescape and interpolate {raw!r}"
    assert "$" not in raw, f"{raw!r}: compose interpolates $"
    assert " #" not in raw, f"{raw!r}: compose cuts a value at ' #'"
    assert raw == raw.strip(), f"{raw!r}: surrounding spaces"
    return raw


def parse_env_file(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(variables set, variables shown commented out as ``# KEY=default``); fails on any other line."""
    active: dict[str, str] = {}
    documented: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _ENV_LINE.match(line)
        if match is None:
            assert line.startswith("#"), f"line {number} is neither a comment nor KEY=value: {line!r}"
            continue
        target = documented if match["comment"] else active
        assert match["key"] not in {**active, **documented}, f"{match['key']} twice"
        target[match["key"]] = env_value(match["value"])
    return active, documented


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def example() -> tuple[dict[str, str], dict[str, str]]:
    return parse_env_file(ENV_EXAMPLE.read_text())


@pytest.fixture(scope="module")
def deployment_env() -> dict[str, str]:
    """The variables of a .env that include/tools/compose_env.py wrote from .env.example."""
    active, _ = parse_env_file(compose_env.render(ENV_EXAMPLE.read_text()))
    return active


def environment(compose: dict[str, Any], service: str, env: Mapping[str, str]) -> dict[str, str]:
    raw = compose["services"][service].get("environment") or {}
    assert isinstance(raw, dict), f"{service}: environment as a mapping"
    return {str(k): interpolate(str(v), env) for k, v in raw.items()}


def metadata_url(compose: dict[str, Any], env: Mapping[str, str]) -> Any:
    return make_url(environment(compose, "airflow-scheduler", env)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])


def _secrets() -> dict[str, str]:
    """Just the variables compose requires (the secrets compose_env.py generates), with placeholders."""
    return dict.fromkeys(compose_env.REQUIRED, "x")


# -- the services ------------------------------------------------------------------------------------------
def test_compose_file_has_the_project_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "postgres",
        "redis",
        "minio",
        "staging-bucket",
        *AIRFLOW_SERVICES,
    }


def test_the_loader_refuses_a_key_given_twice() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key 'command'"):
        yaml.load("a:\n  command: x\n  command: y\n", Loader=StrictLoader)  # noqa: S506
    merged = yaml.load("b: &b {k: 1}\nc:\n  <<: *b\n  k: 2\n", Loader=StrictLoader)  # noqa: S506
    assert merged["c"] == {"k": 2}, "overriding a merged key is not a duplicate"


def test_every_service_reports_its_health(compose: dict[str, Any]) -> None:
    """Long-running services have a health check; the one-shot jobs (which exit) have none, and everything
    that needs them waits for their successful completion instead."""
    services = compose["services"]
    one_shots = {name for name, service in services.items() if service.get("restart") == "no"}
    assert one_shots == {"airflow-init", "staging-bucket"}
    for name, service in services.items():
        if name in one_shots:
            assert "healthcheck" not in service, name
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test"), f"{name} has no health check"
        assert not check.get("disable"), name
        assert service.get("restart") == "always", name
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            expected = "service_completed_successfully" if dependency in one_shots else "service_healthy"
            assert condition["condition"] == expected, f"{name} -> {dependency}"


def test_the_airflow_services_build_the_project_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    images = {services[name]["image"] for name in AIRFLOW_SERVICES}
    assert len(images) == 1, "one image for every Airflow service"
    for name in AIRFLOW_SERVICES:
        assert services[name]["build"] == ".", name
        assert services[name]["user"] == "50000:0", name
        env = services[name].get("environment") or {}
        assert not env.get("_PIP_ADDITIONAL_REQUIREMENTS"), f"{name}: nothing is installed at start"
        assert not any(str(v).startswith("./") for v in services[name].get("volumes", [])), (
            f"{name}: the code comes from the image, not from a folder on one host"
        )
    for name, service in services.items():
        if name not in AIRFLOW_SERVICES:
            assert "build" not in service, name
            assert not str(service["image"]).startswith("apache/airflow"), name


def test_flower_is_an_opt_in_profile_on_loopback(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["flower"]["profiles"] == ["flower"]
    assert [name for name, service in services.items() if "profiles" in service] == ["flower"]
    assert services["flower"]["command"] == "celery flower"
    assert all(str(port).startswith("127.0.0.1:") for port in services["flower"]["ports"])
    # Its health check is Flower's unauthenticated /healthcheck, which answers with basic auth on too.
    assert "/healthcheck" in " ".join(services["flower"]["healthcheck"]["test"])
    assert "AIRFLOW__CELERY__FLOWER_BASIC_AUTH" in services["flower"]["environment"]


def test_the_worker_waits_for_what_its_tasks_use(compose: dict[str, Any]) -> None:
    depends = compose["services"]["airflow-worker"]["depends_on"]
    assert set(depends) == {"postgres", "redis", "airflow-init", "airflow-apiserver", "staging-bucket"}


# -- the login ---------------------------------------------------------------------------------------------
def test_the_login_is_what_env_says(
    compose: dict[str, Any], deployment_env: dict[str, str], tmp_path: Path
) -> None:
    """The api-server's start writes AIRFLOW_PASSWORDS to SimpleAuthManager's passwords file (which Airflow
    keeps as it is for the users it lists) and starts the api-server without the variable."""
    service = compose["services"]["airflow-apiserver"]
    env = environment(compose, "airflow-apiserver", deployment_env)
    users = [pair.split(":")[0] for pair in env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",")]
    assert users == ["admin"]
    passwords = dict(pair.split(":", 1) for pair in deployment_env["AIRFLOW_PASSWORDS"].split(","))
    assert set(passwords) == set(users)
    for name in compose["services"]:
        if name != "airflow-apiserver":
            assert "AIRFLOW_PASSWORDS" not in (compose["services"][name].get("environment") or {}), name

    command = service["command"]
    assert command[:2] == ["bash", "-c"], "through the image's entrypoint, which waits for the database"
    script = interpolate(command[2], {}).replace(
        "exec airflow api-server", 'echo "left: ${AIRFLOW_PASSWORDS-}"'
    )
    passwords_file = tmp_path / "passwords.json"
    run_env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # `python` is the venv's
        "AIRFLOW_PASSWORDS": "admin:s3cret:with-colon, viewer:v1",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
    }
    proc = subprocess.run(["bash", "-c", script], env=run_env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "left:", "the api-server starts without AIRFLOW_PASSWORDS"
    assert json.loads(passwords_file.read_text()) == {"admin": "s3cret:with-colon", "viewer": "v1"}
    assert stat.S_IMODE(passwords_file.stat().st_mode) == 0o600
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith("/opt/airflow/")


# -- connections and settings reach the containers ---------------------------------------------------------
def test_every_connection_the_project_reads_reaches_the_containers(
    compose: dict[str, Any], deployment_env: dict[str, str]
) -> None:
    """The shared connections from .env; any connection (a platform's added later) from .env.connections."""
    for service in PROJECT_SERVICES:
        assert compose["services"][service].get("env_file") == [
            {"path": CONNECTIONS_FILE, "required": False}
        ], f"{service} does not read {CONNECTIONS_FILE}"
    for service in set(compose["services"]) - set(PROJECT_SERVICES):
        assert "env_file" not in compose["services"][service], f"{service} needs no connection"
    wanted = {
        f"AIRFLOW_CONN_{conn_id.upper()}" for conn_id in SHARED_CONN_IDS if conn_id != conn_ids.AIRFLOW_DB
    }
    # A value in .env (JSON included: compose takes .env values literally) arrives untouched.
    given = {
        name: '{"conn_type": "http", "host": "https://x.example.com/a}b", "extra": {"k": 1}}'
        for name in wanted
    }
    for service in PROJECT_SERVICES:
        env = environment(compose, service, deployment_env)
        assert wanted <= set(env), f"{service} misses {sorted(wanted - set(env))}"
        with_values = environment(compose, service, {**deployment_env, **given})
        for name in wanted - {"AIRFLOW_CONN_OD_JOB_HISTORY"}:  # built from its password, like od_staging
            assert with_values[name] == given[name], f"{service}: {name}"


def test_the_connection_defaults_parse(compose: dict[str, Any], deployment_env: dict[str, str]) -> None:
    """Every connection the compose file defines by default parses as Airflow parses it in a task."""
    from airflow.sdk import Connection

    env = environment(compose, "airflow-worker", deployment_env)
    defined = {k: v for k, v in env.items() if k.startswith("AIRFLOW_CONN_") and v}
    assert set(defined) == {
        "AIRFLOW_CONN_OD_DEALER_COM",
        "AIRFLOW_CONN_OD_JOB_HISTORY",
        "AIRFLOW_CONN_OD_STAGING",
    }
    dealer_com = Connection.from_uri(defined["AIRFLOW_CONN_OD_DEALER_COM"], conn_id="od_dealer_com")
    assert (dealer_com.conn_type, float(dealer_com.extra_dejson["requests_per_second"])) == ("http", 2.0)
    jobs = Connection.from_uri(defined["AIRFLOW_CONN_OD_JOB_HISTORY"], conn_id="od_job_history")
    assert (jobs.conn_type, jobs.host, jobs.schema) == ("postgres", "postgres", "od_job_history")
    assert jobs.password == deployment_env["OD_JOB_HISTORY_DB_PASSWORD"]


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No [od_scheduler] value from the test session's environment; settings re-read after the test."""
    from od_scheduler.settings import get_settings

    for name in list(os.environ):
        if name.startswith("AIRFLOW__OD_SCHEDULER__") or name == "OD_STAGING_URL":
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_every_setting_reaches_the_containers_with_the_codes_defaults(
    compose: dict[str, Any], clean_settings: pytest.MonkeyPatch
) -> None:
    """Each [od_scheduler] setting can be set from .env and reaches every container that runs the project's
    code; unset, the compose file's default is the code's own, except for staging (S3 on minio)."""
    from od_scheduler.settings import Settings, get_settings

    keys = {f"AIRFLOW__OD_SCHEDULER__{field.name.upper()}" for field in dataclasses.fields(Settings)}
    code_defaults = get_settings()
    for service in PROJECT_SERVICES:
        env = environment(compose, service, _secrets())
        assert keys <= set(env), f"{service} misses {sorted(keys - set(env))}"
        assert "OD_STAGING_URL" not in env, f"{service}: OD_STAGING_URL would override staging_url"
    env = environment(compose, "airflow-worker", _secrets())
    for key in keys:
        clean_settings.setenv(key, env[key])
    get_settings.cache_clear()
    composed = get_settings()  # parses: no ConfigError
    differ = {
        field.name
        for field in dataclasses.fields(Settings)
        if getattr(composed, field.name) != getattr(code_defaults, field.name)
    }
    assert differ == {"staging_url", "staging_conn_id"}
    assert composed.staging_url == "s3://od-staging/inventory"
    # The settings airflow-db-clean uses (retention, batch size) are the same as everywhere else.
    cleaner = environment(compose, "airflow-db-clean", _secrets())
    assert {k: cleaner[k] for k in keys} == {k: env[k] for k in keys}


def test_the_metadata_cleanup_stays_outside_tasks(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        value = (service.get("environment") or {}).get("AIRFLOW__OD_SCHEDULER__METADATA_CLEANUP_IN_TASK")
        if value is not None:
            assert value == "False", f"{name}: a literal False, not a variable .env could switch on"


def test_example_connections_resolve_through_the_projects_hooks(
    example: tuple[dict[str, str], dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each connection .env.example shows, given as it shows it, gives the hook an https base URL and the
    secret where the README says it goes."""
    from od_scheduler.hooks.http_base import OdHttpHook

    _, documented = example
    shown = {k: v for k, v in documented.items() if k.startswith("AIRFLOW_CONN_")}
    wanted = {
        f"AIRFLOW_CONN_{c.upper()}" for c in CONN_IDS if c not in (conn_ids.AIRFLOW_DB, conn_ids.JOB_HISTORY)
    }
    # Every shared connection is shown; a platform's may be (README "Connections" has every one).
    assert (
        {f"AIRFLOW_CONN_{c.upper()}" for c in SHARED_CONN_IDS}
        - {
            "AIRFLOW_CONN_OD_AIRFLOW_DB",
            "AIRFLOW_CONN_OD_JOB_HISTORY",
        }
        <= set(shown)
        <= wanted
    )
    for name, value in shown.items():
        monkeypatch.setenv(name, value)
    for name in shown:
        conn_id = name.removeprefix("AIRFLOW_CONN_").lower()
        hook = OdHttpHook(conn_id)
        assert hook.connection.conn_type == "http", name
        if conn_id == DEALER_COM.conn_id:
            assert hook.base_url(required=False) is None
            assert float(hook.extras["requests_per_second"]) == 2
            continue
        assert str(hook.base_url()).startswith("https://"), (name, hook.base_url())
        if conn_id != conn_ids.ALERTS:
            assert hook.connection.password, name
    assert OdHttpHook(conn_ids.ALERTS).base_url() == "https://hooks.slack.com/services/T000/B000/XXXX"
    vinsolutions = OdHttpHook(VINSOLUTIONS.conn_id)
    assert vinsolutions.extras["token_url"].startswith("https://")
    assert vinsolutions.connection.login
    assert OdHttpHook(conn_ids.PAYLOAD_CMS).extras == {"auth_collection": "users"}
    assert "integration_token" in OdHttpHook(HOMENET.conn_id).extras


# -- staging on S3 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override",
    [
        {},
        {
            "AIRFLOW__OD_SCHEDULER__STAGING_URL": "s3://other-bucket/deep/prefix",
            "OD_STAGING_ACCESS_KEY": "abc",
        },
    ],
    ids=["default", "from-env"],
)
def test_staging_is_s3_on_minio_with_its_own_user(
    compose: dict[str, Any], deployment_env: dict[str, str], override: dict[str, str]
) -> None:
    from airflow.sdk import Connection

    env = {**deployment_env, **override}
    worker = environment(compose, "airflow-worker", env)
    staging_url = worker["AIRFLOW__OD_SCHEDULER__STAGING_URL"]
    assert staging_url.startswith("s3://")
    conn_id = worker["AIRFLOW__OD_SCHEDULER__STAGING_CONN_ID"]
    conn = Connection.from_uri(worker[f"AIRFLOW_CONN_{conn_id.upper()}"], conn_id=conn_id)
    assert conn.conn_type == "aws"
    assert conn.extra_dejson["endpoint_url"] == "http://minio:9000"
    assert conn.extra_dejson["region_name"]
    # The bucket-creation job creates the bucket of that URL and the user the connection logs in as.
    init = environment(compose, "staging-bucket", env)
    assert init["OD_STAGING_URL"] == staging_url
    assert (init["OD_STAGING_ACCESS_KEY"], init["OD_STAGING_SECRET_KEY"]) == (conn.login, conn.password)
    assert conn.login != environment(compose, "minio", env)["MINIO_ROOT_USER"], "not MinIO's administrator"
    for service in PROJECT_SERVICES:
        assert (
            environment(compose, service, env)[f"AIRFLOW_CONN_{conn_id.upper()}"]
            == worker[f"AIRFLOW_CONN_{conn_id.upper()}"]
        ), service
    for name in compose["services"]:
        assert "MINIO_ROOT_PASSWORD" not in environment(compose, name, env) or name in (
            "minio",
            "staging-bucket",
        )


def test_minio_is_pinned_and_healthy(compose: dict[str, Any]) -> None:
    minio = compose["services"]["minio"]
    assert re.fullmatch(r"quay\.io/minio/minio:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", minio["image"])
    assert re.fullmatch(
        r"quay\.io/minio/mc:RELEASE\.[0-9TZ-]+", compose["services"]["staging-bucket"]["image"]
    )
    assert minio["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]
    assert "minio-data:/data" in minio["volumes"]
    assert compose["services"]["staging-bucket"]["depends_on"] == {"minio": {"condition": "service_healthy"}}


def _fake_mc(tmp_path: Path, *, attached: bool) -> Path:
    """An ``mc`` that records its arguments (and the policy file it is given) and answers like MinIO's: a
    policy that is already attached makes ``admin policy attach`` fail."""
    log = tmp_path / "mc.log"
    mc = tmp_path / "bin" / "mc"
    mc.parent.mkdir()
    mc.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'case "$1 $2 $3" in\n'
        f'  "admin policy create") cp "$6" {tmp_path}/policy.json ;;\n'
        f'  "admin policy attach") {"exit 1" if attached else "true"} ;;\n'
        '  "admin user info") echo "AccessKey: $5"; echo "PolicyName: od-staging-rw" ;;\n'
        "esac\n"
    )
    mc.chmod(0o755)
    return log


@pytest.mark.parametrize("attached", [False, True], ids=["first-run", "re-run"])
def test_the_bucket_job_makes_the_staging_bucket_and_a_user_for_it_only(
    compose: dict[str, Any], deployment_env: dict[str, str], tmp_path: Path, attached: bool
) -> None:
    service = compose["services"]["staging-bucket"]
    env = {**deployment_env, "AIRFLOW__OD_SCHEDULER__STAGING_URL": "s3://od-staging/inventory/x"}
    log = _fake_mc(tmp_path, attached=attached)
    script = interpolate(service["command"][0], env)
    assert service["entrypoint"] == ["/bin/sh", "-ec"]
    run_env = {
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}/usr/bin:/bin",
        **environment(compose, "staging-bucket", env),
    }
    proc = subprocess.run(
        ["/bin/sh", "-ec", script], env=run_env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = log.read_text().splitlines()
    secret = deployment_env["OD_STAGING_SECRET_KEY"]
    assert calls[:2] == [
        f"alias set od http://minio:9000 od-minio-admin {deployment_env['MINIO_ROOT_PASSWORD']}",
        "mb --ignore-existing od/od-staging",
    ]
    assert f"admin user add od od-staging {secret}" in calls
    assert "admin policy attach od od-staging-rw --user od-staging" in calls
    policy = json.loads((tmp_path / "policy.json").read_text())
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert resources == {"arn:aws:s3:::od-staging", "arn:aws:s3:::od-staging/*"}
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    assert {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"} <= actions
    assert not any(a.endswith("*") or a.startswith("admin:") for a in actions)


# -- least privilege ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("given", [False, True], ids=["default", "from-env"])
def test_the_job_history_has_its_own_role_and_database(
    compose: dict[str, Any], deployment_env: dict[str, str], given: bool
) -> None:
    env = dict(deployment_env)
    if not given:
        env.pop("OD_JOB_HISTORY_DB_PASSWORD")
    jobs = make_url(environment(compose, "airflow-worker", env)["AIRFLOW_CONN_OD_JOB_HISTORY"])
    metadata = metadata_url(compose, env)
    assert jobs.username != metadata.username, "the job history must not use the metadata DB's role"
    assert jobs.database != metadata.database
    assert jobs.host == "postgres"
    # The password the init script gives the role is the one the connection sends.
    assert jobs.password == environment(compose, "postgres", env)["OD_JOB_HISTORY_DB_PASSWORD"]
    assert jobs.password == env.get("OD_JOB_HISTORY_DB_PASSWORD", "od_job_history")
    # ... and the role and database it creates are the ones the connection names.
    script = JOB_HISTORY_SCRIPT.read_text()
    assert f"OD_JOB_HISTORY_DB_USER:-{jobs.username}}}" in script
    assert f"OD_JOB_HISTORY_DB_NAME:-{jobs.database}}}" in script
    for name in PROJECT_SERVICES:
        assert make_url(environment(compose, name, env)["AIRFLOW_CONN_OD_JOB_HISTORY"]) == jobs, name


@pytest.mark.parametrize("given", [False, True], ids=["default", "from-env"])
def test_celery_results_have_their_own_role_and_database(
    compose: dict[str, Any], deployment_env: dict[str, str], given: bool
) -> None:
    env = dict(deployment_env)
    if not given:
        env.pop("CELERY_RESULTS_DB_PASSWORD")
    backend = environment(compose, "airflow-worker", env)["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert backend.startswith("db+postgresql://")
    results = make_url(backend.removeprefix("db+"))
    metadata = metadata_url(compose, env)
    assert (results.username, results.database) != (metadata.username, metadata.database)
    assert results.username != metadata.username
    assert results.database != metadata.database
    assert results.password == environment(compose, "postgres", env)["CELERY_RESULTS_DB_PASSWORD"]
    assert results.password == env.get("CELERY_RESULTS_DB_PASSWORD", "od_celery_results")
    script = CELERY_RESULTS_SCRIPT.read_text()
    assert f"CELERY_RESULTS_DB_USER:-{results.username}}}" in script
    assert f"CELERY_RESULTS_DB_NAME:-{results.database}}}" in script
    # Everything that reads or writes Celery's results uses that one backend; nothing else gets it.
    users = {
        name
        for name in compose["services"]
        if "AIRFLOW__CELERY__RESULT_BACKEND" in (compose["services"][name].get("environment") or {})
    }
    assert users == {"airflow-scheduler", "airflow-worker", "airflow-db-clean"}
    for name in users:
        assert environment(compose, name, env)["AIRFLOW__CELERY__RESULT_BACKEND"] == backend, name


def test_the_init_scripts_are_mounted_into_the_postgres_entrypoint(compose: dict[str, Any]) -> None:
    mounts = [str(v) for v in compose["services"]["postgres"]["volumes"]]
    source = next(m.split(":")[0] for m in mounts if ":/docker-entrypoint-initdb.d" in m)
    assert (ROOT / source).resolve() == INIT_DIR
    assert sorted(p.name for p in INIT_DIR.iterdir()) == [JOB_HISTORY_SCRIPT.name, CELERY_RESULTS_SCRIPT.name]
    for script in (JOB_HISTORY_SCRIPT, CELERY_RESULTS_SCRIPT):
        assert script.stat().st_mode & stat.S_IXUSR, f"{script.name}: executable, so postgres runs it"
    # The results script is safe to run again (a volume created before it existed gets it by hand).
    text = CELERY_RESULTS_SCRIPT.read_text()
    assert "WHERE NOT EXISTS (SELECT FROM pg_roles" in text
    assert "WHERE NOT EXISTS (SELECT FROM pg_database" in text


def test_no_worker_gets_the_metadata_database_or_its_secrets(
    compose: dict[str, Any], deployment_env: dict[str, str]
) -> None:
    """The workers' environment is every task's environment: no metadata URL, no fernet key, no JWT secret,
    and no value carrying the metadata role's password. `airflow celery worker` needs none of them in
    Airflow 3 (README "Least privilege"); the image's entrypoint must then not wait for a database."""
    password = deployment_env["AIRFLOW_DB_PASSWORD"]
    metadata = metadata_url(compose, deployment_env)
    for name in ("airflow-worker", "flower"):
        env = environment(compose, name, deployment_env)
        assert not set(METADATA_ONLY_KEYS) & set(env), name
        assert not any(password in value for value in env.values()), name
        for value in env.values():
            if "postgres" in value and "://" in value:
                url = make_url(value.removeprefix("db+"))
                assert (url.username, url.database) != (metadata.username, metadata.database), name
        assert env["CONNECTION_CHECK_MAX_COUNT"] == "0", name
    worker = environment(compose, "airflow-worker", deployment_env)
    assert worker["AIRFLOW__API__SECRET_KEY"], "the workers' log servers check the api-server's requests"
    assert worker["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"


def test_only_airflows_own_components_hold_the_metadata_database(
    compose: dict[str, Any], deployment_env: dict[str, str]
) -> None:
    metadata = metadata_url(compose, deployment_env)
    assert (metadata.username, metadata.host, metadata.database) == ("airflow", "postgres", "airflow")
    assert metadata.password == deployment_env["AIRFLOW_DB_PASSWORD"]
    assert environment(compose, "postgres", deployment_env)["POSTGRES_PASSWORD"] == metadata.password
    for name in compose["services"]:
        env = environment(compose, name, deployment_env)
        held = set(METADATA_ONLY_KEYS) & set(env)
        if name in METADATA_SERVICES:
            assert held == {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                "AIRFLOW__CORE__FERNET_KEY",
                "AIRFLOW__API_AUTH__JWT_SECRET",
            }, name
            assert make_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]) == metadata, name
        else:
            assert not held, name
        assert not any("od_airflow_db" in value for value in env.values()), name
    with pytest.raises(ValueError, match="AIRFLOW_DB_PASSWORD"):
        metadata_url(compose, {k: v for k, v in deployment_env.items() if k != "AIRFLOW_DB_PASSWORD"})


def test_the_db_clean_service_prunes_metadata_and_celery_results_outside_tasks(
    compose: dict[str, Any],
) -> None:
    service = compose["services"]["airflow-db-clean"]
    assert service["image"] == compose["services"]["airflow-scheduler"]["image"]
    script = "\n".join(str(part) for part in service["command"])
    assert "python -m od_scheduler.metadata_cleanup" in script
    assert "app.backend.cleanup()" in script
    assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert service["healthcheck"]["test"]


# -- .env.example ------------------------------------------------------------------------------------------
def test_env_example_documents_every_variable_compose_reads(
    compose: dict[str, Any], example: tuple[dict[str, str], dict[str, str]]
) -> None:
    active, documented = example
    read: dict[str, set[str | None]] = {}
    for value in strings(compose):
        for name, default in variables(value):
            read.setdefault(name, set()).add(default)
    assert set(read) == set(active) | set(documented), (
        f"undocumented: {sorted(set(read) - set(active) - set(documented))}; "
        f"documented but unused: {sorted(set(active) | set(documented) - set(read))}"
    )
    for name, defaults in read.items():
        assert len(defaults - {None}) <= 1, f"{name} has different defaults: {defaults}"
        default = next(iter(defaults - {None}), None)
        if name in documented and not name.startswith("AIRFLOW_CONN_") and default is not None:
            assert documented[name] == default, f"{name}: .env.example shows {documented[name]!r}"


def test_the_env_file_writer_fills_every_secret(tmp_path: Path, compose: dict[str, Any]) -> None:
    from cryptography.fernet import Fernet

    target = tmp_path / ".env"
    assert compose_env.main([str(target)]) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    env, _ = parse_env_file(target.read_text())
    for name in compose_env.REQUIRED:
        assert env[name], name
    Fernet(env["AIRFLOW_FERNET_KEY"])  # a valid key
    for name in ("AIRFLOW_DB_PASSWORD", "OD_STAGING_SECRET_KEY", "OD_JOB_HISTORY_DB_PASSWORD"):
        assert re.fullmatch(r"[0-9a-f]{40}", env[name]), f"{name}: URL-safe"
    assert env["FLOWER_BASIC_AUTH"].startswith("admin:")
    # Everything compose requires is there: every service's environment interpolates.
    for name in compose["services"]:
        environment(compose, name, env)
    # A second run never overwrites the passwords the volumes were created with.
    before = target.read_text()
    assert compose_env.main([str(target)]) == 1
    assert target.read_text() == before
    assert compose_env.render(ENV_EXAMPLE.read_text()) != compose_env.render(ENV_EXAMPLE.read_text())


# -- the image ---------------------------------------------------------------------------------------------
def _dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker's .dockerignore (last matching pattern wins; a pattern covers what is under it)
    leaves ``path`` out of the build context."""
    result = False
    parts = path.strip("/").split("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if fnmatch.fnmatchcase(prefix, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatchcase(parts[depth - 1], pattern[3:])
            ):
                result = not negate
                break
    return result


def test_the_image_is_airflow_332_with_its_published_constraints() -> None:
    lines = _dockerfile()
    froms = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert froms, "no FROM"
    assert all(image == AIRFLOW_IMAGE for image in froms), froms
    assert lines[-1] == "USER airflow", "the image runs as the airflow user"
    text = "\n".join(lines)
    assert f"ARG AIRFLOW_CONSTRAINTS_URL={CONSTRAINTS_URL}" in lines
    # The versions agree: the image's Airflow, the constraints' Airflow and Python, requirements.txt's pin.
    tag = re.fullmatch(r"apache/airflow:([\d.]+)-python([\d.]+)", AIRFLOW_IMAGE)
    assert tag
    version, python = tag.groups()
    assert f"constraints-{version}/constraints-{python}.txt" in CONSTRAINTS_URL
    pins = re.findall(r"^apache-airflow==([\d.]+)(?: \\)?$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pins == [version], "requirements.txt pins the image's Airflow (it keeps pip from moving it)"
    # The wheel is built from the repository without its dependencies ...
    assert re.search(r"^RUN pip wheel [^\n]*--no-deps[^\n]*/opt/airflow/od-scheduler-src$", text, re.M)
    # ... installed with apache-airflow pinned, against the constraints ...
    install = next(line for line in lines if ".whl" in line and "pip install" in line)
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in install
    assert '--constraint "${AIRFLOW_CONSTRAINTS_URL}"' in install
    # ... then requirements.txt's pins, and pip checks the result.
    pinned = next(line for line in lines if "-r /tmp/od-scheduler-requirements.txt" in line)
    assert "source=requirements.txt" in pinned
    assert pinned.endswith("&& pip check")
    assert lines.index(install) < lines.index(pinned)
    for folder in ("dags", "plugins", "include"):
        assert f"COPY --chown=airflow:0 {folder}/ /opt/airflow/{folder}/" in lines


def test_the_build_context_has_what_the_dockerfile_copies_and_no_secrets() -> None:
    patterns = [
        p.strip() for p in DOCKERIGNORE.read_text().splitlines() if p.strip() and not p.startswith("#")
    ]
    sources = []
    for line in _dockerfile():
        words = line.split()
        if words[0] == "COPY" and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
        sources += re.findall(r"--mount=type=bind,source=([^,\s]+)", line)
    assert {
        "pyproject.toml",
        "README.md",
        "src/",
        "requirements.txt",
        "dags/",
        "plugins/",
        "include/",
    } <= set(sources)
    for source in sources:
        assert not _ignored(source, patterns), f"{source} is excluded by .dockerignore"
    missing = {source for source in sources if not (ROOT / source).exists()}
    assert not missing, f"the Dockerfile copies what the repository does not have: {missing}"
    for secret_or_local in (
        ".env",
        CONNECTIONS_FILE,
        ".venv/bin/python",
        ".local/pg",
        ".git/config",
        "tests/unit",
    ):
        assert _ignored(secret_or_local, patterns), secret_or_local
    # The package comes from the wheel only: a plugins/od_scheduler copy would shadow it (plugins_folder is
    # on sys.path); the sandbox is for local runs only.
    assert _ignored("plugins/od_scheduler/settings.py", patterns)
    assert not _ignored("plugins/od_scheduler_plugin.py", patterns)
    assert _ignored("include/sandbox/app.py", patterns)
    assert not _ignored("include/tools/setup_project.py", patterns)
    assert not _ignored("include/pools.json", patterns)


def test_named_volumes_are_writable_by_the_airflow_user(compose: dict[str, Any]) -> None:
    """A new named volume takes its owner from the image's directory: every one an Airflow service mounts
    is created in the Dockerfile for uid 50000 (no root-owned volume, as staging's was)."""
    created = {
        match.group(1)
        for line in _dockerfile()
        for match in [re.search(r"install -d -o airflow -g 0 -m 2775 (\S+)", line)]
        if match
    }
    for name in AIRFLOW_SERVICES:
        for volume in compose["services"][name].get("volumes", []):
            source, target = str(volume).split(":")[:2]
            assert source in compose["volumes"], f"{name}: {volume} is a named volume"
            assert target in created, f"{name}: {target} is not created for the airflow user"


# -- docker compose itself ---------------------------------------------------------------------------------
def _compose_plugin() -> str | None:
    """Why ``docker compose`` cannot run here, or None when it can."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker CLI on PATH"
    try:
        proc = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"`docker compose version` did not run: {err}"
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip().splitlines()[:1]
        return f"`docker compose version` failed (no compose plugin): {' '.join(output)[:200]}"
    return None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    """`docker compose config -q` with a .env as compose_env.py writes it, every profile on."""
    reason = _compose_plugin()
    if reason:
        pytest.skip(reason)
    env_file = tmp_path / ".env"
    assert compose_env.main([str(env_file)]) == 0
    proc = subprocess.run(
        [
            "docker",
            "compose",
            "--env-file",
            str(env_file),
            "--profile",
            "flower",
            "-f",
            str(COMPOSE_FILE),
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
