"""Large YAML files parsed once: the cache gives back exactly the data the file parses to, never stale data."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from drainage import yaml_cache
from drainage.sources import MAX_NODES, Positions, parse_yaml
from drainage.yaml_fast import NotPlain, compose_plain
from tests.test_validate_fuzz import documents
from tests.test_yaml_fast import comparable


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("DRAINAGE_CACHE_DIR", str(folder))
    monkeypatch.setattr(yaml_cache, "MIN_SIZE", 0)  # every document, however small
    return folder


def parsed(text: str) -> object:
    data, _, problems = parse_yaml(text, Positions("x.yaml"))
    assert problems == []
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(text=documents)
def test_a_cached_document_reads_as_it_parses(cache: Path, text: str) -> None:
    try:
        expected = compose_plain(text, MAX_NODES, positions=False)[0]
    except NotPlain:
        return  # ruamel's reading: never cached
    first = parsed(text)  # parsed, then kept
    again = parsed(text)  # from the cache
    assert comparable(first) == comparable(expected)
    assert comparable(again) == comparable(expected)
    assert [type(v) for v in _leaves(again)] == [type(v) for v in _leaves(expected)]


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def test_dates_times_and_binary_come_back_as_they_were(cache: Path) -> None:
    text = ("start: 2026-01-01\nat: 2026-01-01 10:00:00+02:00\nnaive: 2026-01-01 10:00:00\nblob: !!binary aGk=\n"
            "items: [{price: 19.5, n: 3, on: true, none: ~, name: 'x'}]\n")
    parsed(text)
    assert len(list(cache.glob("*.json"))) == 1
    assert parsed(text) == compose_plain(text, MAX_NODES, positions=False)[0]


def test_an_edited_file_is_parsed_again(cache: Path) -> None:
    assert parsed("a: 1\n") == {"a": 1}
    assert parsed("a: 2\n") == {"a": 2}
    assert len(list(cache.glob("*.json"))) == 2


def test_a_corrupt_entry_is_parsed_again(cache: Path) -> None:
    parsed("a: [1, 2]\n")
    (entry,) = cache.glob("*.json")
    entry.write_text('{"format": "drainage-yaml-1", "data": {"a": "changed"}, "special": [[["a", 9], "date", ')
    assert parsed("a: [1, 2]\n") == {"a": [1, 2]}


def test_small_files_and_a_cache_turned_off_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    monkeypatch.setenv("DRAINAGE_CACHE_DIR", str(folder))
    assert parsed("a: 1\n") == {"a": 1}  # under MIN_SIZE
    assert not folder.exists()
    monkeypatch.setenv("DRAINAGE_CACHE_DIR", "")
    monkeypatch.setattr(yaml_cache, "MIN_SIZE", 0)
    assert parsed("a: 1\n") == {"a": 1}
    assert not folder.exists()


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DRAINAGE_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(yaml_cache, "MIN_SIZE", 0)
    assert parsed("a: 1\n") == {"a": 1}
    assert parsed("a: 1\n") == {"a": 1}


def test_the_oldest_entries_go_beyond_the_limit(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_cache, "MAX_ENTRIES", 3)
    for n in range(5):
        parsed(f"a: {n}\n")
    assert len(list(cache.glob("*.json"))) == 3
