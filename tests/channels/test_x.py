"""The x plugin through the dispatcher, with tweepy (v2 Client, v1.1 media upload) against the fake X API."""

from __future__ import annotations

from functools import partial

import pytest

from drainage.store.models import DeliveryStatus as S
from tests.channels.helpers import SLOT, ChannelRun, FaultCase, check_fault
from tests.fake_platform import FakePlatform
from tests.fake_platform import faults as F

SLOT_TS = SLOT.timestamp()
KEYS = {"X_API_KEY": "ck-consumer-key", "X_API_SECRET": "cs-consumer-secret-never-logged",
        "X_ACCESS_TOKEN": "42-access-token", "X_ACCESS_SECRET": "as-access-secret-never-logged"}
OAUTH1 = """
    consumer_key: ${X_API_KEY}
    consumer_secret: ${X_API_SECRET}
    access_token: ${X_ACCESS_TOKEN}
    access_token_secret: ${X_ACCESS_SECRET}
"""


def x_channel(tmp_path, fake: FakePlatform, monkeypatch: pytest.MonkeyPatch, *, image: bool = False,
              auth: str = OAUTH1, timeout: float = 5) -> ChannelRun:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("X_USER_TOKEN", "oauth2-user-token-never-logged")
    lines = ["type: x", f"api_url: {fake.base_url}", f"upload_url: {fake.base_url}", f"timeout: {timeout}",
             *(line.strip() for line in auth.strip().splitlines())]
    options = "\n".join(lines)
    return ChannelRun(tmp_path, fake, "x-main", options, image=image)


def test_post_with_image_uses_v1_upload_then_v2_create(tmp_path, fake, monkeypatch) -> None:
    run = x_channel(tmp_path, fake, monkeypatch, image=True)
    run.run()
    row = run.row()
    assert (row.status, row.error) == (S.SENT, None)
    (media,) = fake.posts("x-upload")
    assert media["content"].startswith(b"\x89PNG")
    (tweet,) = fake.posts("x")
    link = tweet["text"].split()[-1]
    assert link.startswith("https://go.example.com/c/")
    assert tweet["text"] == f"Socks & <Scarves>: 10% off this week with code WARM10. {link}"
    assert tweet["media_ids"] == [str(media["id"])]
    (request,) = fake.received("x", "/2/tweets")
    auth = request.headers["authorization"]
    assert auth.startswith("OAuth ") and 'oauth_consumer_key="ck-consumer-key"' in auth
    assert 'oauth_token="42-access-token"' in auth and "oauth_signature=" in auth
    assert (row.remote_id, row.remote_url) == (str(tweet["id"]), f"https://x.com/i/web/status/{tweet['id']}")
    assert [r.path for r in fake.received("images")] == ["/img/scarf.png"]


def test_oauth2_user_token_posts_text_as_bearer(tmp_path, fake, monkeypatch) -> None:
    run = x_channel(tmp_path, fake, monkeypatch, image=True, auth="user_token: ${X_USER_TOKEN}")
    run.run()
    assert run.row().status == S.SENT
    (request,) = fake.received("x", "/2/tweets")
    assert request.headers["authorization"] == "Bearer oauth2-user-token-never-logged"
    assert fake.posts("x")[0]["media_ids"] == [] and fake.posts("x-upload") == []


@pytest.mark.parametrize("case", [
    FaultCase(partial(F.x_rate_limited, reset_in=900), "rate_limited: X rate limit: 429 Too Many Requests", exact=False,
              wait=(890, 900)),  # until the reset time
    FaultCase(F.X_DUPLICATE, "permanent: X refused a duplicate (this text was already posted): 403 Forbidden\n"
                             "You are not allowed to create a Tweet with duplicate content."),
])
def test_rate_limit_waits_until_the_reset_time_and_duplicate_content_fails_as_already_posted(
        tmp_path, fake, monkeypatch, case) -> None:
    check_fault(x_channel(tmp_path, fake, monkeypatch), fake, "x", case)


@pytest.mark.parametrize("case", [
    FaultCase(F.X_SERVER_ERROR, "transient: X server error: 503 Service Unavailable\nService Unavailable",
              exact=False),
    FaultCase(F.HTML_PAGE, "transient: X server error: 502 Bad Gateway", exact=False),
    FaultCase(F.slow(3.0), "transient: X unreachable: ReadTimeout", exact=False),
    FaultCase(F.slow(3.0), "transient: X unreachable: TweepyException: Failed to send request", exact=False,
              queue="x-upload"),
])
def test_transient_faults_are_retried_then_sent(tmp_path, fake, monkeypatch, case) -> None:
    check_fault(x_channel(tmp_path, fake, monkeypatch, image=True, timeout=1.0), fake, "x", case)


def test_lost_answer_then_resend_is_refused_as_duplicate_not_posted_twice(tmp_path, fake, monkeypatch) -> None:
    run = x_channel(tmp_path, fake, monkeypatch, timeout=1.0)
    fake.inject("x", F.slow(3.0, commit=True))  # X posts it, but the answer never arrives
    run.run()
    assert run.row().status == S.RETRYING
    run.retry_when_due()
    assert run.row().status == S.FAILED
    assert run.row().error.startswith("permanent: X refused a duplicate")
    assert len(fake.posts("x")) == 1


def test_bad_request_is_permanent(tmp_path, fake, monkeypatch) -> None:
    run = x_channel(tmp_path, fake, monkeypatch)
    fake.inject("x", F.X_BAD_REQUEST)
    run.run()
    assert run.row().status == S.FAILED
    assert run.row().error == "permanent: X refused the post: 400 Bad Request\nYour media IDs are invalid."


@pytest.mark.parametrize("fault", ["revoked", "read-only app"])
def test_auth_problems_pause_the_channel_without_leaking_keys(tmp_path, fake, monkeypatch, fault) -> None:
    run = x_channel(tmp_path, fake, monkeypatch)
    if fault == "revoked":
        fake.revoke("42-access-token")
    else:
        fake.inject("x", F.X_READ_ONLY_APP)
    run.run()
    state = run.paused()
    assert state is not None
    expected = ("auth: X rejected the credentials: 401 Unauthorized\nUnauthorized" if fault == "revoked" else
                "auth: X forbids this account or app to post: 403 Forbidden\nYour client app is not configured "
                "with the appropriate oauth1 app permissions for this endpoint.")
    assert state.reason == expected
    run.clock.advance(minutes=30)
    run.run()
    assert len(fake.received("x")) == 1
    written = run.everything_written()
    for secret in KEYS.values():
        assert secret not in written


@pytest.mark.parametrize("image", [False, True])
@pytest.mark.parametrize("published", [True, False])
def test_unknown_outcome_is_settled_by_reading_the_accounts_posts(tmp_path, fake, monkeypatch, published,
                                                                  image) -> None:
    run = x_channel(tmp_path, fake, monkeypatch, image=image)
    run.crash_after_claim(published)
    run.run()
    row = run.row()
    (tweet,) = fake.posts("x")  # found and not resent, or not found and sent once
    assert (row.status, row.remote_id) == (S.SENT, str(tweet["id"]))
    assert len(fake.received("x", "/2/users/me")) == 1
    (timeline,) = fake.received("x", "/2/users/4242/tweets")
    assert timeline.query["start_time"].startswith("2026-03-01T11:00:00")
    assert 'oauth_token="42-access-token"' in timeline.headers["authorization"]
    if published:
        assert row.error == "found on the platform after a crash"
        assert "unknown.found_sent" in run.log.getvalue()
    else:
        assert "unknown.not_found_resend" in run.log.getvalue()


def test_lookup_does_not_take_another_text_or_an_older_post_for_ours(tmp_path, fake, monkeypatch) -> None:
    run = x_channel(tmp_path, fake, monkeypatch)
    run.crash_after_claim(published=False)
    text = run.row().text or ""
    fake.publish("x", {"text": text.replace("WARM10", "WARM20"), "media_ids": [], "created": SLOT_TS + 60})
    fake.publish("x", {"text": text, "media_ids": [], "created": SLOT_TS - 3600})  # the same text, before the slot
    run.run()
    row = run.row()
    assert row.status == S.FAILED  # not found, so resent: X calls the older same text a duplicate
    assert row.error.startswith("permanent: X refused a duplicate")


def test_an_api_tier_that_cannot_read_falls_back_to_on_unknown(tmp_path, fake, monkeypatch) -> None:
    run = x_channel(tmp_path, fake, monkeypatch)
    fake.x_can_read = False
    run.crash_after_claim(published=True)
    run.run()
    row = run.row()
    assert row.status == S.UNKNOWN
    assert row.error == ("outcome unknown after a crash and the platform cannot be asked (permanent: X does not "
                         "let this app read the account's posts (a Basic tier or above can): 403 Forbidden\n"
                         "When authenticating requests to the Twitter API v2 endpoints, you must use keys and "
                         "tokens from a Twitter developer App that is attached to a Project.); not resent "
                         "(on_unknown: skip)")
    assert len(fake.posts("x")) == 1
