"""The facebook plugin through the dispatcher, with facebook-sdk 3.1.0 against the fake Graph API."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from drainage.store.models import DeliveryStatus as S
from tests.channels.helpers import ChannelRun, FaultCase, check_fault
from tests.conftest import REPO
from tests.fake_platform import FakePlatform
from tests.fake_platform import faults as F

TOKEN = "EAAPageTokenNeverLogged"


def facebook(tmp_path, fake: FakePlatform, monkeypatch: pytest.MonkeyPatch, *, image: bool = False,
             timeout: float = 5, on_unknown: str = "skip") -> ChannelRun:
    monkeypatch.setenv("FB_PAGE_TOKEN", TOKEN)
    options = f"""
        type: facebook
        page_id: "1122334455"
        access_token: ${{FB_PAGE_TOKEN}}
        graph_url: {fake.base_url}
        timeout: {timeout}
    """
    return ChannelRun(tmp_path, fake, "fb-page", options, image=image, on_unknown=on_unknown)


def test_feed_post_with_link_on_a_current_graph_version(tmp_path, fake, monkeypatch) -> None:
    run = facebook(tmp_path, fake, monkeypatch)
    run.run()
    row = run.row()
    assert (row.status, row.error) == (S.SENT, None)
    (post,) = fake.posts("facebook")
    link = post["message"].split()[-1]
    assert post["message"] == f"Socks & <Scarves>: 10% off this week with code WARM10. {link}"
    assert post["link"] == link and link.startswith("https://go.example.com/c/")
    (request,) = fake.received("facebook")
    assert (request.method, request.path) == ("POST", "/v25.0/1122334455/feed")
    assert request.form["access_token"] == TOKEN
    assert (row.remote_id, row.remote_url) == (f"1122334455_{post['id']}",
                                               f"https://www.facebook.com/1122334455/posts/{post['id']}")


def test_photo_with_caption(tmp_path, fake, monkeypatch) -> None:
    run = facebook(tmp_path, fake, monkeypatch, image=True)
    run.run()
    (post,) = fake.posts("facebook")
    assert (post["edge"], post["url"]) == ("photos", fake.image_url("scarf.png"))
    assert post["message"].startswith("Socks & <Scarves>: 10% off")
    assert run.row().remote_id == f"1122334455_{post['id']}"


@pytest.mark.parametrize("case", [
    FaultCase(F.FB_APP_RATE_LIMIT, "rate_limited: Facebook error 4: (#", exact=False, wait=3600),
    FaultCase(F.FB_PAGE_RATE_LIMIT, "rate_limited: Facebook error 32: (#", exact=False, wait=3600),
])
def test_rate_limit_codes_wait_an_hour(tmp_path, fake, monkeypatch, case) -> None:
    check_fault(facebook(tmp_path, fake, monkeypatch), fake, "facebook", case)


@pytest.mark.parametrize("case", [
    FaultCase(F.FB_SERVER_ERROR, "transient: Facebook error 2: An unexpected error has occurred.", exact=False),
    FaultCase(F.HTML_PAGE, "transient: Graph API answered with an error page instead of JSON", exact=False),
    FaultCase(F.slow(3.0), "transient: Graph API unreachable or not answering JSON: ReadTimeout", exact=False),
])
def test_transient_faults_are_retried_then_sent(tmp_path, fake, monkeypatch, case) -> None:
    check_fault(facebook(tmp_path, fake, monkeypatch, timeout=1.0), fake, "facebook", case)


@pytest.mark.parametrize("case", [
    FaultCase(F.FB_BLOCKED, "permanent: blocked: Facebook error 368/1390008: It looks like you were misusing this "
                            "feature", exact=False),
    FaultCase(F.FB_DUPLICATE, "permanent: duplicate: Facebook error 506: (#506) Duplicate status message (this text "
                              "is already on the Page)", exact=False),
])
def test_blocked_and_duplicate_fail_with_the_reason(tmp_path, fake, monkeypatch, case) -> None:
    check_fault(facebook(tmp_path, fake, monkeypatch), fake, "facebook", case)


def test_revoked_token_pauses_the_channel_and_is_never_shown(tmp_path, fake, monkeypatch) -> None:
    run = facebook(tmp_path, fake, monkeypatch)
    fake.revoke(TOKEN)
    run.run()
    state = run.paused()
    assert state is not None
    assert state.reason.startswith("auth: Facebook error 190/460: Error validating access token")
    assert state.reason.endswith("(get a new Page access token)")
    assert TOKEN not in run.everything_written()


def test_lost_answer_is_recognised_when_facebook_calls_the_retry_a_duplicate(tmp_path, fake, monkeypatch) -> None:
    run = facebook(tmp_path, fake, monkeypatch, timeout=1.0)
    fake.inject("facebook", F.slow(3.0, commit=True))  # the post is made, the answer never arrives
    run.run()
    assert run.row().status == S.RETRYING
    run.retry_when_due()
    row = run.row()
    (post,) = fake.posts("facebook")
    assert (row.status, row.remote_id) == (S.SENT, f"1122334455_{post['id']}")
    assert [r.method for r in fake.received("facebook")] == ["POST", "POST", "GET"]


@pytest.mark.parametrize("published", [True, False])
def test_crash_is_settled_by_looking_the_post_up(tmp_path, fake, monkeypatch, published) -> None:
    run = facebook(tmp_path, fake, monkeypatch)
    run.crash_after_claim(published)
    run.run()
    row = run.row()
    assert row.status == S.SENT
    assert len(fake.posts("facebook")) == 1  # found and not resent, or not found and sent once
    lookups = [r for r in fake.received("facebook") if r.method == "GET"]
    assert [(r.path, r.query["since"]) for r in lookups] == [("/v25.0/1122334455/posts", "1772362800")]
    if published:
        assert row.error == "found on the platform after a crash"
        assert row.remote_id == f"1122334455_{fake.posts('facebook')[0]['id']}"


def test_lookup_ignores_posts_from_before_the_slot(tmp_path, fake, monkeypatch) -> None:
    run = facebook(tmp_path, fake, monkeypatch)
    run.crash_after_claim(published=False)
    fake.publish("facebook", {"page": "1122334455", "edge": "feed", "message": run.row().text,  # the same text,
                              "created": run.clock.now().timestamp() - 7200, "post_id": "1122334455_1"})  # 2 h ago
    run.run()
    assert run.row().status == S.FAILED  # not taken for ours; resent, and Facebook calls it a duplicate
    assert "(#506) Duplicate status message" in (run.row().error or "")


def test_sdk_syntax_warning_is_silenced_and_nothing_else(tmp_path) -> None:
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path / "pycache")}  # compile facebook-sdk afresh
    bare = subprocess.run([sys.executable, "-W", "error", "-c", "import facebook"], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert "invalid escape sequence" in bare.stderr  # the SDK really has the problem...
    ours = subprocess.run([sys.executable, "-W", "error", "-c",
                           "import warnings, channels.facebook; warnings.warn('other', UserWarning)"],
                          cwd=REPO, env=env, capture_output=True, text=True)
    assert "invalid escape sequence" not in ours.stderr  # ...which importing our plugin silences
    assert "UserWarning: other" in ours.stderr  # while other warnings still surface
