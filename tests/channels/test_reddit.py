"""The reddit plugin through the dispatcher, with PRAW against the fake Reddit API; its pacing by subreddit and
by account."""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from drainage.store.models import DeliveryStatus as S
from tests.channels.helpers import SLOT, START, ChannelRun, FaultCase, check_fault
from tests.daemon_helpers import make_dispatcher
from tests.fake_platform import FakePlatform
from tests.fake_platform import reddit as R

SECRET = "RedditAppSecretNeverLogged"
PASSWORD = "RedditPasswordNeverLogged"


def options(fake: FakePlatform, subreddit: str = "ShopTalk", extra: str = "") -> str:
    return textwrap.dedent(f"""
        type: reddit
        subreddit: {subreddit}
        client_id: app-id-123
        client_secret: ${{REDDIT_SECRET}}
        username: shopkeeper
        password: ${{REDDIT_PASSWORD}}
        oauth_url: {fake.base_url}
        reddit_url: {fake.base_url}
        short_url: {fake.base_url}
        timeout: 2
        min_interval: 1m
    """) + textwrap.dedent(extra)


def reddit(tmp_path, fake: FakePlatform, monkeypatch: pytest.MonkeyPatch, extra: str = "") -> ChannelRun:
    monkeypatch.setenv("REDDIT_SECRET", SECRET)
    monkeypatch.setenv("REDDIT_PASSWORD", PASSWORD)
    return ChannelRun(tmp_path, fake, "r-shoptalk", options(fake, extra=extra))


def test_link_post_with_flair_and_flags_off(tmp_path, fake, monkeypatch) -> None:
    run = reddit(tmp_path, fake, monkeypatch, extra="flair_id: f1a2\nflair_text: Shop\n")
    run.run()
    row = run.row()
    assert (row.status, row.error) == (S.SENT, None)
    (post,) = fake.posts("reddit")
    link = post["text"].split()[-1]
    assert link.startswith("https://go.example.com/c/")
    assert {k: post[k] for k in ("sr", "kind", "title", "url", "flair_id", "flair_text", "nsfw", "spoiler")} == {
        "sr": "ShopTalk", "kind": "link", "title": "New in the shop: Socks & <Scarves>", "url": link,
        "flair_id": "f1a2", "flair_text": "Shop", "nsfw": "False", "spoiler": "False"}
    (token,) = fake.received("reddit-auth")
    assert (token.form["grant_type"], token.form["username"], token.form["password"]) == ("password", "shopkeeper",
                                                                                          PASSWORD)
    assert row.remote_id == f"fk{post['id']}"
    assert row.remote_url == f"https://www.reddit.com/r/ShopTalk/comments/fk{post['id']}/"
    assert [r.query["id"] for r in fake.received("reddit-info")] == [f"t3_fk{post['id']}"]


def test_text_post(tmp_path, fake, monkeypatch) -> None:
    run = reddit(tmp_path, fake, monkeypatch, extra="kind: text\n")
    run.run()
    (post,) = fake.posts("reddit")
    assert (post["kind"], post["url"]) == ("self", None)
    assert post["text"].startswith("Socks & <Scarves>: 10% off this week")


@pytest.mark.parametrize("case", [
    FaultCase(R.reddit_ratelimit(9), "rate_limited: Reddit rate limit: RATELIMIT: Looks like you've been doing that a "
                                     "lot. Take a break for 9 minutes before trying again. (ratelimit)", wait=540),
    FaultCase(R.REDDIT_TOO_MANY, "rate_limited: Reddit rate limit: HTTP 429", exact=False, wait=42),  # Retry-After
    pytest.param(FaultCase(R.REDDIT_SERVER_ERROR, "transient: Reddit unreachable or failing: ServerError",
                           exact=False, times=3),  # prawcore itself retries twice, sleeping 4 s in all
                 marks=pytest.mark.slow),
    FaultCase(R.REDDIT_NO_SELFS, "permanent: Reddit refused the post to r/ShopTalk: NO_SELFS: This community doesn't "
                                 "allow text posts. (sr)"),
    FaultCase(R.REDDIT_BAD_FLAIR, "permanent: Reddit refused the post to r/ShopTalk: "
                                  "SUBMIT_VALIDATION_FLAIR_REQUIRED: Your post must contain post flair. (flair)"),
])
def test_rate_limits_wait_as_reddit_says_server_errors_are_retried_refusals_fail_with_the_reason(
        tmp_path, fake, monkeypatch, case) -> None:
    check_fault(reddit(tmp_path, fake, monkeypatch), fake, "reddit", case)


def test_post_removed_at_once_fails_with_the_reason(tmp_path, fake, monkeypatch) -> None:
    run = reddit(tmp_path, fake, monkeypatch)
    fake.inject("reddit-removal", R.reddit_removed("automod_filtered"))
    run.run()
    row = run.row()
    (post,) = fake.posts("reddit")
    assert (row.status, row.error) == (S.FAILED, "permanent: Reddit removed the post at once (AutoModerator): "
                                                 f"https://www.reddit.com/r/ShopTalk/comments/fk{post['id']}/")


@pytest.mark.parametrize(("revoke", "reason"), [
    (PASSWORD, "auth: Reddit refused the login: invalid_grant (check username and password)"),
    (SECRET, "auth: Reddit rejected the app's credentials: received 401 HTTP response (check client_id and "
             "client_secret)"),
])
def test_rejected_credentials_pause_the_channel_and_are_never_shown(tmp_path, fake, monkeypatch, revoke,
                                                                    reason) -> None:
    run = reddit(tmp_path, fake, monkeypatch)
    fake.revoke(revoke)
    run.run()
    state = run.paused()
    assert state is not None and state.reason == reason
    written = run.everything_written()
    assert SECRET not in written and PASSWORD not in written


@pytest.mark.slow  # prawcore sleeps through its retries of the 401s (5 s)
def test_expired_token_pauses_the_channel(tmp_path, fake, monkeypatch) -> None:
    run = reddit(tmp_path, fake, monkeypatch)
    fake.revoke("all-reddit-tokens")  # every access token is refused, as after a revoked app authorization
    run.run()
    state = run.paused()
    assert state is not None and state.reason.startswith("auth: Reddit rejected the token: received 401")


@pytest.mark.parametrize("published", [True, False])
def test_crash_is_settled_by_looking_the_title_up(tmp_path, fake, monkeypatch, published) -> None:
    run = reddit(tmp_path, fake, monkeypatch)
    run.crash_after_claim(published)
    run.run()
    row = run.row()
    assert row.status == S.SENT
    (post,) = fake.posts("reddit")  # found and not resent, or not found and sent once
    assert row.remote_id == f"fk{post['id']}"
    if published:
        assert row.error == "found on the platform after a crash"
    assert [(r.path, r.query.get("sort")) for r in fake.received("reddit-info") if "submitted" in r.path] == [
        ("/user/shopkeeper/submitted", "new")]


def test_lookup_ignores_an_older_post_with_the_same_title(tmp_path, fake, monkeypatch) -> None:
    run = reddit(tmp_path, fake, monkeypatch)
    run.crash_after_claim(published=False)
    fake.publish("reddit", {"sr": "ShopTalk", "title": "New in the shop: Socks & <Scarves>", "name": "t3_old1",
                            "created_utc": run.clock.now().timestamp() - 86400, "removed_by_category": None})
    run.run()
    row = run.row()
    assert row.status == S.SENT and row.remote_id != "old1"
    assert len(fake.posts("reddit")) == 2


def test_validate_requires_a_title_of_at_most_300_characters(tmp_path, fake, monkeypatch, cli) -> None:
    reddit(tmp_path, fake, monkeypatch)
    campaign = tmp_path / "campaigns" / "c.yaml"
    text = campaign.read_text()
    campaign.write_text(text.replace('subject: "New in the shop: {{ item.name }}"', 'subject: "{{ item.name * 20 }}"'))
    result = cli("validate", "--config", str(tmp_path / "config.yaml"))
    assert result.exit_code == 2
    assert "has a title (subject) of 340 characters, over the channel's limit of 300" in result.output
    campaign.write_text(text.replace('    subject: "New in the shop: {{ item.name }}"\n', ""))
    result = cli("validate", "--config", str(tmp_path / "config.yaml"))
    assert result.exit_code == 2
    assert "has no title: set `subject:` on this channel in the campaign" in result.output


def test_min_interval_per_subreddit_and_daily_cap_per_account(tmp_path, fake, monkeypatch) -> None:
    """Four instances of one account: two post to r/ShopTalk (at least 6 h apart), one to r/Crafts, one to r/Deals;
    the account posts at most 2 a day. All four slots are due at once: two are sent, two wait."""
    run = reddit(tmp_path, fake, monkeypatch, extra="daily_cap: 2\n")
    config, campaign = tmp_path / "config.yaml", tmp_path / "campaigns" / "c.yaml"
    text = config.read_text().replace("min_interval: 1m", "min_interval: 6h")
    block = text[text.index("  r-shoptalk:"):]
    others = (("r-shoptalk-2", "ShopTalk"), ("r-crafts", "Crafts"), ("r-deals", "Deals"))
    for name, sub in others:
        text += block.replace("r-shoptalk:", f"{name}:").replace("subreddit: ShopTalk", f"subreddit: {sub}")
    config.write_text(text)
    campaign.write_text(campaign.read_text() + "".join(
        f"  - channel: {n}\n    template: post.j2\n    subject: \"Post {n}\"\n" for n, _ in others))
    run.project, run.dispatcher = make_dispatcher(config, run.clock)
    run.clock.set(START)
    run.run()  # the new instances' cursors start
    run.clock.set(SLOT)
    waits: list[float] = []

    async def stop_instead_of_waiting(seconds: float) -> None:
        waits.append(seconds)
        run.dispatcher.stopping = True

    run.clock.sleep = stop_instead_of_waiting  # type: ignore[method-assign]
    for name in ("r-shoptalk", "r-shoptalk-2", "r-crafts", "r-deals"):  # one after the other: a known order
        run.dispatcher.stopping = False
        asyncio.run(run.dispatcher.run_channel(name))
    assert [(p["sr"], p["title"]) for p in fake.posts("reddit")] == [
        ("ShopTalk", "New in the shop: Socks & <Scarves>"), ("Crafts", "Post r-crafts")]
    subreddit_wait, account_wait = waits
    assert subreddit_wait == 6 * 3600  # r/ShopTalk's minimum interval
    assert account_wait == 24 * 3600  # the account's 2 a day, a sliding window: one more 24 h after the first
