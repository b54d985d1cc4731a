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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from drainage.errors import Problem

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

    def at(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """Position of `loc`, or of its nearest written ancestor."""
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
    """Parse YAML text (see `load_yaml`)."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        node = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        message = _yaml_message(exc)
        return None, positions, [Problem(positions.file, line, col, message)]
    except (YAMLError, ValueError, TypeError, RecursionError, OverflowError) as exc:
        return None, positions, [Problem(positions.file, 0, 0, f"not valid YAML: {exc.__class__.__name__}")]
    return _plain(node, (), positions), positions, []


def _yaml_message(exc: MarkedYAMLError) -> str:
    problem = (exc.problem or "syntax error").strip()
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


def _plain(node: Any, loc: Loc, positions: Positions) -> Any:
    """Convert ruamel's round-trip nodes to plain data, recording positions on the way."""
    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for key in node:
            child_loc = (*loc, str(key))
            kl, kc = node.lc.key(key)
            vl, vc = node.lc.value(key)
            positions.keys[child_loc] = (kl + 1, kc + 1)
            positions.values[child_loc] = (vl + 1, vc + 1)
            out[str(key) if not isinstance(key, str) else key] = _plain(node[key], child_loc, positions)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            line, col = node.lc.item(index)
            positions.values[(*loc, index)] = (line + 1, col + 1)
            items.append(_plain(value, (*loc, index), positions))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node  # dates and datetimes stay as they are


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


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A 'did you mean' hint, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


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
