"""Dealer configuration as stored in PayloadCMS (docs/contracts.md §1).

A dealer document is validated in two layers so one bad platform config cannot hide a dealer from the
other platforms: the dealer itself (id, name, slug, status, platforms, schedule) must be valid, else the
CMS client yields an :class:`InvalidDealer`; each ``*_config`` object is validated on its own, and a
broken one is set aside in ``config_errors`` and reported by :meth:`Dealer.config_for` as a
``ConfigError`` only when that platform is pulled.

Secret config values (``integration_token``) are excluded from ``repr`` so they never reach a log line.
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from od_scheduler.exceptions import ConfigError
from od_scheduler.models.platform_config import NonEmptyStr, PlatformConfig
from od_scheduler.platforms import PLATFORMS, Platform

C = TypeVar("C", bound=PlatformConfig)


def summarize_validation_error(err: ValidationError, limit: int = 300) -> str:
    """``field: message`` pairs, without input values (a config may contain secrets)."""
    parts = []
    for e in err.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in e["loc"]) or "document"
        parts.append(f"{loc}: {e['msg']}")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DealerSchedule(BaseModel):
    """Per-dealer schedule override: ``interval_minutes`` (else the platform default) and ``paused``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    interval_minutes: int | None = Field(default=None, ge=1)
    paused: bool = False

    @model_validator(mode="before")
    @classmethod
    def _null_paused(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("paused") is None:
            return {**data, "paused": False}
        return data


class Dealer(BaseModel):
    """One dealer document from the CMS, with the configs of the platforms it uses."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: NonEmptyStr
    name: NonEmptyStr
    slug: NonEmptyStr
    domain: str | None = None
    status: NonEmptyStr
    timezone: str | None = None
    platforms: list[str] = Field(default_factory=list)
    schedule: DealerSchedule | None = None
    #: platform id -> its valid config, read from the document field the registry names (``cobalt_config``...)
    configs: dict[str, PlatformConfig] = Field(default_factory=dict)
    #: document field -> why its config was set aside (filled by validation, reported by ``config_for``)
    config_errors: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _set_aside_bad_configs(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        configs: dict[str, PlatformConfig] = {}
        errors: dict[str, str] = {}
        for platform in PLATFORMS.values():
            raw = data.get(platform.config_field)
            if raw is None:
                continue
            try:
                configs[platform.id] = platform.config_model.model_validate(raw)
            except ValidationError as err:
                errors[platform.config_field] = summarize_validation_error(err)
        data["configs"] = configs
        data["config_errors"] = errors
        if data.get("platforms") is None:
            data["platforms"] = []
        return data

    @property
    def described(self) -> str:
        """How configuration messages name the dealer: ``'Name' (id <id>, slug <slug>)``."""
        return f"{self.name!r} (id {self.id}, slug {self.slug})"

    @overload
    def config_for(self, platform: Platform[C]) -> C: ...
    @overload
    def config_for(self, platform: str) -> PlatformConfig: ...

    def config_for(self, platform: Platform[Any] | str) -> PlatformConfig:
        """The config object for ``platform`` (its registry entry, typed; or its id), or ``ConfigError``
        naming the dealer, platform and field."""
        if isinstance(platform, str):
            if platform not in PLATFORMS:
                raise ConfigError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}")
            platform = PLATFORMS[platform]
        config = self.configs.get(platform.id)
        if config is not None:
            return config
        field = platform.config_field
        who = f"dealer {self.described}"
        if field in self.config_errors:
            raise ConfigError(
                f"{who}: {field} for platform {platform.id!r} is invalid: {self.config_errors[field]}. "
                "Fix the dealer's configuration in the CMS."
            )
        raise ConfigError(
            f"{who} has no {field}, required for platform {platform.id!r}. "
            "Add it in the CMS or remove the platform from the dealer."
        )


class InvalidDealer(BaseModel):
    """A CMS dealer document that failed validation: reported as a failed dealer, never dropped."""

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    name: str | None = None
    slug: str | None = None
    error: str

    @classmethod
    def from_document(cls, doc: object, error: str) -> InvalidDealer:
        """Keep whatever identity the document has, so the failure can be attributed."""
        if not isinstance(doc, dict):
            return cls(error=error)

        def text(key: str) -> str | None:
            value = doc.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                return str(value).strip()
            return None

        return cls(id=text("id"), name=text("name"), slug=text("slug"), error=error)
