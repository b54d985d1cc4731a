"""A fan-out's templates rendered once, with holes where each recipient's values go.

In a campaign email only `subscriber`, `link` and `unsubscribe_url` differ between recipients, yet Jinja2 runs
the whole template again for each of them. When a template uses those names only as whole output expressions

    {{ subscriber.name }}   {{ subscriber['plan'] }}   {{ link(item, content='footer') }}   {{ unsubscribe_url }}

(the arguments of `link()` not depending on the recipient), `Slotted` renders it once per fan-out with markers
in their place and then, per recipient, evaluates only those expressions the way Jinja2's compiled code does
(the sandbox's `getattr`/`getitem`, `escape` where the template is autoescaped, else `str`, so StrictUndefined
still raises) and joins the constant parts around them. Any other use of a per-recipient name (a filter,
condition or loop over it, `set`, `with`, includes, macros, blocks, `{% autoescape %}`...) or anything that
differs from one render to the next (`random`, `lipsum`) keeps the template on Jinja2's ordinary path.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import Template, nodes
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape

PER_RECIPIENT = frozenset({"subscriber", "link", "unsubscribe_url"})
_SCOPES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport, nodes.Macro, nodes.CallBlock,
           nodes.FilterBlock, nodes.AssignBlock, nodes.Block, nodes.EvalContextModifier, nodes.Scope,
           nodes.OverlayScope, nodes.ExtensionAttribute, nodes.ContextReference, nodes.DerivedContextReference,
           nodes.InternalName, nodes.ImportedName)
"""Nodes after which output may be captured, filtered, re-escaped or read from elsewhere: never slotted."""


@dataclass(frozen=True)
class Calls:
    """The distinct `link()` calls of a fan-out's templates (shared by its subject, HTML and text)."""

    args: list[tuple[tuple[Any, ...], dict[str, Any]]]

    def index(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
        for i, known in enumerate(self.args):
            if known == (args, kwargs):
                return i
        self.args.append((args, kwargs))
        return len(self.args) - 1


class Recipient:
    """What one recipient's slots are filled from; each distinct link is made once, in first-use order."""

    __slots__ = ("_calls", "_link", "_urls", "subscriber", "unsubscribe_url")

    def __init__(self, subscriber: dict[str, Any], link: Callable[..., str], unsubscribe_url: str,
                 calls: Calls) -> None:
        self.subscriber, self.unsubscribe_url, self._link, self._calls = subscriber, unsubscribe_url, link, calls
        self._urls: dict[int, str] = {}

    def url(self, call: int) -> str:
        found = self._urls.get(call)
        if found is None:
            args, kwargs = self._calls.args[call]
            found = self._urls[call] = self._link(*args, **kwargs)
        return found


class _Marks:
    """Stand-ins for the per-recipient names during the one render; each use leaves a numbered marker."""

    def __init__(self, calls: Calls) -> None:
        self.nonce = secrets.token_hex(8)
        self.slots: list[tuple[str, Any]] = []
        self.calls = calls

    def mark(self, kind: str, value: Any) -> str:
        self.slots.append((kind, value))
        return f"\x00{self.nonce}:{len(self.slots) - 1}\x00"

    def link(self, *args: Any, **kwargs: Any) -> str:
        return self.mark("link", self.calls.index(args, kwargs))


class _Subscriber:
    """`subscriber` during the one render: `subscriber.x` and `subscriber['x']` leave markers."""

    def __init__(self, marks: _Marks) -> None:
        self._marks = marks

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._marks.mark("attr", name)

    def __getitem__(self, key: Any) -> str:
        return self._marks.mark("item", key)


class Slotted:
    """One template, rendered once for a fan-out; `render` fills in a recipient."""

    def __init__(self, parts: list[str], slots: list[tuple[str, Any]], env: SandboxedEnvironment,
                 autoescape: bool) -> None:
        self.parts, self.slots, self.env = parts, slots, env
        self.convert: Callable[[Any], str] = escape if autoescape else str

    @classmethod
    def prepare(cls, template: Template, source: str, context: dict[str, Any], calls: Calls) -> Slotted | None:
        """The slotted form of `template` (whose source is `source`) for `context` without the per-recipient
        names, or None when the template must keep rendering through Jinja2 for each recipient."""
        env = template.environment
        if not isinstance(env, SandboxedEnvironment) or env.finalize is not None or env.is_async:
            return None
        if not _slottable(env.parse(source)):
            return None
        marks = _Marks(calls)
        try:
            output = template.render({**context, "subscriber": _Subscriber(marks), "link": marks.link,
                                      "unsubscribe_url": marks.mark("url", None)})
        except Exception:  # the ordinary path raises it again, for each recipient, as before
            return None
        pieces = re.split(f"\x00{marks.nonce}:(\\d+)\x00", output)
        if any("\x00" in piece for piece in pieces[::2]):
            return None  # a marker did not come out whole
        slots = [marks.slots[int(i)] for i in pieces[1::2]]
        return cls(pieces[::2], slots, env, bool(nodes.EvalContext(env, template.name).autoescape))

    def render(self, recipient: Recipient) -> str:
        """The template's output for `recipient` (as Jinja2 would render it; raises as Jinja2 would)."""
        env, convert, parts = self.env, self.convert, self.parts
        out = [parts[0]]
        for (kind, value), part in zip(self.slots, parts[1:], strict=True):
            if kind == "attr":
                filled = env.getattr(recipient.subscriber, value)
            elif kind == "item":
                filled = env.getitem(recipient.subscriber, value)
            elif kind == "link":
                filled = recipient.url(value)
            else:
                filled = recipient.unsubscribe_url
            out.append(convert(filled))
            out.append(part)
        return "".join(out)


def _slottable(tree: nodes.Template) -> bool:
    """True when every per-recipient name is a whole output expression of a supported form."""
    if any(True for _ in tree.find_all(_SCOPES)):
        return False
    if any(f.name == "random" for f in tree.find_all(nodes.Filter)):
        return False
    allowed: set[int] = set()
    for output in tree.find_all(nodes.Output):
        for child in output.nodes:
            name = _slot_name(child)
            if name is not None:
                allowed.add(id(name))
    for name in tree.find_all(nodes.Name):
        if name.name == "lipsum" or (name.name in PER_RECIPIENT and id(name) not in allowed):
            return False
    return True


def _slot_name(node: nodes.Node) -> nodes.Name | None:
    """The per-recipient `Name` heading a supported output expression, else None."""
    if isinstance(node, nodes.Name) and node.name == "unsubscribe_url" and node.ctx == "load":
        return node
    if isinstance(node, (nodes.Getattr, nodes.Getitem)) and isinstance(node.node, nodes.Name) \
            and node.node.name == "subscriber" and node.node.ctx == "load" and node.ctx == "load":
        if isinstance(node, nodes.Getattr):
            return node.node if not node.attr.startswith("_") else None
        return node.node if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, (str, int)) else None
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == "link" \
            and node.node.ctx == "load":
        return node.node
    return None
