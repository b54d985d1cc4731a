"""The fast YAML path (libyaml) reads every document it accepts exactly as ruamel's round-trip loader does:
the same data and the same position of every key and value; what it does not accept goes to ruamel."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from ruamel.yaml.comments import TaggedScalar

from drainage.sources import MAX_NODES, Positions, _parse_exactly, parse_yaml
from drainage.yaml_fast import NotPlain, compose_plain
from tests.test_validate_fuzz import EXAMPLE, documents

pytestmark = pytest.mark.pure  # no database: CI's PostgreSQL pass skips it


def comparable(value: Any) -> Any:
    """Plain data with NaN made comparable, ruamel's TimeStamp (a datetime subclass) as a datetime, and ruamel's
    TaggedScalar (a YAML 1.1 tag such as `=`'s 'value', which has no equality of its own) as its tag and text."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, datetime):
        return ("datetime", value.isoformat())
    if isinstance(value, date):
        return ("date", value.isoformat())
    if isinstance(value, TaggedScalar):
        return ("tagged", str(value.tag), value.value)
    return value


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=documents)
@example(text="a: &x {b: 1, c: 2}\nd:\n  <<: [*x, {b: 5, e: 6}]\n  c: 3\n")
@example(text="a: 0o17\nb: 017\nc: 1_000\nd: 1e3\ne: -.inf\nf: .NaN\ng: 0x1F\nh: 0b101\ni: yes\nj: 12:30\nk: ~\n")
@example(text="1: x\ntrue: y\n1.50: z\nnull: n\n2026-01-01: d\n")
@example(text="a: &x 1\nb: *x\nc: [&y {d: 2}, *y]\n")
@example(text="--- a\n--- b\n")
@example(text="a: 2026-01-01 10:00:00+02:00\nb: 2026-01-01\nc: !!binary aGk=\nd: !!float 1\n")
@example(text=EXAMPLE)
@example(text="=")  # a YAML 1.1 value tag: both read it as a TaggedScalar
def test_fast_path_reads_what_ruamel_reads(text: str) -> None:
    fast, fast_positions, fast_problems = parse_yaml(text, Positions("f.yaml"))
    exact, exact_positions, exact_problems = _parse_exactly(text, Positions("f.yaml"))
    assert fast_problems == exact_problems
    if fast_problems:
        return
    assert comparable(fast) == comparable(exact)
    fast_positions.resolve()  # read when first asked for
    assert fast_positions.keys == exact_positions.keys
    assert fast_positions.values == exact_positions.values


@pytest.mark.parametrize("text", [
    "a: 1\na: 2\n",  # duplicate key
    "a: [1,\n  b: 2\n",  # syntax error
    "&m {a: *m}\n",  # alias loop
    "a: 2026-02-30\n",  # impossible date
    "a: !custom x\n",  # a tag ruamel keeps as a tagged value
    "? {a: 1}\n: b\n",  # a mapping as a key
    "a: &x 1\nb: &x 2\n",  # an anchor defined twice (libyaml refuses, ruamel accepts)
])
def test_what_the_fast_path_is_unsure_of_goes_to_ruamel(text: str) -> None:
    with pytest.raises(NotPlain):
        compose_plain(text, MAX_NODES)
    assert parse_yaml(text, Positions("f.yaml"))[2] == _parse_exactly(text, Positions("f.yaml"))[2]
