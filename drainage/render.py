"""Rendering posts from Jinja2 templates in a sandbox, with tracked links, prices and hashtags.

Templates run in an `ImmutableSandboxedEnvironment` (a template cannot reach Python internals, nor modify the
lists and dicts it is given, which are shared by every post of a campaign) with `StrictUndefined` (a misspelt
variable is an error, not an empty string). Only HTML templates (`*.html`, `*.html.j2`) are
autoescaped. Template errors become `Problem`s at the template's own `file:line`.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.numbers import format_currency
from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateRuntimeError,
    TemplateSyntaxError,
    pass_context,
)
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from drainage.errors import Problem
from drainage.links import LinkError, TrackedLink, add_utm, resolve_target, tracked_link
from drainage.sources import closest, did_you_mean

HTML_SUFFIXES = (".html", ".htm", ".html.j2", ".htm.j2")
_URL = re.compile(r"https?://\S+")
_UTM_NAMES = frozenset({"source", "medium", "campaign", "term", "content", "id"})


class MissingValue(TemplateRuntimeError):
    """A template printed None (a missing value) where that is not allowed (`none_forbidden`)."""

    def __init__(self) -> None:
        super().__init__("a missing value (None) would be printed as 'None'")


_NONE_FORBIDDEN: ContextVar[bool] = ContextVar("none_forbidden", default=False)


@contextmanager
def none_forbidden() -> Iterator[None]:
    """Inside, a template that prints None raises `MissingValue` (feed entries often lack a field)."""
    token = _NONE_FORBIDDEN.set(True)
    try:
        yield
    finally:
        _NONE_FORBIDDEN.reset(token)


def _finalize(value: Any) -> Any:
    if value is None:
        raise MissingValue()
    return value


def is_html(name: str) -> bool:
    return name.lower().endswith(HTML_SUFFIXES)


def format_price(value: Any, currency: str | None = None, locale: str | None = None, *,
                 default_currency: str = "USD", default_locale: str = "en_US") -> str:
    """`item | price` or `19.9 | price('EUR', 'de_DE')` -> '19,90 €'."""
    if isinstance(value, Mapping):
        currency = currency or value.get("currency")
        value = value.get("price")
    if value is None:
        return ""
    try:
        return _currency(value, currency or default_currency, locale or default_locale)
    except (ArithmeticError, ValueError, TypeError) as exc:  # e.g. decimal.InvalidOperation for 1e308
        raise ValueError(f"cannot format {value!r} as a price ({exc.__class__.__name__})") from None


@lru_cache(maxsize=16384)
def _currency(value: Any, currency: str, locale: str) -> str:
    """Babel's formatting (tens of µs): remembered for as many prices as a campaign of a catalog has, since
    `validate` renders each channel's posts of all its items before the next channel's."""
    return format_currency(value, currency, locale=locale)


def hashtags(tags: Any, limit: int | None = None) -> str:
    """['winter sale', 'gifts'] -> '#WinterSale #Gifts' (an item mapping uses its tags)."""
    if isinstance(tags, Mapping):
        tags = tags.get("tags", [])
    if isinstance(tags, str):
        tags = [tags]
    tags = tuple(tags)[: limit or None]
    if all(type(tag) is str for tag in tags):  # the same tags come back on many items
        return _hashtags(tags)
    return _hashtags.__wrapped__(tags)


@lru_cache(maxsize=4096)
def _hashtags(tags: tuple[Any, ...]) -> str:
    out = []
    for tag in tags:
        words = re.findall(r"\w+", str(tag))
        if words:
            out.append("#" + "".join(w[:1].upper() + w[1:] for w in words))
    return " ".join(out)


def shorten(text: str, width: int, placeholder: str = "…",
            count: Callable[[str], int] = len) -> str:
    """Shorten `text` to `width` at a word boundary; URLs are never cut (kept whole or the text ends before)."""
    text = str(text)
    if count(text) <= width:
        return text
    tokens = re.split(r"(\s+)", text)
    out = ""
    for token in tokens:
        candidate = out + token
        if count(_ending(candidate, placeholder)) > width:
            break
        out = candidate
    return _ending(out, placeholder)


def _ending(kept: str, placeholder: str) -> str:
    """`kept` and the placeholder, spaced apart after a link: 'https://x/p…' would link to a page 'p…'."""
    kept = kept.rstrip()
    last_word = kept.rsplit(maxsplit=1)[-1] if kept else ""
    return f"{kept} {placeholder}" if placeholder and _URL.search(last_word) else kept + placeholder


def fit_text(text: str, width: int, count: Callable[[str], int] = len, placeholder: str = "…") -> str:
    """Shorten a whole post to `width`, keeping every link whole: prose before the links is cut first, then
    prose after them, then prose between them. Returns `text` unchanged if even its links alone are too long."""
    if count(text) <= width:
        return text
    links = [word for word in re.finditer(r"\S+", text) if _URL.search(word.group())]  # words with a link
    if not links:
        return shorten(text, width, placeholder, count)
    first, last = links[0].start(), links[-1].end()
    # keep the tail from the first link on; shorten the prose before it
    tail = text[first:].strip()
    room = width - count(tail) - 1
    if room >= count(placeholder):
        head = shorten(text[:first].strip(), room, placeholder, count)
        return f"{head} {tail}" if head else tail
    # drop that prose; keep the links (with the prose between them if it fits) and shorten the prose after them
    after = text[last:].strip()
    for kept in (text[first:last], " ".join(link.group() for link in links)):
        if count(kept) <= width:
            rest = shorten(after, width - count(kept) - 1, placeholder, count) if after else ""
            return f"{kept} {rest}" if rest and count(f"{kept} {rest}") <= width else kept
    return text


class InlineTemplateError(TemplateError):
    """A template written inside a campaign file (a subject line) failed; `error` is what it raised."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class LinkContext:
    """Everything `link()` needs to tag and track a link for one post."""

    public_url: str
    base_url: str
    allowed_hosts: list[str]
    campaign: str
    channel: str
    item: str
    variant: str
    utm: dict[str, str | None]
    recipient: str = ""
    made: list[TrackedLink] = field(default_factory=list)
    market: str = ""
    targets: dict[tuple[Any, ...], tuple[str, str]] | None = None
    """Tagged targets already resolved, shared by the link makers of one post's recipients (an email fan-out)."""

    def __call__(self, target: Any = None, **utm: str) -> str:
        if self.targets is None:
            item_key, tagged = self._tagged(target, utm)
        else:
            key = (*((target.get("key"), target.get("url")) if isinstance(target, Mapping) else (str(target),)),
                   *sorted(utm.items()))
            found = self.targets.get(key)
            if found is None:
                found = self.targets[key] = self._tagged(target, utm)
            item_key, tagged = found
        return self._made(tracked_link(self.public_url, tagged, self.campaign, self.channel, item_key, self.variant,
                                       self.recipient, self.market))

    def _made(self, link: TrackedLink) -> str:
        if link not in self.made:
            self.made.append(link)
        return link.url

    def _tagged(self, target: Any, utm: dict[str, str]) -> tuple[str, str]:
        """(item key, the absolute target with its UTM tags)."""
        item_key = self.item
        if target is None:
            raise LinkError("link() needs an item or a URL, e.g. link(item) or link('/collections/sale')")
        if type(target) is dict or isinstance(target, Mapping):  # an item's context is a dict: no ABC check
            item_key = str(target.get("key") or item_key)
            target = target.get("url")
        tags = self.utm
        if utm:
            unknown = [k for k in utm if k.removeprefix("utm_") not in _UTM_NAMES]
            if unknown:
                raise LinkError(f"link() got unknown argument '{unknown[0]}': "
                                "use source, medium, campaign, term, content or id")
            tags = {**tags, **{f"utm_{k.removeprefix('utm_')}": v for k, v in utm.items()}}
        return item_key, _tag(str(target), self.base_url, tuple(self.allowed_hosts), tags)


def _tag(target: str, base_url: str, allowed_hosts: tuple[str, ...], tags: dict[str, Any]) -> str:
    """The absolute target with its UTM tags (the same targets come back in many posts: resolved once)."""
    return add_utm(_resolved(target, base_url, allowed_hosts), tags)


@lru_cache(maxsize=65536)
def _resolved(target: str, base_url: str, allowed_hosts: tuple[str, ...]) -> str:
    return resolve_target(target, base_url, list(allowed_hosts))


def resolved_target(target: str, base_url: str, allowed_hosts: list[str]) -> str:
    """`resolve_target`, remembered: an item's link is resolved when its campaign is checked, then reused by every
    post of it."""
    return _resolved(target, base_url, tuple(allowed_hosts))


class Renderer:
    """A sandboxed Jinja2 environment over one templates folder."""

    def __init__(self, templates_dir: Path, *, currency: str = "USD", locale: str = "en_US") -> None:
        self.dir = templates_dir
        self.env = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader(str(templates_dir)),
            undefined=StrictUndefined,
            autoescape=lambda name: bool(name) and is_html(name),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,  # a reload (SIGHUP) builds a new Renderer; no stat() per render
            extensions=["jinja2.ext.i18n"],  # {% trans %} and _(): a market's catalog is passed with its posts
        )
        self.env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
        @pass_context
        def price(context: Context, value: Any, c: str | None = None, loc: str | None = None) -> str:
            store = context.get("store")  # a market's post formats in its market's locale and currency
            shown = store if isinstance(store, Mapping) else {}
            return format_price(value, c, loc, default_currency=shown.get("currency") or currency,
                                default_locale=shown.get("locale") or locale)

        self.env.filters["price"] = price
        self.env.filters["hashtags"] = hashtags
        self.env.filters["shorten"] = shorten
        # inside `none_forbidden`: the same templates, but printing None raises (an environment of its own, so
        # that the usual one keeps no finalize step, which the email fan-out's slot compiler relies on)
        self.strict_env = self.env.overlay(finalize=_finalize)
        # compiled once, per environment (a reload is a new Renderer): templates by name, inline ones by source
        self._templates: dict[tuple[bool, str], Template] = {}
        self._inline: dict[tuple[bool, str], Template] = {}

    def _env(self) -> ImmutableSandboxedEnvironment:
        return self.strict_env if _NONE_FORBIDDEN.get() else self.env

    def exists(self, name: str) -> bool:
        try:
            self.env.get_template(name)
        except TemplateNotFound:
            return False
        except TemplateError:
            return True
        return True

    def names(self) -> list[str]:
        return self.env.list_templates()

    def suggest(self, name: str) -> str:
        """'did you mean' for a missing template: a close name in the same folder, or the same name elsewhere.

        Whole paths are not compared: 'social/' and '.j2' alone would make every social template look close.
        """
        folder, _, base = name.rpartition("/")
        names = self.names()
        siblings = {n.rpartition("/")[2]: n for n in names if n.rpartition("/")[0] == folder}
        close = closest(base, siblings)
        if close is not None:
            return f"did you mean '{siblings[close]}'?"
        return did_you_mean(name, [n for n in names if n.rpartition("/")[2] == base])

    def render(self, name: str, context: dict[str, Any]) -> str:
        """Render template `name`; raises jinja2/LinkError errors (see `template_problem`)."""
        key = (_NONE_FORBIDDEN.get(), name)
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = _flat(self._env().get_template(name))
        return template.render(context).strip()

    def render_string(self, source: str, context: dict[str, Any]) -> str:
        """Render a template written inline (a subject line); its errors come as `InlineTemplateError`."""
        try:
            key = (_NONE_FORBIDDEN.get(), source)
            template = self._inline.get(key)
            if template is None:
                template = self._inline[key] = _flat(self._env().from_string(source))
            return template.render(context).strip()
        except (TemplateError, ValueError, TypeError, ArithmeticError, LookupError) as exc:
            raise InlineTemplateError(exc) from exc

    def template_problem(self, exc: Exception, name: str, where: str, context_names: list[str],
                         inline: str | None = None, missing: Iterable[str] = ()) -> Problem:
        """Explain a rendering error at the template's file:line, saying which post it was rendering.

        For an `inline` template (its source, e.g. a subject line) the caller knows where it was written.
        `missing` names the values that are None ('entry.price'), to say which one a `MissingValue` printed.
        """
        shown = f"{self.dir.name}/{name}"
        line, file = self._template_line(exc, shown)
        if isinstance(exc, TemplateNotFound):  # the campaign's own template, or one it includes or extends
            missing = exc.name or name
            hint = self.suggest(missing)
            return Problem(file if line else where, line, 0, f"no such template '{self.dir.name}/{missing}'", hint)
        if isinstance(exc, TemplateSyntaxError):
            file = f"{self.dir.name}/{exc.name}" if exc.name else shown
            message = (exc.message or "syntax error").rstrip(".")
            unknown = re.match(r"No (filter|test) named '(\w+)'", message)
            hint = ""
            if unknown:
                known = self.env.filters if unknown.group(1) == "filter" else self.env.tests
                hint = did_you_mean(unknown.group(2), known)
            return Problem(file, exc.lineno or 0, 0, f"template syntax error: {message}", hint)
        message = str(exc).rstrip(".")
        if isinstance(exc, MissingValue):
            return self._missing_problem(file, line, where, inline, list(missing))
        if isinstance(exc, SecurityError):
            message = f"not allowed in a template: {message}"
        hint = ""
        undefined = re.search(r"has no attribute '(\w+)'|'(\w+)' is undefined", message)
        if undefined:
            hint = did_you_mean(undefined.group(1) or undefined.group(2), context_names)
            source = inline if inline is not None else self._source_line(file, line)
            expression = undefined.group(1) and _attribute_expression(source, undefined.group(1))
            if expression:  # "'dict object' has no attribute 'prize'" -> "'item.prize' is undefined"
                message = f"'{expression}' is undefined"
        return Problem(file, line, 0, f"{message} (while rendering {where})", hint)

    def _missing_problem(self, file: str, line: int, where: str, inline: str | None, missing: list[str]) -> Problem:
        source = inline if inline is not None else self._source_line(file, line)
        printed = [e.strip() for e in re.findall(r"\{\{-?(.+?)-?\}\}", source)]
        suspects = [e for e in printed if any(re.search(rf"(?<![\w.]){re.escape(m)}(?!\w)", e) for m in missing)]
        printed = suspects if len(suspects) == 1 else printed
        if len(printed) == 1:
            test = printed[0].split("|")[0].strip()
            return Problem(file, line, 0, f"'{printed[0]}' is missing here and would print 'None' (while rendering "
                           f"{where})", f"test it first, e.g. {{% if {test} %}}{{{{ {printed[0]} }}}}{{% endif %}}")
        return Problem(file, line, 0, f"a missing value would print 'None' (while rendering {where})",
                       "test the fields an entry may lack first, e.g. {% if entry.price %}...{% endif %}")

    def _source_line(self, file: str, line: int) -> str:
        """Line `line` of template `file` ('templates/social/x.j2'), or ''."""
        if not line or not file.startswith(f"{self.dir.name}/"):
            return ""
        try:
            lines = (self.dir / file[len(self.dir.name) + 1:]).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return ""
        return lines[line - 1] if line <= len(lines) else ""

    def _template_line(self, exc: Exception, shown: str) -> tuple[int, str]:
        # the loader names templates by its (possibly relative) search path: compare resolved paths
        root = self.dir.resolve()
        found = (0, shown)
        for frame, lineno in traceback.walk_tb(exc.__traceback__):
            filename = Path(frame.f_code.co_filename).resolve()
            if filename.is_relative_to(root):
                found = (lineno, f"{self.dir.name}/{filename.relative_to(root).as_posix()}")
        return found


def _flat(template: Template) -> Template:
    """`template` with its globals in one dict: Jinja keeps them as a ChainMap over the environment's, which every
    render walks twice (copying them into the context), a fifth of the time of a short post. The environment's
    globals never change after the Renderer is built, so the copy stays true."""
    template.globals = dict(template.globals)
    return template


def _attribute_expression(source: str, attribute: str) -> str:
    """`item.prize` when `source` reads an attribute `prize` that way (and only that way), else ''."""
    found = re.findall(rf"[A-Za-z_][\w.]*\.{attribute}\b", source)
    return found[0] if len(set(found)) == 1 else ""
