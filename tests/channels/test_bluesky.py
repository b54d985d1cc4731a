"""The bluesky plugin through the dispatcher, with the real atproto SDK against the fake PDS."""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial

import httpx
import pytest

from drainage.channel import Post
from drainage.store.models import DeliveryStatus as S
from tests.channels.helpers import ChannelRun, FaultCase, check_fault
from tests.fake_platform import FakePlatform
from tests.fake_platform import bluesky as B
from tests.fake_platform import faults as F

PASSWORD = "abcd-efgh-ijkl-mnop"
TEMPLATE = "Ünïcode 🧣 {{ item.name }}: 10% off #winter {{ link(item) }}\n"


def bluesky(tmp_path, fake: FakePlatform, monkeypatch: pytest.MonkeyPatch, *, extra: str = "",
            image: bool = False, timeout: float = 5) -> ChannelRun:
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", PASSWORD)
    options = "\n".join(["type: bluesky", "handle: shop.bsky.social", "app_password: ${BLUESKY_APP_PASSWORD}",
                         f"pds_url: {fake.base_url}", "languages: [en, de]", f"timeout: {timeout}", extra])
    return ChannelRun(tmp_path, fake, "sky", options, image=image, template=TEMPLATE)


def link_facets(record: dict) -> list[tuple[str, str]]:
    """(the text under each link facet's byte range, the facet's URI)."""
    text = record["text"].encode("utf-8")
    return [(text[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode("utf-8"), feature["uri"])
            for f in record.get("facets", []) for feature in f["features"]
            if feature["$type"] == "app.bsky.richtext.facet#link"]


def send_one(run: ChannelRun) -> None:
    """One post straight through the plugin (outside the dispatcher): the channel now has a session."""
    post = Post(key="k", campaign="c", channel="sky", item="i", variant="", slot=datetime.now(), text="warm-up")
    asyncio.run(run.channel.send(post))


def fake_png(fake: FakePlatform) -> bytes:
    return httpx.get(fake.image_url("scarf.png")).content


def test_post_with_clickable_link_tag_and_card_with_thumbnail(tmp_path, fake, monkeypatch) -> None:
    run = bluesky(tmp_path, fake, monkeypatch, image=True)
    run.run()
    row = run.row()
    assert (row.status, row.error) == (S.SENT, None)
    (post,) = fake.posts("bluesky")
    record = post["record"]
    link = row.text.split()[-1]
    assert link.startswith("https://go.example.com/c/")
    assert record["text"] == row.text
    assert link_facets(record) == [(link, link)]  # UTF-8 byte offsets, past 'Ü', 'ï' and the emoji
    tags = [feature["tag"] for f in record["facets"] for feature in f["features"]
            if feature["$type"] == "app.bsky.richtext.facet#tag"]
    assert tags == ["winter"]
    assert (post["repo"], post["collection"], record["langs"]) == ("shop.bsky.social", "app.bsky.feed.post",
                                                                   ["en", "de"])
    external = record["embed"]["external"]
    assert record["embed"]["$type"] == "app.bsky.embed.external"
    assert (external["uri"], external["title"]) == (link, "New in the shop: Socks & <Scarves>")
    assert external["description"] == "Ünïcode 🧣 Socks & <Scarves>: 10% off #winter"
    assert (external["thumb"]["ref"], external["thumb"]["mimeType"]) == ({"$link": B.BLOB_CID}, "image/png")
    (upload,) = fake.posts("bluesky-upload")
    assert upload["content"] == fake_png(fake)
    (login,) = fake.received("bluesky-login")
    assert login.json == {"identifier": "shop.bsky.social", "password": PASSWORD}
    assert row.remote_id == post["uri"]
    assert row.remote_url == f"https://bsky.app/profile/shop.bsky.social/post/{post['uri'].rsplit('/', 1)[-1]}"


def test_one_session_for_many_posts_refreshed_before_it_expires(tmp_path, fake, monkeypatch) -> None:
    run = bluesky(tmp_path, fake, monkeypatch, extra="card: false")
    B.short_sessions(fake, seconds=60)  # within the SDK's 15 minutes of margin: it refreshes before posting
    send_one(run)
    run.run()
    assert run.row().status == S.SENT
    assert len(fake.received("bluesky-login")) == 1  # two posts, one login
    assert len(fake.received("bluesky-refresh")) >= 1
    post = fake.posts("bluesky")[-1]
    assert post["token"] == fake.posts("bluesky-sessions")[-1]["accessJwt"]  # the refreshed token
    assert "embed" not in post["record"]


@pytest.mark.parametrize("card", [True, False])
def test_expired_token_logs_in_again_and_posts(tmp_path, fake, monkeypatch, card) -> None:
    run = bluesky(tmp_path, fake, monkeypatch, image=True, extra=f"card: {str(card).lower()}")
    send_one(run)
    fake.revoke(fake.posts("bluesky-sessions")[-1]["accessJwt"])  # the PDS now says ExpiredToken
    run.run()
    assert (run.row().status, run.row().error) == (S.SENT, None)
    assert len(fake.received("bluesky-login")) == 2
    assert len(fake.posts("bluesky")) == 2
    assert len(fake.posts("bluesky-upload")) == (1 if card else 0)  # the first upload was refused


@pytest.mark.parametrize("case", [
    FaultCase(partial(B.rate_limited, reset_in=120),
              "rate_limited: Bluesky HTTP 429: RateLimitExceeded: Rate Limit Exceeded", wait=(60, 120)),
    FaultCase(B.SERVER_ERROR, "transient: Bluesky HTTP 500: InternalServerError: Internal Server Error"),
    FaultCase(F.HTML_PAGE, "transient: Bluesky HTTP 502 (an error page, not the PDS's JSON)"),
    FaultCase(F.slow(3.0), "transient: Bluesky did not answer in time"),
    FaultCase(B.INVALID_RECORD, "permanent: Bluesky HTTP 400: InvalidRequest: Invalid app.bsky.feed.post record: "
                                "Record/text must not be longer than 300 graphemes"),
])
def test_rate_limit_waits_for_the_window_transient_faults_are_retried_an_invalid_record_fails_with_the_pds_text(
        tmp_path, fake, monkeypatch, case) -> None:
    check_fault(bluesky(tmp_path, fake, monkeypatch, timeout=1.0), fake, "bluesky", case)


def test_wrong_app_password_pauses_the_channel_and_is_never_shown(tmp_path, fake, monkeypatch) -> None:
    run = bluesky(tmp_path, fake, monkeypatch)
    fake.revoke(PASSWORD)
    run.run()
    state = run.paused()
    assert state is not None
    assert state.reason == ("auth: Bluesky HTTP 401: AuthenticationRequired: Invalid identifier or password "
                            "(check the handle and app_password)")
    assert PASSWORD not in run.everything_written()
    assert not fake.posts("bluesky")


def test_limit_is_300_graphemes() -> None:
    from channels.bluesky import BlueskyChannel

    limits = BlueskyChannel.limits
    assert (limits.max_length, limits.count("👩‍👩‍👧🇩🇪e\u0301" * 100)) == (300, 300)
