"""config.yaml: the store, the database, the tracker, time zone, UTM defaults and channel instances."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Collection, Iterable
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator

from drainage.channel import ChannelOptions
from drainage.errors import Problem
from drainage.registry import channel_type, channel_type_names
from drainage.sources import (
    Invalid,
    Positions,
    did_you_mean,
    interpolate_env,
    load_yaml,
    problems_from_validation,
    unforeseen,
)
from drainage.units import Duration, duration

BIO_PAGE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


class Strict(BaseModel):
    """A model that refuses unknown keys (a typo must never be silently ignored)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_timezone(name: str) -> str:
    """Accept an IANA time zone name, or explain with the closest one."""
    if name in _zones():
        return name
    raise Invalid(f"unknown time zone '{name}'", did_you_mean(name, _zones()) or "expected e.g. 'Europe/Paris'")


def check_http_url(value: str) -> str:
    """An absolute http(s) URL with a host."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an absolute http(s) URL such as 'https://shop.example.com', got '{value}'")
    return value.rstrip("/")


class StoreConfig(Strict):
    """The store that every link leads to."""

    name: str = Field(description="The store's name, available to templates as store.name.")
    base_url: str = Field(description="The store's home page; relative item URLs are joined to it.")
    link_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts links may lead to (the store's domains; '*.example.com' allows subdomains). "
                    "Default: the host of base_url.")
    locale: str = Field(default="en_US", description="Locale for prices and dates, e.g. 'de_DE'.")
    currency: str = Field(default="USD", description="Currency of item prices when an item names none.")

    _check_url = field_validator("base_url")(check_http_url)

    def allowed_hosts(self) -> list[str]:
        """Allowed link hosts, always including the base URL's host."""
        host = urlsplit(self.base_url).hostname or ""
        return list(dict.fromkeys(h.lower() for h in (host, *self.link_hosts)))  # in order: messages list them


DATABASE_URL_FORMS = ("write sqlite:///drainage.db (a file next to config.yaml) or "
                      "postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE")
DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")


def check_database_url(value: str) -> str:
    """A URL drainage can open: SQLite or PostgreSQL through psycopg 3. Messages never repeat the URL (it may
    hold a password)."""
    scheme, sep, _ = value.partition("://")
    if not sep:
        raise Invalid("not a database URL", DATABASE_URL_FORMS)
    if scheme.lower() == "postgres":
        raise Invalid("'postgres://' is not a scheme SQLAlchemy knows",
                      "write postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE")
    if scheme.lower() not in DATABASE_SCHEMES:
        raise Invalid(f"drainage cannot use '{scheme}://' databases", DATABASE_URL_FORMS)
    if scheme.startswith("sqlite"):
        return value
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise Invalid("the port is not a number",
                      "write postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE") from None
    if not parts.path.strip("/"):
        raise Invalid("it names no database", "end it with /DATABASE, e.g. "
                      "postgresql+psycopg://USER:PASSWORD@HOST:5432/drainage")
    return value


MARKET_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
CURRENCY = re.compile(r"[A-Z]{3}")


def check_locale(value: str) -> str:
    """A locale babel knows ('de_DE', 'fr', 'ja_JP'), or explain."""
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(value)
    except (UnknownLocaleError, ValueError):
        raise Invalid(f"unknown locale '{value}'", "expected a language and country such as 'de_DE' or 'en_US'"
                      ) from None
    return value


class MarketConfig(Strict):
    """A market the store sells to: its language, currency, time zone and (optionally) store URLs."""

    locale: str = Field(description="Language and country of the market's posts, e.g. 'de_DE': picks the "
                                    "translated templates (launch.de.j2) and formats prices and dates.")
    currency: str = Field(description="ISO code of the market's prices, e.g. 'EUR'. Prices are the store's own "
                                      "for that currency (items' `prices:`), never converted.")
    timezone: str | None = Field(default=None, description="IANA time zone the schedules' wall-clock times are "
                                                           "read in for this market (default: `timezone`).")
    base_url: str | None = Field(default=None, description="The market's store home page, e.g. "
                                                           "'https://shop.example.com/de' or 'https://shop.example.de';"
                                                           " relative item URLs are joined to it (default: "
                                                           "store.base_url).")
    link_hosts: list[str] = Field(default_factory=list,
                                  description="More hosts this market's links may lead to, besides the host of its "
                                              "base_url and store.link_hosts.")
    untranslated: Literal["error", "default"] = Field(
        default="error", description="A template without a translation for this market's language: `error` (a "
                                     "problem in validate) or `default` (post the untranslated template: for a market "
                                     "whose channels take the store's language).")

    _check_url = field_validator("base_url")(lambda v: None if v is None else check_http_url(v))
    _check_tz = field_validator("timezone")(lambda v: None if v is None else check_timezone(v))
    _check_locale = field_validator("locale")(check_locale)

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if not CURRENCY.fullmatch(v):
            raise ValueError(f"'{v}' is not an ISO currency code: expected three capital letters such as 'EUR'")
        return v


class DatabaseConfig(Strict):
    """Where the journal, links and clicks live."""

    url: str = Field(default="sqlite:///drainage.db",
                     description="SQLAlchemy URL; a relative SQLite path is relative to config.yaml.")

    _check_url = field_validator("url")(check_database_url)


MIN_RETENTION = timedelta(days=2)
"""Shortest `tracker.keep_raw_clicks`: the daily visitor sets must outlive a late write into yesterday."""
Retention = duration(minimum=MIN_RETENTION, message="'{value}' is too short: keep raw clicks at least 2d (a late "
                     "write may still add to yesterday's unique visitors)")


class TrackerConfig(Strict):
    """The click tracker: where posted links point, where it listens, and how it logs clicks and orders."""

    public_url: str = Field(default="http://127.0.0.1:8080",
                            description="Public base URL of the tracker; links are {public_url}/c/{code}.")
    host: str = Field(default="127.0.0.1", description="Address the tracker binds to.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port the tracker binds to.")
    enabled: bool = Field(default=True, description="Start the tracker beside the scheduler in `drainage run`.")
    click_param: str = Field(default="dr_click", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$",
                             description="Query parameter that carries the click id to the store (hand it back "
                                         "with orders for exact attribution).")
    flush_every: Duration = Field(default="250ms", description="Longest time a click waits in memory before it "
                                                               "is written (a hard kill loses at most this much).")
    batch_size: int = Field(default=5000, ge=1, le=100_000, description="Write clicks as soon as this many wait.")
    writer: Literal["process", "thread"] = Field(
        default="process", description="Where batches of clicks are written: `process` (a child process of the "
                                       "tracker: the redirects spend no CPU on the database, and a second core takes "
                                       "the writes) or `thread` (a thread of the tracker process).")
    max_pending: int = Field(default=200_000, ge=1000,
                             description="Clicks kept in memory while the database is unreachable; beyond this "
                                         "the oldest are dropped and counted in the metrics.")
    visitor_key: SecretStr | None = Field(
        default=None, description="Key of the visitor hash (IP, user agent, day); default: a random key kept in "
                                  "the database, shared by every tracker on it.")
    order_secret: SecretStr | None = Field(
        default=None, description="HMAC secret of the order webhooks (from the environment, e.g. "
                                  "${DRAINAGE_ORDER_SECRET}); without it /hooks/order answers 503.")
    replay_window: Duration = Field(default="5m", description="How old a signed order webhook may be (replays -> 401).")
    proxy_ips: list[str] = Field(
        default_factory=list, description="Reverse proxies trusted to set X-Forwarded-For (e.g. ['127.0.0.1']); "
                                          "default: none, the peer address is the visitor's.")
    reports_token: SecretStr | None = Field(
        default=None, description="Token of the /reports page (from the environment, e.g. ${DRAINAGE_REPORTS_TOKEN}; "
                                  "at least 16 characters); without it /reports answers 503.")
    keep_raw_clicks: Retention | None = Field(
        default=None, description="Delete raw clicks older than this (e.g. '90d'; at least 2d), hourly in the tracker "
                                  "and with `drainage prune`; daily rollups and reports are kept. Default: keep all.")

    _check_url = field_validator("public_url")(check_http_url)

    @field_validator("reports_token")
    @classmethod
    def _token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and 0 < len(v.get_secret_value()) < 16:
            raise ValueError("the reports token is too short: use at least 16 random characters "
                             "(e.g. `openssl rand -hex 24`)")
        return v


class DaemonConfig(Strict):
    """How `drainage run` dispatches: retries, pacing, shutdown, logs and metrics."""

    max_attempts: int = Field(default=5, ge=1, description="Tries of a post before it fails (rate limits not counted).")
    backoff: Duration = Field(default="30s", description="First retry delay; doubles each try, with jitter.")
    backoff_max: Duration = Field(default="15m", description="Longest retry delay.")
    sweep_every: Duration = Field(default="15s",
                                  description="How often due slots and retries are checked between triggers.")
    shutdown_timeout: Duration = Field(default="30s",
                                       description="How long in-flight sends may take to finish on SIGTERM.")
    log_format: Literal["plain", "json"] = Field(default="plain", description="One line per event, plain or JSON.")
    metrics_port: int | None = Field(default=None, ge=1, le=65535,
                                     description="Serve Prometheus metrics on this port (default: off).")
    metrics_host: str = Field(default="127.0.0.1", description="Address of the metrics endpoint.")
    watch: bool = Field(default=True, description="Reload campaigns and templates when their files change.")
    lease: Duration = Field(default="2m", description="How long a daemon's claim on a post it is sending holds "
                                                      "without renewal; after that another daemon settles it (crash "
                                                      "takeover).")

class UtmDefaults(Strict):
    """UTM tags added to every link unless a campaign overrides them."""

    source: str | None = Field(default=None, description="Default utm_source (default: the channel instance name).")
    medium: str | None = Field(default=None, description="Default utm_medium (default: social / forum / email).")
    campaign: str | None = Field(default=None, description="Default utm_campaign (default: the campaign id).")


class PathsConfig(Strict):
    """Folders, relative to config.yaml."""

    campaigns: str = Field(default="campaigns", description="Folder of campaign YAML files.")
    templates: str = Field(default="templates", description="Folder of Jinja2 templates.")
    locales: str = Field(default="locales", description="Folder of gettext catalogs for `{% trans %}` in templates: "
                                                        "{locales}/{language}/LC_MESSAGES/messages.po (see Markets).")


class SignupConfig(Strict):
    """The tracker's sign-up form (`/subscribe`)."""

    list: str | None = Field(default=None, description="List that sign-ups join; unset: no /subscribe form.")
    double_opt_in: bool = Field(default=True, description="Mail a confirmation link first; only a confirmed "
                                                          "address is mailed by campaigns.")
    channel: str | None = Field(default=None, description="Email channel instance that sends the confirmation "
                                                          "mail (needed with double_opt_in).")
    consent_source: str = Field(default="sign-up form", description="Consent source recorded for sign-ups.")


class EmailConfig(Strict):
    """Permission-based email: signed links, the bounce webhook, sign-ups."""

    token_secret: SecretStr | None = Field(
        default=None, description="Key that signs unsubscribe and confirmation links (e.g. "
                                  "${DRAINAGE_EMAIL_SECRET}); default: a random key kept in the database.")
    bounce_secret: SecretStr | None = Field(
        default=None, description="HMAC secret of /hooks/bounce (from the environment); without it the hook "
                                  "answers 503.")
    signup: SignupConfig = Field(default_factory=SignupConfig, description="The /subscribe form.")


class BioPageConfig(Strict):
    """A link-in-bio page the tracker serves at /l/{name}: what a channel's posts currently promote."""

    channel: str = Field(description="The channel instance whose posts the page lists (e.g. an instagram one); "
                                     "clicks and orders from the page are credited to it.")
    title: str | None = Field(default=None, description="Heading of the page (default: the store's name).")
    intro: str | None = Field(default=None, description="A line of text under the heading.")
    days: int = Field(default=30, ge=1, le=366, description="List items posted on the channel in this many days.")
    max_items: int = Field(default=24, ge=1, le=200, description="Most items listed, newest first.")
    cache_seconds: int = Field(default=60, ge=0, le=86400,
                               description="How long CDNs and browsers may keep the page (Cache-Control max-age).")


class Config(Strict):
    """The whole config.yaml."""

    store: StoreConfig = Field(description="The store every link leads to.")
    database: DatabaseConfig = Field(default_factory=DatabaseConfig, description="Where drainage keeps its data.")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, description="The click tracker.")
    timezone: str = Field(default="UTC", description="Default time zone of campaigns (IANA name).")
    utm: UtmDefaults = Field(default_factory=UtmDefaults, description="UTM defaults for every campaign.")
    daemon: DaemonConfig = Field(default_factory=DaemonConfig, description="How `drainage run` behaves.")
    paths: PathsConfig = Field(default_factory=PathsConfig, description="Where campaigns and templates live.")
    email: EmailConfig = Field(default_factory=EmailConfig, description="Subscribers' links, bounces, sign-ups.")
    channels: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Named channel instances: {name: {type: outbox|telegram|..., options}}.")
    markets: dict[str, MarketConfig] = Field(
        default_factory=dict, description="Markets the store sells to: {id: {locale, currency, timezone, base_url}}"
                                          " (see Markets). None: one market, from store.locale, store.currency and "
                                          "timezone.")
    bio_pages: dict[str, BioPageConfig] = Field(
        default_factory=dict, description="Link-in-bio pages served by the tracker at /l/{name}, one per brand or "
                                          "market: {name: {channel: ..., title: ...}}.")

    _check_tz = field_validator("timezone")(check_timezone)

    @field_validator("markets")
    @classmethod
    def _market_ids(cls, markets: dict[str, MarketConfig]) -> dict[str, MarketConfig]:
        for name in markets:
            if not MARKET_ID.fullmatch(name):
                raise Invalid(f"market id '{name}' must start with a letter and hold only letters, digits, '_' "
                              "or '-'", "e.g. 'de', 'us' or 'de_AT'", loc=(name,))
        return markets

    @field_validator("bio_pages")
    @classmethod
    def _bio_pages_name_channels(cls, pages: dict[str, BioPageConfig],
                                 info: ValidationInfo) -> dict[str, BioPageConfig]:
        channels = info.data.get("channels") or {}
        for name, page in pages.items():
            if not BIO_PAGE_NAME.fullmatch(name):
                raise Invalid(f"bio page name '{name}' is not a URL path segment",
                              "use lower-case letters, digits and '-': it is served at /l/{name}", loc=(name,))
            if page.channel not in channels:
                raise Invalid(f"no channel '{page.channel}' in channels",
                              did_you_mean(page.channel, channels) or "channels: " + ", ".join(sorted(channels)),
                              loc=(name, "channel"))
        return pages


class LoadedConfig:
    """A validated config with its channel options parsed by each plugin's own model."""

    def __init__(self, path: Path, config: Config, channels: dict[str, ChannelOptions], shown_as: str) -> None:
        self.path = path
        self.root = path.parent
        self.config = config
        self.channels = channels
        self.shown_as = shown_as

    @property
    def campaigns_dir(self) -> Path:
        return self.root / self.config.paths.campaigns

    @property
    def templates_dir(self) -> Path:
        return self.root / self.config.paths.templates

    @property
    def locales_dir(self) -> Path:
        return self.root / self.config.paths.locales

    @property
    def database_url(self) -> str:
        """The database URL, with a relative SQLite path made relative to config.yaml."""
        url = self.config.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str((self.root / url[len(prefix):]).resolve())
        return url

    def secrets(self) -> list[str]:
        """Every secret value in the config (channel options, tracker keys), to be masked in logs."""
        models: list[BaseModel] = [self.config, *self.channels.values()]
        found: list[str] = []
        while models:
            model = models.pop()
            for value in model.__dict__.values():
                if isinstance(value, SecretStr):
                    found.append(value.get_secret_value())
                elif isinstance(value, BaseModel):
                    models.append(value)
        return [s for s in found if s]


def load_config(path: Path, shown_as: str, environ: dict[str, str] | None = None,
                only: Collection[str] | None = None) -> tuple[LoadedConfig | None, list[Problem]]:
    """Load and validate config.yaml; return it (or None) with every problem found.

    `only` names the keys a command uses (e.g. ``("database",)`` or ``("tracker.keep_raw_clicks",)``): the other
    sections keep their defaults and are neither checked nor have their `${VAR}`s resolved, so a command never
    needs a secret it does not use. `store` is always read.
    """
    data, positions, problems = load_yaml(path, shown_as)
    if problems:
        return None, problems
    if not isinstance(data, dict):
        return None, [Problem(shown_as, 1, 1, "expected a mapping of keys such as 'store:' and 'channels:'")]
    if only is not None:
        data = _select(data, ("store", *only))
    data, problems = interpolate_env(data, positions, environ)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems += problems_from_validation(exc, positions, Config)
        return None, problems
    except Exception as exc:  # a value no validator foresaw
        return None, [unforeseen(shown_as, exc)]
    channels, channel_problems = _load_channels(config.channels, positions)
    problems += channel_problems
    problems += _channel_market_problems(config, channels, positions)
    if problems:
        return None, problems
    return LoadedConfig(path, config, channels, shown_as), []


def _select(data: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """The parts of `data` at the dotted `paths` ('database', 'tracker.keep_raw_clicks'), in their places."""
    out: dict[str, Any] = {}
    for path in paths:
        *parents, last = path.split(".")
        source, target = data, out
        for key in parents:
            if not isinstance(source.get(key), dict):
                break
            source, target = source[key], target.setdefault(key, {})
        else:
            if last in source:
                target[last] = source[last]
    return out


def _load_channels(raw: dict[str, dict[str, Any]], positions: Positions
                   ) -> tuple[dict[str, ChannelOptions], list[Problem]]:
    out: dict[str, ChannelOptions] = {}
    problems: list[Problem] = []
    for name, options in raw.items():
        loc = ("channels", name)
        if not isinstance(options, dict):
            problems.append(positions.problem(loc, f"channels.{name}: expected a mapping with at least 'type:'"))
            continue
        kind = options.get("type")
        if kind is None:
            problems.append(positions.problem(loc, f"channels.{name}: missing required key 'type'",
                                              "one of: " + ", ".join(channel_type_names()), key=True))
            continue
        plugin = channel_type(str(kind))
        if plugin is None:
            types = channel_type_names()
            hint = did_you_mean(str(kind), types) or "installed: " + ", ".join(types)
            problems.append(positions.problem((*loc, "type"), f"unknown channel type '{kind}'", hint))
            continue
        try:
            out[name] = plugin.Options.model_validate(options)
        except ValidationError as exc:
            problems += problems_from_validation(exc, positions, plugin.Options, prefix=loc)
    return out, problems


def _channel_market_problems(config: Config, channels: dict[str, ChannelOptions], positions: Positions
                             ) -> list[Problem]:
    """A channel's `market:` must name one of `markets:`."""
    problems = []
    for name, options in channels.items():
        market = getattr(options, "market", None)
        if market is not None and market not in config.markets:
            hint = (did_you_mean(market, config.markets) or "markets: " + ", ".join(sorted(config.markets))
                    if config.markets else "declare it under 'markets:' in config.yaml")
            problems.append(positions.problem(("channels", name, "market"), f"no market '{market}' in markets",
                                              hint))
    return problems
