"""Dealer configuration as stored in PayloadCMS (docs/contracts.md §1).

A dealer document is validated in two layers so one bad platform config cannot hide a dealer from the
other platforms: the dealer itself (id, name, slug, status, platforms, schedule) must be valid, else the
CMS client yields an :class:`InvalidDealer`; each ``*_config`` object is validated on its own, and a
broken one is set aside in ``config_errors`` and reported by :meth:`Dealer.config_for` as a
``ConfigError`` only when that platform is pulled.

Secret config values (``integration_token``) are excluded from ``repr`` so they never reach a log line.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, overload

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from od_scheduler.exceptions import ConfigError

HOMENET = "homenet"
DEALER_COM = "dealer.com"
WEB_SCRAPING = "web_scraping"
VINSOLUTIONS = "vinsolutions"
DEALERSOCKET = "dealersocket"
COBALT = "cobalt"
#: Every platform id, exactly as the CMS spells it.
PLATFORM_IDS = (HOMENET, DEALER_COM, WEB_SCRAPING, VINSOLUTIONS, DEALERSOCKET, COBALT)


def _id_to_str(v: object) -> object:
    # Payload on Postgres uses numeric ids; treat them as the strings the rest of the project expects.
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


def _non_empty(v: str) -> str:
    v = v.strip()
    if not v:
        raise ValueError("must not be empty")
    return v


NonEmptyStr = Annotated[str, BeforeValidator(_id_to_str), AfterValidator(_non_empty)]


def summarize_validation_error(err: ValidationError, limit: int = 300) -> str:
    """``field: message`` pairs, without input values (a config may contain secrets)."""
    parts = []
    for e in err.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in e["loc"]) or "document"
        parts.append(f"{loc}: {e['msg']}")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Config(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


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


class HomenetConfig(_Config):
    """``homenet_config``: the HomeNet rooftop and, optionally, the dealer's own integration token."""

    rooftop_id: NonEmptyStr
    integration_token: str | None = Field(default=None, repr=False)


class DealerComConfig(_Config):
    """``dealer_com_config``: the Dealer.com site id and the dealer site's base URL."""

    site_id: NonEmptyStr
    base_url: NonEmptyStr


class WebScrapingConfig(_Config):
    """``web_scraping_config``: the Apify actor and the pages it starts from."""

    actor_id: NonEmptyStr
    start_urls: list[NonEmptyStr] = Field(min_length=1)
    max_items: int | None = Field(default=None, ge=1)
    #: Our own limit on the run (seconds); past it the run is aborted. Default: setting apify_max_wait_s.
    max_wait_s: int | None = Field(default=None, ge=1)


class VinsolutionsConfig(_Config):
    """``vinsolutions_config``: the dealer's VinSolutions id."""

    dealer_id: NonEmptyStr


class DealersocketConfig(_Config):
    """``dealersocket_config``: the dealer's DealerSocket code."""

    dealer_code: NonEmptyStr


class CobaltConfig(_Config):
    """``cobalt_config``: the dealer's Cobalt feed code."""

    dealer_code: NonEmptyStr


PlatformConfig = (
    HomenetConfig
    | DealerComConfig
    | WebScrapingConfig
    | VinsolutionsConfig
    | DealersocketConfig
    | CobaltConfig
)

#: platform id -> (document field, config model)
CONFIG_FIELDS: dict[str, tuple[str, type[_Config]]] = {
    HOMENET: ("homenet_config", HomenetConfig),
    DEALER_COM: ("dealer_com_config", DealerComConfig),
    WEB_SCRAPING: ("web_scraping_config", WebScrapingConfig),
    VINSOLUTIONS: ("vinsolutions_config", VinsolutionsConfig),
    DEALERSOCKET: ("dealersocket_config", DealersocketConfig),
    COBALT: ("cobalt_config", CobaltConfig),
}


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
    homenet_config: HomenetConfig | None = None
    dealer_com_config: DealerComConfig | None = None
    web_scraping_config: WebScrapingConfig | None = None
    vinsolutions_config: VinsolutionsConfig | None = None
    dealersocket_config: DealersocketConfig | None = None
    cobalt_config: CobaltConfig | None = None
    #: document field -> why its config was set aside (filled by validation, reported by ``config_for``)
    config_errors: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _set_aside_bad_configs(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        errors: dict[str, str] = {}
        for field, model in CONFIG_FIELDS.values():
            raw = data.get(field)
            if raw is None:
                continue
            try:
                data[field] = model.model_validate(raw)
            except ValidationError as err:
                errors[field] = summarize_validation_error(err)
                data[field] = None
        data["config_errors"] = errors
        if data.get("platforms") is None:
            data["platforms"] = []
        return data

    @overload
    def config_for(self, platform: Literal["homenet"]) -> HomenetConfig: ...
    @overload
    def config_for(self, platform: Literal["dealer.com"]) -> DealerComConfig: ...
    @overload
    def config_for(self, platform: Literal["web_scraping"]) -> WebScrapingConfig: ...
    @overload
    def config_for(self, platform: Literal["vinsolutions"]) -> VinsolutionsConfig: ...
    @overload
    def config_for(self, platform: Literal["dealersocket"]) -> DealersocketConfig: ...
    @overload
    def config_for(self, platform: Literal["cobalt"]) -> CobaltConfig: ...
    @overload
    def config_for(self, platform: str) -> PlatformConfig: ...

    def config_for(self, platform: str) -> PlatformConfig:
        """The config object for ``platform``, or ``ConfigError`` naming the dealer, platform and field.

        Returns ``HomenetConfig`` for ``homenet``, ``DealerComConfig`` for ``dealer.com``, and so on.
        """
        if platform not in CONFIG_FIELDS:
            raise ConfigError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORM_IDS)}")
        field, _ = CONFIG_FIELDS[platform]
        config: PlatformConfig | None = getattr(self, field)
        if config is not None:
            return config
        who = f"dealer {self.name!r} (id {self.id}, slug {self.slug})"
        if field in self.config_errors:
            raise ConfigError(
                f"{who}: {field} for platform {platform!r} is invalid: {self.config_errors[field]}. "
                "Fix the dealer's configuration in the CMS."
            )
        raise ConfigError(
            f"{who} has no {field}, required for platform {platform!r}. "
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
