"""Gettext catalogs for templates: `{% trans %}` and `_()` messages translated per market from Babel `.po` files.

The layout is pybabel's: `locales/<locale or language>/LC_MESSAGES/messages.po` (`pybabel extract` over the
templates with Jinja2's extractor, `pybabel init` / `pybabel update` per language). drainage reads the `.po` files
themselves (no compile step); fuzzy and empty entries count as untranslated. A market's post renders with its
language's catalog; `validate` names every message of a template that the catalog lacks, at its `file:line`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from jinja2 import Environment, TemplateError, pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from drainage.markets import Market

CATALOG = Path("LC_MESSAGES") / "messages.po"


class Catalogs:
    """The catalogs under one folder, read once per language when first needed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._found: dict[str, tuple[Path, dict[str, Any]] | None] = {}

    def path_for(self, market: Market) -> Path:
        """Where `market`'s catalog is (or would be): its locale's folder, else its language's."""
        for tag in (market.locale.replace("-", "_"), market.language):
            path = self.folder / tag / CATALOG
            if path.is_file():
                return path
        return self.folder / market.language / CATALOG

    def messages(self, market: Market) -> dict[str, Any] | None:
        """msgid -> translation (a str, or a tuple of plural forms) of `market`'s catalog; None without one."""
        path = self.path_for(market)
        key = str(path)
        if key not in self._found:
            self._found[key] = (path, _read(path)) if path.is_file() else None
        found = self._found[key]
        return None if found is None else found[1]

    def functions(self, market: Market | None) -> dict[str, Callable[..., str]]:
        """`gettext`, `ngettext` and `_` for a market's post (empty: no market or no catalog: the template's own
        text is shown, as Jinja2's null translations do)."""
        messages = self.messages(market) if market is not None else None
        if messages is None:
            return {}

        @pass_context
        def gettext(context: Context, message: str, **variables: Any) -> str:
            found = messages.get(message)
            text = found if isinstance(found, str) and found else message
            return _format(context, text, variables)

        @pass_context
        def ngettext(context: Context, singular: str, plural: str, n: int, **variables: Any) -> str:
            found = messages.get(singular)
            forms = found if isinstance(found, tuple) and all(found) else (singular, plural)
            text = forms[0] if n == 1 or len(forms) == 1 else forms[min(1, len(forms) - 1)]
            return _format(context, text, {"num": n, **variables})

        return {"gettext": gettext, "ngettext": ngettext, "_": gettext}


def _read(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        catalog: Catalog = read_po(fh)
    out: dict[str, Any] = {}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        ids = message.id if isinstance(message.id, tuple | list) else (message.id,)
        strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
        if all(strings):
            out[str(ids[0])] = tuple(strings) if len(strings) > 1 or len(ids) > 1 else strings[0]
    return out


def _format(context: Context, text: str, variables: dict[str, Any]) -> str:
    if context.eval_ctx.autoescape:
        text = Markup(text)
    return text % variables if variables else text


def template_messages(env: Environment, name: str) -> list[tuple[int, str]] | None:
    """(line, msgid) of each translatable message in template `name`; None when it cannot be read or parsed."""
    try:
        source = env.loader.get_source(env, name)[0] if env.loader is not None else None  # type: ignore[union-attr]
        if source is None:
            return None
        found = []
        for line, _function, message in env.extract_translations(source):
            text = message if isinstance(message, str) else next((m for m in message if isinstance(m, str)), None)
            if text:
                found.append((line, text))
        return found
    except TemplateError:
        return None
