"""The fast path of loading YAML with positions: libyaml's C parser and composer (through PyYAML), then plain data.

libyaml gives every node its start mark (line, column), which is all `Positions` needs, at a small fraction of
the cost of ruamel's round-trip loader (a catalog of thousands of items is megabytes of YAML). Scalars are
resolved with the YAML 1.2 core schema that ruamel applies (`on`, `no` and `12:30` stay strings, `0o17` and
`1e3` are numbers), so the data is the same as before.

Anything this path is not sure to read exactly as ruamel does (a syntax error, a duplicate key, an alias loop,
too many values, an impossible date, an unusual tag, a mapping as a key) raises `NotPlain`: the caller then
reads the file with ruamel, whose messages and positions are the ones users see. Valid files, the common case,
never take the slow path.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import date, datetime
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Loc = tuple[str | int, ...]
Mark = tuple[int, int]

_BASE: Any = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


class _Loader(_BASE):  # type: ignore[misc,valid-type]
    """libyaml's parser and composer with the YAML 1.2 core schema's implicit tags (those of ruamel)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        """PyYAML's `resolve` without path resolvers (none are used): called for every node."""
        if kind is ScalarNode:
            if implicit[0]:
                for tag, regexp in self.yaml_implicit_resolvers.get(value[:1], ()):
                    if regexp.match(value):
                        return str(tag)
            return f"{_T}str"
        return f"{_T}seq" if kind is SequenceNode else f"{_T}map"


_Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("float", r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", "-+0123456789."),
    ("int", r"""^(?:[-+]?0b[0-1_]+
                |[-+]?0o?[0-7_]+
                |[-+]?[0-9_]+
                |[-+]?0x[0-9a-fA-F_]+)$""", "-+0123456789"),
    ("merge", r"^(?:<<)$", "<"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("timestamp", r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
                      |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
                      (?:[Tt]|[ \t]+)[0-9][0-9]?
                      :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
                      (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", "0123456789"),
    ("value", r"^(?:=)$", "="),  # ruamel keeps it as a tagged value: the slow path decides
):
    _Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern, re.X), list(_first))

_T = "tag:yaml.org,2002:"
_YAML11_BREAKS = re.compile("[\x85\u2028\u2029]")
"""Line breaks to libyaml (YAML 1.1), ordinary characters to ruamel (1.2): lines would be counted differently."""
_TRUE_FALSE = {"true": True, "false": False}
_TIMESTAMPS = yaml.constructor.SafeConstructor()


class NotPlain(Exception):
    """This file needs ruamel's reading (its problems are explained there)."""


def compose_plain(text: str, max_nodes: int, *, positions: bool = True
                  ) -> tuple[Any, dict[Loc, Mark], dict[Loc, Mark]]:
    """(data, key positions, value positions) of one YAML document; 1-based (line, column). Without
    `positions`, both position maps are empty."""
    if _YAML11_BREAKS.search(text):
        raise NotPlain("a line break of YAML 1.1 only")
    loader = _Loader(text)
    try:
        return _from_events(loader, max_nodes, positions)
    except _UseNodes:
        pass
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        raise NotPlain(str(exc)) from None
    finally:
        loader.dispose()
    return _from_nodes(text, max_nodes)


class _UseNodes(Exception):
    """The document has aliases or merge keys: compose its nodes (slower) to expand them."""


def _from_events(loader: Any, max_nodes: int, positions: bool) -> tuple[Any, dict[Loc, Mark], dict[Loc, Mark]]:
    """Plain data straight from the parser's events, without composing nodes (most documents: no aliases).

    The loop runs once per event of a file of megabytes: it keeps to local names and does for a plain string
    (most scalars) no more than the lookup of the resolvers for its first character."""
    keys: dict[Loc, Mark] = {}
    values: dict[Loc, Mark] = {}
    get = loader.get_event
    get()  # stream start
    event = get()
    if type(event) is StreamEndEvent:
        return None, keys, values
    resolvers = _Loader.yaml_implicit_resolvers
    str_tag, merge_tag, plain_tags = f"{_T}str", f"{_T}merge", (None, "!")
    ends = (MappingEndEvent, SequenceEndEvent)
    root: Any = None
    # the innermost open container: the container, its loc, the key awaiting its value (None: a key is next),
    # and for a mapping the keys seen (raw); `stack` holds the outer ones
    container: Any = None
    loc: Loc = ()
    key: Any = None
    seen: set[Any] | None = None
    stack: list[tuple[Any, Loc, Any, set[Any] | None]] = []
    count = 0
    while True:
        event = get()
        kind = type(event)
        if kind in ends:
            container, loc, key, seen = stack.pop()
            continue
        if kind is DocumentEndEvent:
            break
        if kind is ScalarEvent:
            if event.anchor is not None:
                raise _UseNodes
            text = event.value
            tag = event.tag
            if tag in plain_tags:
                tag = str_tag
                if event.tag is None and event.implicit[0]:
                    for candidate, regexp in resolvers.get(text[:1], ()):
                        if regexp.match(text):
                            tag = str(candidate)
                            break
            else:
                tag = str(tag)
            if seen is not None and key is None:  # a key of the open mapping
                if tag == merge_tag:
                    raise _UseNodes
                raw = text if tag == str_tag else _scalar(ScalarNode(tag, text))
                if raw in seen:
                    raise NotPlain("duplicate key")
                seen.add(raw)
                key = raw if type(raw) is str else str(raw)
                if positions:
                    keys[(*loc, key)] = (event.start_mark.line + 1, event.start_mark.column + 1)
                continue
            value: Any = text if tag == str_tag else _scalar(ScalarNode(tag, text))
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if event.anchor is not None:
                raise _UseNodes
            if seen is not None and key is None:
                raise NotPlain("a list or mapping as a key")
            if kind is MappingStartEvent:
                if event.tag not in (None, "!", f"{_T}map"):
                    raise NotPlain(f"tag {event.tag}")
                value = {}
            else:
                if event.tag not in (None, "!", f"{_T}seq"):
                    raise NotPlain(f"tag {event.tag}")
                value = []
        elif kind is AliasEvent:
            raise _UseNodes
        else:
            raise NotPlain(f"unexpected {kind.__name__}")
        count += 1
        if count > max_nodes:
            raise NotPlain("too many values")
        if container is None:
            if stack:  # cannot be: only the root has no container
                raise NotPlain("unexpected structure")
            root, child = value, ()
        elif seen is not None:
            child = (*loc, key)
            container[key] = value
            key = None
        else:
            child = (*loc, len(container))
            container.append(value)
        if positions and container is not None:
            values[child] = (event.start_mark.line + 1, event.start_mark.column + 1)
        if kind is not ScalarEvent:
            stack.append((container, loc, key, seen))
            container, loc, key, seen = value, child, None, (set() if kind is MappingStartEvent else None)
    if type(get()) is not StreamEndEvent:
        raise NotPlain("more than one document")
    return root, keys, values


def _tag_of(event: ScalarEvent) -> str:
    tag = event.tag
    if tag is None:
        if event.implicit[0]:
            value = event.value
            for tag, regexp in _Loader.yaml_implicit_resolvers.get(value[:1], ()):
                if regexp.match(value):
                    return str(tag)
        return f"{_T}str"
    return f"{_T}str" if tag == "!" else str(tag)


def _value(tag: str, value: str) -> Any:
    return value if tag == f"{_T}str" else _scalar(ScalarNode(tag, value))


def _from_nodes(text: str, max_nodes: int) -> tuple[Any, dict[Loc, Mark], dict[Loc, Mark]]:
    """Plain data from composed nodes, expanding aliases and merge keys."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        raise NotPlain(str(exc)) from None
    finally:
        loader.dispose()
    plain = _Plain(max_nodes)
    try:
        data = None if node is None else plain.convert(node, ())
    except RecursionError:
        raise NotPlain("nested too deeply") from None
    return data, plain.keys, plain.values


def _at(node: Node) -> Mark:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Plain:
    """Composed nodes to plain data (dicts, lists, str, int, float, bool, None, dates), recording positions."""

    def __init__(self, max_nodes: int) -> None:
        self.max_nodes = max_nodes
        self.count = 0
        self.open: set[int] = set()
        self.keys: dict[Loc, Mark] = {}
        self.values: dict[Loc, Mark] = {}

    def convert(self, node: Node, loc: Loc) -> Any:
        self.count += 1
        if type(node) is ScalarNode:
            return _scalar(node)
        if id(node) in self.open or self.count > self.max_nodes:
            raise NotPlain("alias loop or too many values")
        self.open.add(id(node))
        try:
            if type(node) is MappingNode:
                return self._map(node, loc)
            if type(node) is SequenceNode and node.tag == f"{_T}seq":
                return self._seq(node, loc)
            raise NotPlain(f"tag {node.tag}")
        finally:
            self.open.discard(id(node))

    def _map(self, node: MappingNode, loc: Loc) -> dict[str, Any]:
        if node.tag != f"{_T}map":
            raise NotPlain(f"tag {node.tag}")
        out: dict[str, Any] = {}
        merged: list[tuple[Node, Node]] = []
        seen: set[Any] = set()
        keys, values = self.keys, self.values
        for key_node, value_node in node.value:
            if key_node.tag == f"{_T}merge" and type(key_node) is ScalarNode:
                merged += self._merged(value_node)
                continue
            raw = _raw_key(key_node)
            if raw in seen:  # as ruamel compares keys: 1, 1.0 and true are the same key
                raise NotPlain("duplicate key")
            seen.add(raw)
            key = raw if isinstance(raw, str) else str(raw)
            child = (*loc, key)
            keys[child], values[child] = _at(key_node), _at(value_node)
            out[key] = self.convert(value_node, child)
        for key_node, value_node in merged:  # explicit keys win, then the first merged mapping that has the key
            key = _key(key_node)
            if key not in out:
                child = (*loc, key)
                keys[child] = values[child] = _at(node)
                out[key] = self.convert(value_node, child)
        return out

    def _merged(self, value: Node) -> list[tuple[Node, Node]]:
        """The pairs `<<: *name` (or `<<: [*a, *b]`) brings in, in order of precedence."""
        sources = value.value if type(value) is SequenceNode else [value]
        pairs: list[tuple[Node, Node]] = []
        for source in sources:
            if type(source) is not MappingNode or id(source) in self.open:
                raise NotPlain("bad merge")
            self.open.add(id(source))
            try:
                nested: list[tuple[Node, Node]] = []
                for key_node, value_node in source.value:
                    if key_node.tag == f"{_T}merge" and type(key_node) is ScalarNode:
                        nested += self._merged(value_node)
                    else:
                        pairs.append((key_node, value_node))
                pairs += nested  # a merged mapping's own keys win over what it merges in itself
            finally:
                self.open.discard(id(source))
        return pairs

    def _seq(self, node: SequenceNode, loc: Loc) -> list[Any]:
        out = []
        values = self.values
        for index, item in enumerate(node.value):
            child = (*loc, index)
            values[child] = _at(item)
            out.append(self.convert(item, child))
        return out


def _raw_key(node: Node) -> Any:
    if type(node) is not ScalarNode:
        raise NotPlain("a list or mapping as a key")
    return _scalar(node)


def _key(node: Node) -> str:
    key = _raw_key(node)
    return key if isinstance(key, str) else str(key)


def _scalar(node: ScalarNode) -> Any:
    tag, value = node.tag, node.value
    if tag == f"{_T}str":
        return value
    try:
        if tag == f"{_T}int":
            return _int(value)
        if tag == f"{_T}float":
            return _float(value)
        if tag == f"{_T}null":
            return None
        if tag == f"{_T}bool":
            return _TRUE_FALSE[value.lower()]
        if tag == f"{_T}timestamp":
            found: date | datetime = _TIMESTAMPS.construct_yaml_timestamp(node)
            return found
        if tag == f"{_T}binary":
            return base64.decodebytes(value.encode("ascii"))
    except (ValueError, KeyError, OverflowError, TypeError, binascii.Error, UnicodeEncodeError) as exc:
        raise NotPlain(f"bad {tag} value") from exc
    raise NotPlain(f"tag {tag}")


def _int(text: str) -> int:
    """A YAML 1.2 integer as ruamel reads it: '0o17', '0x1F', '0b101', '1_000', '017' (decimal)."""
    digits = text.replace("_", "")
    sign = -1 if digits[:1] == "-" else 1
    digits = digits.lstrip("+-")
    for prefix, base in (("0b", 2), ("0x", 16), ("0o", 8)):
        if digits.startswith(prefix):
            return sign * int(digits[2:], base)
    return sign * int(digits)


def _float(text: str) -> float:
    digits = text.replace("_", "").lower()
    sign = -1.0 if digits[:1] == "-" else 1.0
    digits = digits.lstrip("+-")
    if digits == ".inf":
        return sign * float("inf")
    if digits == ".nan":
        return float("nan")
    return sign * float(digits)
