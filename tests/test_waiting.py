"""The one wait helper: it returns the predicate's first true value, and fails at its deadline saying what for."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.waiting import eventually, eventually_async

pytestmark = pytest.mark.pure  # no database: CI's PostgreSQL pass skips it


def test_returns_the_first_true_value() -> None:
    counter = itertools.count()
    assert eventually(lambda: next(counter) >= 3 and "ready", interval=0) == "ready"
    assert next(counter) == 4  # called until it held, not once more


def test_fails_at_the_deadline_with_what_it_waited_for_and_the_last_value() -> None:
    queue = [1, 2]
    with pytest.raises(AssertionError, match=r"^timed out after 0.05 s waiting for an item above 2 "
                                             r"\(last value: \[\]\)$"):
        eventually(lambda: [item for item in queue if item > 2], timeout=0.05, what="an item above 2")


def test_the_event_loop_runs_between_async_polls() -> None:
    async def main() -> str:
        done = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, done.set)
        return await eventually_async(lambda: done.is_set() and "set", timeout=30)

    assert asyncio.run(main()) == "set"
