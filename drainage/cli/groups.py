"""The click group class of the app and of its sub-groups (`db`, `feeds`, `subscribers`): `--help` of any
command without pydantic.

typer coerces each option's value through a pydantic TypeAdapter that it builds the first time the option is
processed, even when the option was left out. A group's own options (its `--help`, the app's global
`--config`) are processed before the command's, so every `drainage <command> --help` would import pydantic and
build two adapters (half of its startup) only to find them absent. A `LeanGroup` builds typer's coercion for
its own options only when they are given; what a given option becomes is exactly what typer makes of it. If
typer's internals change, this does nothing, and `tests/test_startup.py` says so.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup


class _BuiltWhenGiven:
    """Stands in for typer's coercion of a group option until a value is given."""

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            return None  # what typer's coercion returns for an absent single-valued option
        param._runtime_param = None
        return param.get_runtime_param().coerce(value, param=param, ctx=ctx)


class LeanGroup(TyperGroup):
    """A typer group whose own options cost nothing when absent (see the module's docstring)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "_runtime_param", False) is None and hasattr(param, "get_runtime_param"):
                param._runtime_param = _BuiltWhenGiven()
        return params
