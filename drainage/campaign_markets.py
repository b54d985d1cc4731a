"""Binding a loaded campaign to its markets: which markets each channel entry posts for, each item as a market
shows it (`resolve_item`), each template's translation, and every problem with them (`bind_campaign`).

`drainage.markets` holds the markets themselves; this module sits above the campaign models it binds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from drainage.campaigns import ChannelUse, Item, LoadedCampaign
from drainage.errors import Problem
from drainage.links import LinkError, resolve_target
from drainage.markets import (
    Market,
    MarketValueError,
    MissingTranslation,
    subject_for,
    template_for,
    untranslated_vars,
)
from drainage.sources import did_you_mean


def resolve_item(item: Item, market: Market, default_currency: str) -> Item:
    """`item` as `market` shows it: each field from the first of market id -> locale -> language that sets it,
    else the item's own; the price in the market's currency (`prices`, a market's `price`, or `price` when the
    item's currency is the market's). MarketValueError when the item has a price but none in that currency.

    The copy keeps the item's key (an item without `id` is keyed by its own name, not a translation).
    """
    found = [item.markets[k] for k in market.chain if k in item.markets]
    update: dict[str, Any] = {"id": item.key, "currency": market.currency}
    for name in ("name", "url", "image", "discount_code", "description", "tags"):
        value = next((getattr(v, name) for v in found if getattr(v, name) is not None), None)
        if value is not None:
            update[name] = value
    extra = dict(item.extra)
    for values in reversed(found):
        extra.update(values.extra)
    update["extra"] = extra
    price = next((v.price for v in found if v.price is not None), None)
    if price is None:
        price = item.prices.get(market.currency)
    if price is None and item.price is not None and (item.currency or default_currency) == market.currency:
        price = item.price
    if price is None and (item.price is not None or item.prices):
        has = sorted({*item.prices, *([item.currency or default_currency] if item.price is not None else [])})
        raise MarketValueError(
            f"item '{item.key}' has no price in {market.currency} for market '{market.id}' (it has {', '.join(has)})",
            f"add it to the item: prices: {{{market.currency}: ...}} (prices are never converted)", ("prices",))
    update["price"] = price
    return item.model_copy(update=update)


def bind_campaign(campaign: LoadedCampaign, markets: Mapping[str, Market], channel_market: Mapping[str, str | None],
                  default_currency: str, exists: Callable[[str], bool],
                  default_language: str, templates_dir: str = "templates",
                  catalog_check: Callable[[str, Market], list[Problem] | None] | None = None) -> list[Problem]:
    """Give a loaded campaign its markets (`LoadedCampaign.bind_markets`); return what is wrong with them.

    A channel entry posts for the campaign's markets (or those its `markets:` names); a channel that belongs to a
    market (`market: de` in config.yaml) posts only that market's posts, and only in a campaign that has it.
    A template without a translated file may be translated by the market's gettext catalog: `catalog_check` says
    what that catalog lacks (None: the template has no translatable message).
    """
    pos, model, problems = campaign.positions, campaign.model, []
    for index, name in enumerate(model.markets):
        if name not in markets:
            hint = (did_you_mean(name, markets) or "markets: " + ", ".join(sorted(markets)) if markets
                    else "declare it under 'markets:' in config.yaml")
            problems.append(pos.problem(("markets", index), f"no market '{name}' in config.yaml", hint))
    if problems:
        return problems
    mine = tuple(markets[name] for name in model.markets)
    use_markets: dict[int, tuple[Market, ...]] = {}
    for index, use in enumerate(model.channels):
        own = channel_market.get(use.channel)
        loc = ("channels", index, "channel")
        if not mine:
            if own is not None:
                problems.append(pos.problem(loc, f"channel '{use.channel}' belongs to market '{own}': a campaign "
                                            "without markets would post the store's default language on it",
                                            f"add 'markets: [{own}]' to the campaign"))
            continue
        names = use.markets if use.markets is not None else model.markets
        if own is not None and own not in names:
            problems.append(pos.problem(loc, f"channel '{use.channel}' belongs to market '{own}', which this entry "
                                        f"does not post for (it posts for {', '.join(names)})",
                                        f"add '{own}' to the campaign's markets, or use a channel of "
                                        f"{', '.join(names)}"))
            continue
        use_markets[id(use)] = tuple(m for m in mine if m.id in names and own in (None, m.id))
    items: dict[str, list[Item]] = {}
    known = {key for m in markets.values() for key in m.chain}
    for index, item in enumerate(model.items):
        for key in item.markets:
            if key not in known:
                problems.append(pos.problem(("items", index, "markets", key), f"'{key}' is not a market id, locale "
                                            "or language of config.yaml's markets",
                                            did_you_mean(key, known) or "known: " + ", ".join(sorted(known))
                                            if known else "declare markets under 'markets:' in config.yaml",
                                            key=True))
    for market in mine:
        resolved = []
        for index, item in enumerate(model.items):
            try:
                local = resolve_item(item, market, default_currency)
                resolve_target(local.url, market.base_url, list(market.allowed_hosts))
            except MarketValueError as exc:
                at = next((f for f in ("prices", "price") if f in item.model_fields_set), None)
                problems.append(pos.problem(("items", index, at) if at else ("items", index), str(exc), exc.hint))
                continue
            except LinkError as exc:
                problems.append(pos.problem(("items", index, "url"), f"market '{market.id}': {exc}",
                                            f"or, for market '{market.id}' alone, to markets.{market.id}."
                                            "link_hosts in config.yaml"))
                continue
            resolved.append(local)
        items[market.id] = resolved
    entries: list[tuple[tuple[str | int, ...], ChannelUse, tuple[Market, ...]]] = [
        (("channels", index), use, use_markets.get(id(use), ())) for index, use in enumerate(model.channels)]
    for f, feed in enumerate(model.feeds):
        own_feed = markets.get(feed.market) if feed.market else None
        for index, use in enumerate(feed.channels):
            own = channel_market.get(use.channel)
            if own is not None and (own_feed is None or own != own_feed.id):
                problems.append(pos.problem(("feeds", f, "channels", index, "channel"), f"channel '{use.channel}' "
                                            f"belongs to market '{own}': "
                                            + (f"this feed is market '{own_feed.id}'s store feed" if own_feed else
                                               "a feed without a market would post the store's default language "
                                               "on it"),
                                            f"give the feed 'market: {own}'" if own_feed is None or not mine
                                            else f"use a channel of market '{own_feed.id}'"))
            entries.append((("feeds", f, "channels", index), use, (own_feed,) if own_feed else ()))
    templates: dict[tuple[str, str], str] = {}
    subjects: dict[tuple[int, str], str | None] = {}
    for at_use, use, use_in in entries:
        names: list[tuple[tuple[str | int, ...], str]] = [((*at_use, "template"), use.template)]
        names += [((*at_use, "variants", j, "template"), v.template)
                  for j, v in enumerate(use.variants) if v.template]
        if use.text_template:
            names.append(((*at_use, "text_template"), use.text_template))
        for market in use_in:
            wanted = names + [(("themes", t, "templates", usual), themed)
                              for t, theme in enumerate(model.themes)
                              if theme.markets is None or market.id in theme.markets
                              for usual, themed in theme.templates.items()]
            for loc, name in wanted:
                if (market.id, name) in templates or not exists(name):  # a missing template is reported once
                    continue
                try:
                    templates[(market.id, name)] = template_for(name, market, exists, default_language)
                except MissingTranslation as exc:
                    lacking = catalog_check(name, market) if catalog_check is not None else None
                    if lacking is not None:  # {% trans %} messages, translated by the market's catalog
                        templates[(market.id, name)] = name
                        problems += lacking
                        continue
                    tried = " or ".join(f"{templates_dir}/{n}" for n in exc.wanted)
                    problems.append(pos.problem(loc, str(exc), f"add {tried}, or set 'untranslated: default' on "
                                                               f"market '{market.id}' in config.yaml"))
            try:
                subjects[(id(use), market.id)] = subject_for(use.subject, use.subjects, market, default_language)
            except MissingTranslation:
                problems.append(pos.problem((*at_use, "subject"), f"no {market.language} subject line for "
                                            f"market '{market.id}'", f"add subjects: {{{market.language}: \"...\"}}"
                                            f" to this channel, or set 'untranslated: default' on market "
                                            f"'{market.id}' in config.yaml"))
    problems += _vars_problems(campaign, mine, entries, known, default_language)
    campaign.bind_markets(mine, use_markets, items, templates, subjects)
    return problems


def _vars_problems(campaign: LoadedCampaign, mine: tuple[Market, ...],
                   entries: list[tuple[tuple[str | int, ...], ChannelUse, tuple[Market, ...]]],
                   known: set[str], default_language: str) -> list[Problem]:
    """Variant and theme `market_vars`: keys that are markets, names that are vars, and a translation of each
    text var for every market of another language than the store's (unless it says `untranslated: default`)."""
    pos, problems = campaign.positions, []
    owners: list[tuple[tuple[str | int, ...], str, Any, tuple[Market, ...]]] = [
        ((*at, "variants", j), f"variant '{v.name}'", v, use_in)
        for at, use, use_in in entries for j, v in enumerate(use.variants)]
    owners += [(("themes", t), f"theme '{theme.name}'", theme,
                tuple(m for m in mine if theme.markets is None or m.id in theme.markets))
               for t, theme in enumerate(campaign.model.themes)]
    for at, what, owner, owner_markets in owners:
        for key, values in owner.market_vars.items():
            if key not in known:
                problems.append(pos.problem((*at, "market_vars", key), f"'{key}' is not a market id, locale or "
                                            "language of config.yaml's markets", did_you_mean(key, known) or (
                                                "known: " + ", ".join(sorted(known)) if known else
                                                "declare markets under 'markets:' in config.yaml"), key=True))
            for name in values:
                if name not in owner.vars:
                    problems.append(pos.problem((*at, "market_vars", key, name), f"'{name}' is not one of the vars "
                                                f"of {what}", did_you_mean(name, owner.vars) or (
                                                    "its vars: " + ", ".join(owner.vars) if owner.vars else
                                                    "give it a value as written under 'vars:' first"), key=True))
        for market in owner_markets:
            for name in untranslated_vars(owner.vars, owner.market_vars, market, default_language):
                problems.append(pos.problem((*at, "vars", name), f"no {market.language} translation of var "
                                            f"'{name}' of {what} for market '{market.id}'",
                                            f"add market_vars: {{{market.language}: {{{name}: \"...\"}}}} beside "
                                            f"its vars, or set 'untranslated: default' on market '{market.id}' in "
                                            "config.yaml", key=True))
    return problems
