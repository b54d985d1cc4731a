"""The mastodon plugin through the dispatcher, with the real Mastodon.py against the fake instance."""

from __future__ import annotations

from functools import partial

import pytest

from channels.mastodon import idempotency_key
from drainage.store.models import DeliveryStatus as S
from tests.channels.helpers import ChannelRun, FaultCase, check_fault
from tests.fake_platform import FakePlatform
from tests.fake_platform import faults as F
from tests.fake_platform import mastodon as M

TOKEN = "mastodon-token-never-logged"


def mastodon(tmp_path, fake: FakePlatform, monkeypatch: pytest.MonkeyPatch, *, extra: str = "",
             image: bool = False, timeout: float = 5) -> ChannelRun:
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", TOKEN)
    options = "\n".join(["type: mastodon", f"instance: {fake.base_url}", "access_token: ${MASTODON_ACCESS_TOKEN}",
                         "visibility: unlisted", "language: en", f"timeout: {timeout}", extra])
    return ChannelRun(tmp_path, fake, "toot", options, image=image)


def test_status_with_visibility_language_and_image_with_alt_text(tmp_path, fake, monkeypatch) -> None:
    run = mastodon(tmp_path, fake, monkeypatch, image=True)
    run.run()
    row = run.row()
    assert (row.status, row.error) == (S.SENT, None)
    (media,) = fake.posts("mastodon-media")
    assert (media["type"], media["description"]) == ("image/png", "Socks & <Scarves>")
    (status,) = fake.posts("mastodon")
    assert (status["status"], status["visibility"], status["language"]) == (row.text, "unlisted", "en")
    assert status["media_ids"] == str(media["id"])
    assert status["idempotency_key"] == idempotency_key(row.key)
    (request,) = fake.received("mastodon")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert (row.remote_id, row.remote_url) == (str(status["id"]), f"https://fake.social/@shop/{status['id']}")


def test_lost_answer_is_not_posted_twice_thanks_to_the_idempotency_key(tmp_path, fake, monkeypatch) -> None:
    run = mastodon(tmp_path, fake, monkeypatch, timeout=1.0)
    fake.inject("mastodon", F.slow(3.0, commit=True))
    run.run()
    assert (run.row().status, run.row().error) == (S.RETRYING, "transient: Mastodon did not answer in "
                                                               "time")
    run.retry_when_due()
    assert run.row().status == S.SENT
    assert len(fake.posts("mastodon")) == 1


def test_the_instances_own_limit_is_read_and_enforced(tmp_path, fake, monkeypatch) -> None:
    run = mastodon(tmp_path, fake, monkeypatch)
    M.set_instance_limit(fake, 40)  # the post is 'Socks & <Scarves>: 10% off ... ' + a URL counted 23
    run.run()
    row = run.row()
    assert row.status == S.FAILED
    assert row.error == (f"permanent: the status is 78 long by Mastodon's count, over {fake.base_url}'s limit of 40 "
                         "(set max_characters: 40 so that validate sees it)")
    assert not fake.posts("mastodon")


def test_validate_counts_with_the_configured_max_characters(tmp_path, fake, monkeypatch) -> None:
    run = mastodon(tmp_path, fake, monkeypatch, extra="max_characters: 1000")
    limits = run.channel.limits
    assert (limits.max_length, limits.counting) == (1000, "mastodon")
    assert limits.count("x " + "https://shop.example.com/" + "a" * 200) == 2 + 23


@pytest.mark.parametrize("case", [
    # thrown, not slept; Mastodon.py corrects the reset by the Date header
    FaultCase(partial(M.rate_limited, reset_in=300), "rate_limited: Mastodon rate limit (HTTP 429)", wait=(200, 305)),
    FaultCase(M.SERVER_ERROR, "transient: Mastodon HTTP 503: Service Unavailable"),
    FaultCase(F.HTML_PAGE, "transient: Mastodon HTTP 502 (an error page, not the instance's JSON)"),
    FaultCase(M.VALIDATION_FAILED, "permanent: Mastodon HTTP 422: Validation failed: Text character limit of 500 "
                                   "exceeded"),
])
def test_rate_limit_waits_until_the_reset_server_errors_are_retried_a_validation_failure_fails_with_its_text(
        tmp_path, fake, monkeypatch, case) -> None:
    check_fault(mastodon(tmp_path, fake, monkeypatch), fake, "mastodon", case)


@pytest.mark.parametrize(("revoke", "reason"), [
    (True, "auth: Mastodon HTTP 401: The access token is invalid (check access_token and its scopes "
           "write:statuses, write:media)"),
    (False, "auth: Mastodon HTTP 403: This action is outside the authorized scopes (check access_token and its "
            "scopes write:statuses, write:media)"),
])
def test_refused_token_pauses_the_channel_and_is_never_shown(tmp_path, fake, monkeypatch, revoke, reason) -> None:
    run = mastodon(tmp_path, fake, monkeypatch)
    if revoke:
        fake.revoke(TOKEN)
    else:
        fake.inject("mastodon", M.MISSING_SCOPE)
    run.run()
    state = run.paused()
    assert state is not None and state.reason == reason
    assert TOKEN not in run.everything_written()
    assert not fake.posts("mastodon")
