"""provider_info: what Airflow reads through the package's entry point, checked against Airflow's own schemas
and against the code it describes (hooks, the extras they read, the settings and their defaults)."""

from __future__ import annotations

import configparser
import importlib
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from od_scheduler import settings
from od_scheduler.hooks import http_base
from od_scheduler.hooks.http_base import OdHttpHook, connection_extras
from od_scheduler.platforms import PLATFORMS
from od_scheduler.provider_info import CONFIG_OPTIONS, CONNECTION_TYPES, get_provider_info

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
BY_TYPE = {ct["connection-type"]: ct for ct in CONNECTION_TYPES}


def airflow_schema(name: str) -> dict[str, Any]:
    return json.loads(resources.files("airflow").joinpath(name).read_text())


def hook_class(conn_type: str) -> type:
    module, _, name = BY_TYPE[conn_type]["hook-class-name"].rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_provider_info_is_valid_for_airflow() -> None:
    info = get_provider_info()
    jsonschema.validate(info, airflow_schema("provider_info.schema.json"))
    # The stricter provider.yaml schema Airflow's own providers are checked with, for the parts it defines.
    strict = airflow_schema("provider.yaml.schema.json")
    for key in ("connection-types", "config"):
        jsonschema.validate(
            info[key], {**strict["properties"][key], "definitions": strict.get("definitions", {})}
        )
    assert info["package-name"] == "od-scheduler"


def test_the_package_version_is_the_distribution_version() -> None:
    from importlib.metadata import version

    import od_scheduler

    assert get_provider_info()["versions"] == [od_scheduler.__version__] == [version("od-scheduler")]


def test_one_connection_type_per_upstream() -> None:
    """The CMS's, the Data API's, the alert webhook's, and each registered platform's (its entry's form)."""
    platform_types = [p.connection_form.conn_type for p in PLATFORMS.values()]
    assert len(CONNECTION_TYPES) == len(BY_TYPE) == 3 + len(PLATFORMS)
    assert set(BY_TYPE) == {"od_payload_cms", "od_data_api", "od_alerts", *platform_types}
    assert {"od_dealer_com", "od_apify", "od_homenet", "od_cobalt"} <= set(platform_types)
    assert "postgres" not in BY_TYPE  # od_job_history stays a postgres connection


@pytest.mark.parametrize("platform_id", list(PLATFORMS))
def test_each_platform_hook_reads_its_entrys_connection(platform_id: str) -> None:
    platform = PLATFORMS[platform_id]
    hook = hook_class(platform.connection_form.conn_type)
    assert hook.default_conn_name == platform.conn_id
    assert BY_TYPE[hook.conn_type] == platform.connection_form.provider_info()


def test_provider_info_reads_no_hook_and_no_airflow() -> None:
    """Airflow calls get_provider_info() in nearly every process: it is plain data, no hook imported."""
    code = (
        "import sys; import od_scheduler.provider_info as p; p.get_provider_info(); "
        "print(sorted(m for m in sys.modules if m.startswith(('airflow', 'od_scheduler.hooks', 'httpx'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("conn_type", sorted(BY_TYPE))
def test_each_type_names_a_hook_that_declares_it(conn_type: str) -> None:
    hook = hook_class(conn_type)
    assert hook.conn_type == conn_type
    assert hook.hook_name == BY_TYPE[conn_type]["hook-name"]
    assert hook.conn_name_attr == "conn_id"
    assert callable(getattr(hook, "test_connection", None))
    # Airflow 3.2+ warns about the per-hook UI methods; the declarative form replaces them.
    for cls in hook.__mro__:
        if cls.__module__.startswith("od_scheduler"):
            assert "get_ui_field_behaviour" not in cls.__dict__, cls
            assert "get_connection_form_widgets" not in cls.__dict__, cls


@pytest.mark.parametrize("conn_type", sorted(BY_TYPE))
def test_ui_behaviour_relabels_only_fields_it_shows(conn_type: str) -> None:
    behaviour = BY_TYPE[conn_type]["ui-field-behaviour"]
    hidden = set(behaviour["hidden-fields"])
    assert not hidden & set(behaviour["relabeling"]), "a relabelled field is hidden"
    assert not hidden & set(behaviour["placeholders"]), "a placeholder on a hidden field"
    assert {"schema", "port"} <= hidden  # base URLs are full URLs in host


def test_secret_form_fields_are_masked() -> None:
    secrets = {"integration_token", "api_key"}
    for ct in CONNECTION_TYPES:
        for name, field in ct["conn-fields"].items():
            is_secret = name in secrets
            assert (field["schema"].get("format") == "password") == is_secret, (ct["connection-type"], name)
            if is_secret:  # the hooks hand it to the redactor and mask_secret too
                assert any(s in name for s in http_base.SENSITIVE_EXTRA_KEYS)


class _Recording(dict):
    """Extras that remember which keys were asked for."""

    def __init__(self, data: dict[str, Any], seen: set[str]) -> None:
        super().__init__(data)
        self.seen = seen

    def get(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.seen.add(key)
        return super().__getitem__(key)


#: What makes each hook read every extra it uses (with a connection that has them all).
EXERCISE = {
    "od_payload_cms": lambda h: h.get_client().close(),
    "od_homenet": lambda h: (h.integration_token(None), h.client_kwargs()),
    "od_dealer_com": lambda h: (h.requests_per_second(), h.client_kwargs()),
    "od_apify": lambda h: h.get_client().close(),
    "od_vinsolutions": lambda h: h.get_client().close(),
    "od_dealersocket": lambda h: h.get_client().close(),
    "od_cobalt": lambda h: h.get_client().close(),
    "od_data_api": lambda h: h.get_client().close(),
    "od_alerts": lambda h: h.get_client().close(),
}

FIELD_VALUES = {
    "auth_collection": "users",
    "integration_token": "int-token-1234",
    "requests_per_second": 5,
    "items_page_size": 100,
    "token_url": "https://auth.test/oauth/token",
    "api_key": "api-key-1234",
    "timeout": 5,
    "max_attempts": 2,
    "deadline_s": 30,
    "max_response_mb": 10,
}


@pytest.mark.parametrize("conn_type", sorted(BY_TYPE))
def test_conn_fields_are_exactly_the_extras_the_hook_reads(
    conn_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = hook_class(conn_type)
    fields = BY_TYPE[conn_type]["conn-fields"]
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{hook.default_conn_name.upper()}",
        json.dumps(
            {
                "conn_type": conn_type,
                "host": "https://upstream.test/base",
                "login": "user-1234",
                "password": "secret-1234",
                "extra": {name: FIELD_VALUES[name] for name in fields},
            }
        ),
    )
    seen: set[str] = set()
    original = OdHttpHook._extras_of
    monkeypatch.setattr(OdHttpHook, "_extras_of", lambda self, raw: _Recording(original(self, raw), seen))
    EXERCISE[conn_type](hook())
    assert seen == set(fields)


def test_extras_are_read_plain_or_in_the_older_prefixed_form() -> None:
    raw = {
        "timeout": 5,
        "extra__od_cobalt__timeout": 9,
        "extra__od_cobalt__max_attempts": 3,
        "extra__http__deadline_s": 7,
        "extra__other__max_response_mb": 1,
        "requests_per_second": None,
        "api_key": "",
    }
    assert connection_extras(raw, ("od_cobalt", "http")) == {
        "timeout": 5,  # the plain key wins
        "max_attempts": 3,
        "deadline_s": 7,
        "extra__other__max_response_mb": 1,  # another type's field is not this connection's
    }


def test_a_blank_form_field_falls_back_to_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from od_scheduler.hooks.dealer_com import DealerComHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_OD_DEALER_COM",
        json.dumps(
            {
                "conn_type": "od_dealer_com",
                "extra": {
                    "requests_per_second": None,
                    "timeout": "",
                    "extra__od_dealer_com__max_attempts": 4,
                },
            }
        ),
    )
    hook = DealerComHook()
    assert hook.requests_per_second() == settings.get_settings().dealer_com_requests_per_second
    kwargs = hook.client_kwargs()
    assert kwargs["timeout"] == settings.get_settings().http_timeout_s
    assert kwargs["retry"].max_attempts == 4


# -- the [od_scheduler] config section ------------------------------------------------------------------
_KINDS = {
    "_float": "float",
    "_int": "integer",
    "_bool": "boolean",
    "_list": "string",
    "get_settings": "string",
}


class _RecordingConf:
    """Stands in for Airflow's conf while ``get_settings`` runs: records each key, its reader and fallback."""

    def __init__(self) -> None:
        self.reads: dict[str, tuple[str, str]] = {}

    def get(self, section: str, key: str, fallback: str = "", **_: Any) -> str:
        assert section == settings.SECTION
        self.reads[key] = (_KINDS[sys._getframe(1).f_code.co_name], fallback)
        return fallback


def settings_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, str]]:
    recording = _RecordingConf()
    monkeypatch.setattr(settings, "conf", recording)
    monkeypatch.delenv("OD_STAGING_URL", raising=False)
    settings.get_settings.__wrapped__()
    return recording.reads


def typed(kind: str, value: Any) -> Any:
    if kind == "float":
        return float(value)
    if kind == "integer":
        return int(value)
    if kind == "boolean":
        return str(value).strip().lower() == "true"
    return "" if value is None else str(value)


def test_every_setting_is_declared_with_its_description_type_and_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = settings_reads(monkeypatch)
    assert sorted(reads) == sorted(CONFIG_OPTIONS), "settings.py and provider_info disagree on the keys"
    for key, (kind, fallback) in reads.items():
        option = CONFIG_OPTIONS[key]
        assert len(option["description"]) > 20, key
        assert option["type"] == kind, key
        # Airflow answers a key it does not find elsewhere with this default, before settings.py's fallback.
        assert typed(kind, option["default"]) == typed(kind, fallback), key


def test_airflow_cfg_example_documents_the_same_keys_and_defaults() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "airflow.cfg.example")
    example = dict(parser.items("od_scheduler", raw=True))
    assert sorted(example) == sorted(CONFIG_OPTIONS)
    for key, option in CONFIG_OPTIONS.items():
        assert typed(option["type"], example[key]) == typed(option["type"], option["default"]), key


def test_airflow_serves_the_declared_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the real conf: an unset key comes back as the declared default (the provider is installed)."""
    from airflow.configuration import conf

    monkeypatch.delenv("AIRFLOW__OD_SCHEDULER__MIN_SHARDS", raising=False)
    assert (
        conf.get("od_scheduler", "min_shards", fallback="never used")
        == CONFIG_OPTIONS["min_shards"]["default"]
    )
