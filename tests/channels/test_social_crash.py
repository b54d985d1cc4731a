"""Kill trials: a kill while the bot is built and its token checked (getMe) must leave the post claimable; only a
kill while the message is on its way may leave an unknown outcome: at most one per crash, and never a
duplicate."""

from __future__ import annotations

import pytest

from drainage.store.models import DeliveryStatus as S
from tests.social_crash import TOKEN, kill_trials


@pytest.mark.slow
@pytest.mark.timeout(900)  # 20 daemon starts: minutes on a loaded two-core runner
def test_kills_while_preparing_leave_nothing_unknown_and_never_a_duplicate(tmp_path, fake, monkeypatch) -> None:
    monkeypatch.setenv("TG_TOKEN", TOKEN)
    trials = kill_trials(tmp_path, fake, kills=20, posts=30)
    assert trials.kills == 20
    assert trials.duplicates == {}
    assert trials.most_sending <= 1  # at most one unknown post per channel per crash
    assert set(trials.statuses) <= {S.SENT, S.UNKNOWN}  # all settled: a kill while preparing is sent later
    assert trials.statuses[S.UNKNOWN] == trials.while_sending  # exactly the kills that hit a message on its way
    assert trials.statuses[S.SENT] + trials.statuses[S.UNKNOWN] == 30
