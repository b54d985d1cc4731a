"""Markets: the countries a store sells to, each with its language, currency, time zone, store URLs and channels.

A `Market` is built once from `config.yaml` (`markets_of`). A campaign with `markets: [us, de]` posts every
slot of each market in that market's time zone, with its items' values for the market
(`campaign_markets.resolve_item`: market id -> locale -> language -> the item's own values; the price in the
market's currency, never converted), through
its translated templates (`template_for`: `launch.de.j2` beside `launch.j2`), to the channels of that market.
A campaign without `markets:` has no market (`None` everywhere): it behaves, and keys its posts, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from drainage.config import Config

T = TypeVar("T")


@dataclass(frozen=True)
class Market:
    """One market of the store, as every part of drainage sees it."""

    id: str
    locale: str
    currency: str
    tz: ZoneInfo
    base_url: str
    allowed_hosts: tuple[str, ...]
    untranslated: str = "error"  # error | default

    @property
    def language(self) -> str:
        """'de' for 'de_AT'."""
        return self.locale.replace("-", "_").split("_")[0]

    @property
    def chain(self) -> tuple[str, ...]:
        """Where per-market values are looked up, in order: the market id, its locale, its language."""
        return tuple(dict.fromkeys((self.id, self.locale, self.language)))

    def pick(self, values: Mapping[str, T]) -> T | None:
        """The first value of `values` along `chain` (None: none; the caller falls back to the default)."""
        for key in self.chain:
            if key in values:
                return values[key]
        return None


def markets_of(config: Config) -> dict[str, Market]:
    """The markets declared in config.yaml, by id (empty: the store has one implicit market)."""
    store = config.store
    out = {}
    for name, spec in config.markets.items():
        base = spec.base_url or store.base_url
        hosts = [urlsplit(base).hostname or "", *spec.link_hosts, *store.allowed_hosts()]
        out[name] = Market(name, spec.locale, spec.currency, ZoneInfo(spec.timezone or config.timezone), base,
                           tuple(dict.fromkeys(h.lower() for h in hosts if h)), spec.untranslated)
    return out


class MarketValueError(ValueError):
    """An item has nothing to show in a market (e.g. no price in its currency); `loc` is under the item."""

    def __init__(self, message: str, hint: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.hint = hint
        self.loc = loc


def localized_names(name: str, market: Market) -> list[str]:
    """Translated template names for `market`, most specific first: 'social/launch.j2' ->
    ['social/launch.de_DE.j2', 'social/launch.de.j2'] (the locale goes after the file's first name part, so
    'gift.txt.j2' -> 'gift.de.txt.j2' and HTML templates stay HTML)."""
    folder, slash, base = name.rpartition("/")
    stem, dot, rest = base.partition(".")
    tags = dict.fromkeys((market.locale.replace("-", "_"), market.language))
    return [f"{folder}{slash}{stem}.{tag}{dot}{rest}" if dot else f"{folder}{slash}{stem}.{tag}" for tag in tags]


class MissingTranslation(LookupError):
    """A market's language has no translation of a template (and the market does not allow the default)."""

    def __init__(self, name: str, market: Market, wanted: list[str]) -> None:
        super().__init__(f"no {market.language} translation of '{name}' for market '{market.id}'")
        self.name, self.market, self.wanted = name, market, wanted


def template_for(name: str, market: Market | None, exists: Callable[[str], bool], default_language: str) -> str:
    """The template a market's post renders: its translation if there is one; the untranslated one when the
    market speaks the store's default language or allows it (`untranslated: default`); else MissingTranslation.
    """
    if market is None:
        return name
    wanted = localized_names(name, market)
    for candidate in wanted:
        if exists(candidate):
            return candidate
    if market.language == default_language or market.untranslated == "default":
        return name
    raise MissingTranslation(name, market, wanted)


def subject_for(subject: str | None, subjects: Mapping[str, str], market: Market | None,
                default_language: str) -> str | None:
    """A channel's subject line for a market (`subjects` by market id, locale or language, else `subject`)."""
    if market is None:
        return subject
    found = market.pick(subjects)
    if found is not None:
        return found
    if subject is not None and market.language != default_language and market.untranslated != "default":
        raise MissingTranslation("subject", market, [f"subjects: {{{market.language}: ...}}"])
    return subject


def vars_for(values: Mapping[str, T], market_vars: Mapping[str, Mapping[str, T]],
             market: Market | None) -> dict[str, T]:
    """A variant's or theme's `vars` as `market` shows them: each from the first of market id -> locale ->
    language in `market_vars` that sets it, else as written."""
    out = dict(values)
    if market is None:
        return out
    for key in reversed(market.chain):
        out.update(market_vars.get(key, {}))
    return out


def untranslated_vars(values: Mapping[str, object], market_vars: Mapping[str, Mapping[str, object]],
                      market: Market, default_language: str) -> list[str]:
    """The text `vars` that `market` would show as written although it speaks another language than the store
    and does not allow it (`untranslated: default`): the names of the missing translations."""
    if market.language == default_language or market.untranslated == "default":
        return []
    return [name for name, value in values.items() if isinstance(value, str)
            and not any(name in market_vars.get(key, {}) for key in market.chain)]


def language_of(locale: str) -> str:
    return locale.replace("-", "_").split("_")[0]


def market_of_locale(locale: str, markets: Mapping[str, Market], country: str = "") -> Market | None:
    """The market a subscriber with `locale` (and a `country` attribute, if any) belongs to, the first that fits of:

    1. the market of that exact locale ('de_AT');
    2. a market of the subscriber's country (the `country` attribute, else the locale's country): one whose locale
       is in that country ('at' for de_AT; of several, the one of the subscriber's language), else one whose id
       is the country;
    3. the first market of the locale's language ('de');
    4. the first market declared (the store's home market).

    None only when there are no markets."""
    if not markets:
        return None
    wanted = locale.strip().replace("-", "_").lower()
    language, _, own_country = wanted.partition("_")
    where = (country.strip() or own_country).lower()
    exact = next((m for m in markets.values() if m.locale.replace("-", "_").lower() == wanted), None)
    if exact is not None:
        return exact
    if where:
        there = [m for m in markets.values() if m.locale.replace("-", "_").lower().partition("_")[2] == where]
        found = (next((m for m in there if m.language.lower() == language), None) or next(iter(there), None)
                 or markets.get(where))
        if found is not None:
            return found
    return (next((m for m in markets.values() if m.language.lower() == language), None)
            or next(iter(markets.values())))
