"""YAML files loaded with their positions, so every validation error can name `file:line:column`.

`load_yaml` returns plain Python data plus a `Positions` index from a key path
(``("channels", 1, "template")``) to the 1-based line and column where it was written.
`problems_from_validation` turns a pydantic `ValidationError` into `Problem`s at those positions,
with a "did you mean" hint for unknown keys.
"""

from __future__ import annotations

import difflib
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.reader import ReaderError

from drainage import yaml_cache
from drainage.errors import Problem
from drainage.yaml_fast import NotPlain, compose_plain

Loc = tuple[str | int, ...]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Invalid(ValueError):
    """A validation error that knows more than its message; raise it from a pydantic validator.

    `hint` is printed in parentheses after the message; `loc` says where below the validated value the
    problem is (e.g. ``("items", 1, "id")`` from a campaign's model validator), so the report names that line.
    """

    def __init__(self, message: str, hint: str = "", loc: Loc = ()) -> None:
        super().__init__(message)
        self.hint = hint
        self.loc = tuple(loc)


@dataclass
class Positions:
    """Where each key path of one YAML document was written (1-based line, column)."""

    file: str
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    from_env: set[Loc] = field(default_factory=set)
    source: str | None = field(default=None, repr=False)
    """The text whose positions are read when first asked for (see `parse_yaml`)."""

    def resolve(self) -> None:
        """Read the positions of `source`, if not done yet."""
        if self.source is not None:
            _, keys, values = compose_plain(self.source, MAX_NODES)
            self.keys.update(keys)
            self.values.update(values)
            self.source = None

    def at(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """Position of `loc`, or of its nearest written ancestor."""
        self.resolve()
        loc = tuple(loc)
        while True:
            table = (self.keys, self.values) if key else (self.values, self.keys)
            for t in table:
                if loc in t:
                    return t[loc]
            if not loc:
                return (1, 1)
            loc = loc[:-1]

    def problem(self, loc: Loc, message: str, hint: str = "", *, key: bool = False) -> Problem:
        line, col = self.at(loc, key=key)
        return Problem(self.file, line, col, message, hint)


def display_path(path: Path, root: Path | None = None) -> str:
    """A path as the user should see it: relative to `root` (or the working directory) when inside it."""
    for base in (root, Path.cwd()):
        if base is None:
            continue
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path)


def load_yaml(path: Path, shown_as: str) -> tuple[Any, Positions, list[Problem]]:
    """Parse one YAML file; return (plain data, positions, problems). Never raises for bad input."""
    positions = Positions(shown_as)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, positions, [Problem(shown_as, 0, 0, "file not found")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, positions, [Problem(shown_as, 0, 0, f"cannot read file: {exc.__class__.__name__}")]
    return parse_yaml(text, positions)


def parse_yaml(text: str, positions: Positions) -> tuple[Any, Positions, list[Problem]]:
    """Parse YAML text (see `load_yaml`): libyaml's fast path, or ruamel's reading where that one is unsure
    (every file with a problem; see `drainage.yaml_fast`); a large file parsed before comes from
    `drainage.yaml_cache`. Positions of a file read on the fast path are read when first asked for."""
    known, data = yaml_cache.recall(text)
    if not known:
        try:
            data, _, _ = compose_plain(text, MAX_NODES, positions=False)
        except NotPlain:
            return _parse_exactly(text, positions)
        yaml_cache.remember(text, data)
    # the positions of a valid file are rarely needed (only for a problem found later): they are read again from
    # the text when first asked for, which costs far less memory than keeping them for every item of a catalog
    positions.source = text
    return data, positions, []


def _parse_exactly(text: str, positions: Positions) -> tuple[Any, Positions, list[Problem]]:
    """Parse YAML text with ruamel's round-trip loader, explaining every problem at its position."""
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    yaml.allow_duplicate_keys = False
    try:
        with warnings.catch_warnings():  # an anchor defined again is valid YAML 1.2: the later one counts
            warnings.simplefilter("ignore", ReusedAnchorWarning)
            node = yaml.load(text)
    except ReaderError as exc:  # a character YAML does not allow, such as NUL or another control character
        at = max(0, min(int(exc.position), len(text)))
        line, col = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        return None, positions, [Problem(positions.file, line, col,
                                         f"not valid YAML: character #x{code:04x} is not allowed in YAML files")]
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        message = _yaml_message(exc)
        return None, positions, [Problem(positions.file, line, col, message)]
    except RecursionError:
        return None, positions, [Problem(positions.file, 0, 0, _TOO_DEEP)]
    except (YAMLError, ValueError, TypeError, OverflowError) as exc:
        return None, positions, [Problem(positions.file, 0, 0, f"not valid YAML: {exc.__class__.__name__}")]
    except Exception as exc:  # the YAML library's own failure on odd input must not stop the other files
        line, col = _failed_at(exc)
        return None, positions, [Problem(
            positions.file, line, col, "cannot be read as YAML: the YAML library failed on it "
            f"({exc.__class__.__name__})", "simplify the YAML around this line (comments between a key and its "
            "value, unusual indentation) or quote the value")]
    try:
        return _Plain(positions).convert(node, ()), positions, []
    except _Unusable as exc:
        return None, positions, [Problem(positions.file, exc.line, exc.column, exc.message)]
    except RecursionError:
        return None, positions, [Problem(positions.file, 0, 0, _TOO_DEEP)]


def _failed_at(exc: BaseException) -> tuple[int, int]:
    """Where the YAML library was in the text when it failed: the deepest token or node it was handling."""
    found = (0, 0)
    tb = exc.__traceback__
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            mark = getattr(value, "start_mark", None)
            if mark is not None and isinstance(getattr(mark, "line", None), int):
                found = (mark.line + 1, mark.column + 1)
        tb = tb.tb_next
    return found


_TOO_DEEP = "not usable: lists and mappings are nested too deeply"


class _BadValue(ConstructorError):
    """A well-formed YAML value that cannot be what it says, such as the date 2026-02-30."""


class _Constructor(RoundTripConstructor):
    """ruamel's round-trip constructor, but an impossible date (2026-02-30) is an error at its position."""

    def construct_yaml_timestamp(self, node: Any, values: Any = None) -> Any:
        try:
            return super().construct_yaml_timestamp(node, values)
        except (ValueError, OverflowError) as exc:
            raise _BadValue(None, None, f"'{node.value}' is not a valid date or time: {exc}",
                            node.start_mark) from None


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_yaml_timestamp)


def _yaml_message(exc: MarkedYAMLError) -> str:
    problem = (exc.problem or "syntax error").strip()
    if isinstance(exc, _BadValue):
        return problem
    if problem.startswith("found duplicate key"):
        name = re.search(r'key "([^"]*)"', problem)
        return f"duplicate key '{name.group(1) if name else '?'}': each key may appear once per mapping"
    if "found character '\\t'" in problem:
        return "tab character used for indentation: YAML indents with spaces"
    context = (exc.context or "").strip()
    start, found = exc.context_mark, exc.problem_mark
    if context and start is not None and (found is None or start.line != found.line):
        context += f" that starts at line {start.line + 1}"
    return f"not valid YAML: {context + ', ' if context else ''}{problem}"


MAX_NODES = 100_000
"""Most values one file may hold once aliases (``*name``) are expanded: a few aliases must not blow up."""


class _Unusable(Exception):
    """Parsed, but not usable as data: an alias loop, or too many values once aliases are expanded."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


class _Plain:
    """Converts ruamel's round-trip nodes to plain data, recording positions on the way."""

    def __init__(self, positions: Positions) -> None:
        self.positions = positions
        self.count = 0
        self.open: set[int] = set()  # containers being converted: meeting one again is an alias loop

    def convert(self, node: Any, loc: Loc) -> Any:
        self.count += 1
        if isinstance(node, CommentedMap | CommentedSeq):
            line, column = _where(node)
            if id(node) in self.open:
                raise _Unusable(line, column, "an alias (*name) refers to a mapping or list that contains it")
            if self.count > MAX_NODES:
                raise _Unusable(line, column, f"more than {MAX_NODES} values once aliases (*name) are expanded")
            self.open.add(id(node))
            try:
                return self._map(node, loc) if isinstance(node, CommentedMap) else self._seq(node, loc)
            finally:
                self.open.discard(id(node))
        if isinstance(node, bool) or node is None:
            return node
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        if isinstance(node, str):
            return str(node)
        return node  # dates and datetimes stay as they are

    def _map(self, node: CommentedMap, loc: Loc) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key in node:
            child_loc = (*loc, str(key))
            written = (node.lc.data or {}).get(key)  # None for keys merged in with '<<: *name', and in !!omap
            if written:
                self.positions.keys[child_loc] = (written[0] + 1, written[1] + 1)
                self.positions.values[child_loc] = (written[2] + 1, written[3] + 1)
            else:
                self.positions.keys[child_loc] = self.positions.values[child_loc] = _where(node)
            out[str(key) if not isinstance(key, str) else key] = self.convert(node[key], child_loc)
        return out

    def _seq(self, node: CommentedSeq, loc: Loc) -> list[Any]:
        items = []
        for index, value in enumerate(node):
            written = (node.lc.data or {}).get(index)
            self.positions.values[(*loc, index)] = (written[0] + 1, written[1] + 1) if written else _where(node)
            items.append(self.convert(value, (*loc, index)))
        return items


def _where(node: CommentedMap | CommentedSeq) -> tuple[int, int]:
    """1-based line and column where a mapping or list starts."""
    return (node.lc.line or 0) + 1, (node.lc.col or 0) + 1


def interpolate_env(data: Any, positions: Positions, environ: Mapping[str, str] | None = None,
                    loc: Loc = ()) -> tuple[Any, list[Problem]]:
    """Replace `${VAR}` and `${VAR:-default}` in every string; a missing variable is a problem."""
    env = os.environ if environ is None else environ
    problems: list[Problem] = []
    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            out[k], p = interpolate_env(v, positions, env, (*loc, k))
            problems += p
        return out, problems
    if isinstance(data, list):
        items = []
        for i, v in enumerate(data):
            value, p = interpolate_env(v, positions, env, (*loc, i))
            items.append(value)
            problems += p
        return items, problems
    if not isinstance(data, str) or "${" not in data:
        return data, problems

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(positions.problem(
            loc, f"environment variable {name} is not set",
            f"export {name}=... before running, or write ${{{name}:-default}}"))
        return ""

    positions.from_env.add(loc)
    return _ENV_REF.sub(substitute, data), problems


def unforeseen(shown_as: str, exc: Exception) -> Problem:
    """A file whose content made checking it fail in a way no check foresaw (the other files are still checked)."""
    return Problem(shown_as, 1, 1, f"cannot be checked: {exc.__class__.__name__}: {exc}"[:300],
                   "simplify this file's unusual values; if it looks right, report this as a bug in drainage")


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like `word`, or None when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A 'did you mean' hint, or '' when nothing is close."""
    close = closest(word, choices)
    return f"did you mean '{close}'?" if close else ""


def loc_text(loc: Sequence[str | int]) -> str:
    """`("channels", 1, "template")` -> `channels[1].template`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _fields_of(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names (and aliases) allowed at `loc` under `model`, for the 'did you mean' hint."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        info = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part), None)
        if info is None:
            return []
        current = _model_in(info.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def problems_from_validation(exc: ValidationError, positions: Positions, model: type[BaseModel],
                             prefix: Loc = ()) -> list[Problem]:
    """Turn a pydantic error into positioned `Problem`s; input values that came from env stay hidden."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        full = (*prefix, *loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            name = str(loc[-1])
            hint = did_you_mean(name, _fields_of(model, loc[:-1]))
            where = loc_text(full[:-1])
            message = f"unknown key '{name}'" + (f" in {where}" if where else "")
            problems.append(positions.problem(full, message, hint, key=True))
            continue
        if kind == "missing":
            where = loc_text(full[:-1])
            message = f"missing required key '{loc[-1]}'" + (f" in {where}" if where else "")
            problems.append(positions.problem(full[:-1], message, key=True))
            continue
        error = (err.get("ctx") or {}).get("error")
        hint = ""
        if isinstance(error, Invalid):
            full, hint = (*full, *error.loc), error.hint
        message = _clean_message(err["msg"])
        where = loc_text(full)
        problems.append(positions.problem(full, f"{where}: {message}" if where else message, hint))
    return problems


def _is_union_tag(part: Any) -> bool:
    """pydantic inserts union member names such as 'function-after[...]' into locations."""
    return isinstance(part, str) and (("[" in part and part.endswith("]")) or part in {"str", "int", "list[str]"})


def _clean_message(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg[:1].lower() + msg[1:] if msg else msg
