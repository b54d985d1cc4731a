"""Random campaign files never get a traceback out of `drainage validate`: it exits 0 (valid) or 2 (problems).

Three kinds of input: documents built from the real campaign keys with random values (so validation goes
deep: schedules, themes, links, rendering), arbitrary nested YAML data, and raw text (including the example
campaign with random text spliced in, which exercises the YAML error paths).
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from tests.conftest import REPO

pytestmark = pytest.mark.pure  # no database: CI's PostgreSQL pass skips it

CAMPAIGN_KEYS = ["id", "title", "status", "start", "end", "timezone", "utm", "items", "rotation", "seed",
                 "schedule", "channels", "themes", "misfire_grace", "on_unknown"]
NESTED_KEYS = ["name", "url", "price", "currency", "tags", "extra", "image", "discount_code", "description",
               "cron", "every", "at", "anchor", "channel", "template", "subject", "variants", "vars",
               "quiet_hours", "truncate", "from", "to", "templates", "campaign", "source", "medium", "content"]
CHANNELS = ["social-outbox", "forum-outbox", "newsletter-outbox", "social-outbx"]
TEMPLATES = ["social/gift.j2", "social/article.j2", "social/launch.j2", "forum/gift.j2", "email/gift.txt.j2",
             "social/nope.j2", "../config.yaml", ""]

words = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=20)  # YAML refuses control characters
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True), words,
    st.dates(), st.datetimes(),
    st.sampled_from(["0 9 * * *", "*/5 * * * *", "61 * * * *", "@daily", "30m", "1d", "0s", "1w2d", "22:00-08:00",
                     "12-24", "02-30", "Europe/Berlin", "Europe/Berln", "active", "draft", "random", "all",
                     "/products/x", "https://evil.example.org/", "https://shop.example.com/x?a=1#f",
                     "{{ item.name }}", "{{ item.nope }}", "{% if %}", "{{ ''.__class__ }}", "${HOME}"]),
)
keys = st.one_of(st.sampled_from(CAMPAIGN_KEYS + NESTED_KEYS), st.text(max_size=8), st.integers(0, 3))
data = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(keys, inner, max_size=5)), max_leaves=25)


def mostly(valid: st.SearchStrategy) -> st.SearchStrategy:
    """`valid` about 9 times in 10, random data otherwise: every field must pass for validation to go deep."""
    return st.integers(0, 9).flatmap(lambda n: data if n == 5 else valid)


# near-valid campaigns: the right shape, with fields now and then swapped for random data
items = st.fixed_dictionaries(
    {"name": mostly(st.text(min_size=1, max_size=15)),
     "url": mostly(st.sampled_from(["/products/scarf", "https://blog.example.com/a", "https://evil.example.org/",
                                    "", "mailto:x", "//shop.example.com/x"]))},
    optional={"id": mostly(st.sampled_from(["a", "a", "b"])), "price": mostly(st.floats(min_value=-1, max_value=1e30)),
              "tags": mostly(st.lists(words, max_size=3)), "discount_code": mostly(words),
              "description": mostly(words), "extra": st.dictionaries(words, data, max_size=3)})
schedule_entries = st.one_of(
    st.builds(dict, cron=st.sampled_from(["0 9 * * *", "*/15 * * * 1-5", "0 9 31 2 *", "@daily", "1 2 3"])),
    st.builds(dict, every=st.sampled_from(["30m", "1d", "1w", "59s", "1h30m", "99999999999w"])),
    st.builds(dict, at=st.datetimes()),
    st.dictionaries(st.sampled_from(["cron", "every", "at", "anchor"]), scalars, min_size=1, max_size=2))
channel_uses = st.fixed_dictionaries(
    {"channel": mostly(st.sampled_from(CHANNELS)), "template": mostly(st.sampled_from(TEMPLATES))},
    optional={"subject": mostly(st.sampled_from(["{{ item.name }}", "{{ item.nope }}", "{{ oops", "Hi"])),
              "truncate": st.booleans(),
              "variants": mostly(st.lists(st.fixed_dictionaries({"name": words}, optional={
                  "vars": st.dictionaries(st.sampled_from(["hook", "x"]), scalars, max_size=2),
                  "template": st.sampled_from(TEMPLATES)}), max_size=3)),
              "quiet_hours": mostly(st.lists(st.sampled_from(["22:00-08:00", "24:00-01:00", "9-5"]), max_size=2)),
              "schedule": mostly(st.lists(schedule_entries, max_size=2))})
themes = st.fixed_dictionaries(
    {"name": words, "from": mostly(st.one_of(st.dates(), st.sampled_from(["12-01", "02-29", "13-01"]))),
     "to": mostly(st.one_of(st.dates(), st.sampled_from(["12-26", "01-06"])))},
    optional={"vars": st.dictionaries(words, scalars, max_size=2),
              "templates": st.dictionaries(st.sampled_from(TEMPLATES), st.sampled_from(TEMPLATES), max_size=1)})
campaigns = st.fixed_dictionaries(
    {"title": mostly(words), "items": mostly(st.lists(items, min_size=1, max_size=3)),
     "schedule": mostly(st.lists(schedule_entries, min_size=1, max_size=3)),
     "channels": mostly(st.lists(channel_uses, min_size=1, max_size=3))},
    optional={"status": mostly(st.sampled_from(["active", "paused", "draft"])), "start": mostly(st.dates()),
              "end": mostly(st.datetimes()), "timezone": mostly(st.timezone_keys()),
              "rotation": mostly(st.sampled_from(["round-robin", "random", "all"])), "seed": data,
              "misfire_grace": mostly(st.sampled_from(["1h", "0m", "5 min"])), "id": mostly(words),
              "utm": mostly(st.dictionaries(st.sampled_from(["campaign", "source", "term", "campain"]), words)),
              "themes": mostly(st.lists(themes, max_size=2))},
)

EXAMPLE = (REPO / "campaigns" / "launch.yaml").read_text(encoding="utf-8")


def dump(value: object) -> str:
    stream = io.StringIO()
    YAML(typ="safe", pure=True).dump(value, stream)
    return stream.getvalue()


@st.composite
def spliced(draw: st.DrawFn) -> str:
    """The example campaign with a random slice replaced by random text."""
    start = draw(st.integers(0, len(EXAMPLE)))
    end = draw(st.integers(start, min(len(EXAMPLE), start + 40)))
    return EXAMPLE[:start] + draw(st.text(max_size=20)) + EXAMPLE[end:]


documents = st.one_of(campaigns.map(dump), data.map(dump), st.text(max_size=200), spliced())


@pytest.fixture(scope="module")
def fuzz_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example config and templates, with no campaigns of its own (validate gets only the fuzzed file)."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(REPO / "templates", root / "templates")
    shutil.copy(REPO / "config.yaml", root / "config.yaml")
    (root / "campaigns").mkdir()
    return root


@pytest.mark.slow  # a fuzz run; tests/test_broken_inputs.py keeps validate's messages in the quick loop
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(text=documents)
@example(text="&m {a: *m}\n")
@example(text="a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
              "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
              "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n")
@example(text="title: x\nstart: 2026-02-30\n")
@example(text="title: !!omap [a: 1]\nitems: !!set {a}\n")
@example(text="? [a, b]\n: c\n~: d\n2026-01-01: e\n")
@example(text="title: a\x00b\n")
@example(text="title: t\nend: 9999-12-31\nschedule: {every: 99999999999w}\n")
@example(text="")
def test_validate_never_crashes(text: str, fuzz_project: Path, cli) -> None:
    path = fuzz_project / "campaigns" / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")

    result = cli("validate", "--config", str(fuzz_project / "config.yaml"), str(path))

    assert "Traceback" not in result.output
    assert "internal error" not in result.output, result.output
    assert result.exit_code in (0, 2), result.output
