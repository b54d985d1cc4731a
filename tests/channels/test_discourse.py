"""The discourse plugin through the dispatcher, with httpx against the fake Discourse API."""

from __future__ import annotations

import pytest
from sqlmodel import select

from channels.discourse import external_id
from drainage.store.db import session
from drainage.store.models import Delivery
from drainage.store.models import DeliveryStatus as S
from tests.channels.helpers import ChannelRun, FaultCase, check_fault
from tests.fake_platform import FakePlatform
from tests.fake_platform import faults as F

KEY = "discourse-api-key-never-logged"


def discourse(tmp_path, fake: FakePlatform, monkeypatch: pytest.MonkeyPatch, *, extra: str = "",
              image: bool = False, timeout: float = 5, on_unknown: str = "skip") -> ChannelRun:
    monkeypatch.setenv("DISCOURSE_API_KEY", KEY)
    options = "\n".join(["type: discourse", f"url: {fake.base_url}", "api_key: ${DISCOURSE_API_KEY}",
                         "api_username: shopkeeper", "category: 5", "tags: [winter, sale]", f"timeout: {timeout}",
                         extra])
    return ChannelRun(tmp_path, fake, "forum", options, image=image, on_unknown=on_unknown)


def test_new_topic_in_a_category_with_tags(tmp_path, fake, monkeypatch) -> None:
    run = discourse(tmp_path, fake, monkeypatch, image=True)
    run.run()
    row = run.row()
    assert (row.status, row.error) == (S.SENT, None)
    (topic,) = fake.posts("discourse")
    link = row.text.split()[-1]
    assert link.startswith("https://go.example.com/c/")
    assert topic["title"] == "New in the shop: Socks & <Scarves>"
    assert topic["raw"] == (f"Socks & <Scarves>: 10% off this week with code WARM10. {link}\n\n"
                            f"![scarf]({fake.image_url('scarf.png')})")
    assert (topic["category"], topic["tags"], topic["username"]) == (5, ["winter", "sale"], "shopkeeper")
    assert topic["external_id"] == external_id(row.key) and len(topic["external_id"]) <= 50
    (request,) = fake.received("discourse")
    assert (request.headers["api-key"], request.headers["api-username"]) == (KEY, "shopkeeper")
    assert row.remote_id == str(topic["id"])
    assert row.remote_url == f"{fake.base_url}/t/new-in-the-shop-socks-scarves/{topic['topic_id']}"


def test_reply_to_a_topic(tmp_path, fake, monkeypatch) -> None:
    first = fake.publish("discourse", {"raw": "x" * 30, "title": "Our winter thread", "slug": "our-winter-thread",
                                       "post_number": 1, "topic_id": 777, "external_id": None})
    run = discourse(tmp_path, fake, monkeypatch, extra="topic_id: 777")
    run.run()
    reply = fake.posts("discourse")[-1]
    assert (reply["topic_id"], reply["post_number"]) == (777, 2)
    assert fake.received("discourse")[0].json == {"raw": run.row().text, "topic_id": 777}
    assert run.row().remote_url == f"{fake.base_url}/t/our-winter-thread/777/2"
    assert first["id"] != reply["id"]


RATE_LIMITED = ("rate_limited: Discourse HTTP 429: You’ve performed this action too many times. Please wait 42 "
                "seconds before trying again.")


@pytest.mark.parametrize("case", [
    FaultCase(F.discourse_rate_limited(42, header=True), RATE_LIMITED, wait=42),  # Retry-After
    FaultCase(F.discourse_rate_limited(42, header=False), RATE_LIMITED, wait=42),  # the body's wait_seconds
    FaultCase(F.DISCOURSE_SERVER_ERROR, "transient: Discourse HTTP 500"),
    FaultCase(F.HTML_PAGE, "transient: Discourse HTTP 502 (an error page, not Discourse's JSON)"),
    FaultCase(F.slow(3.0), "transient: Discourse did not answer in time (POST /posts.json)"),
    FaultCase(F.DISCOURSE_SIMILAR, "permanent: Discourse HTTP 422: Body is too similar to what you recently posted"),
])
def test_rate_limits_wait_transient_faults_are_retried_a_validation_error_fails_with_discourses_text(
        tmp_path, fake, monkeypatch, case) -> None:
    check_fault(discourse(tmp_path, fake, monkeypatch, timeout=1.0), fake, "discourse", case)


def test_lost_answer_is_recognised_on_the_retry_by_external_id(tmp_path, fake, monkeypatch) -> None:
    run = discourse(tmp_path, fake, monkeypatch, timeout=1.0)
    fake.inject("discourse", F.slow(3.0, commit=True))  # the topic is created, the answer never arrives
    run.run()
    assert run.row().status == S.RETRYING
    run.retry_when_due()
    row = run.row()
    assert (row.status, row.remote_id) == (S.SENT, str(fake.posts("discourse")[0]["id"]))
    assert len(fake.posts("discourse")) == 1


def test_revoked_key_pauses_the_channel_and_is_never_shown(tmp_path, fake, monkeypatch) -> None:
    run = discourse(tmp_path, fake, monkeypatch)
    fake.revoke(KEY)
    run.run()
    state = run.paused()
    assert state is not None
    assert state.reason == ("auth: Discourse HTTP 403: You are not permitted to view the requested resource. The API "
                            "username or key is invalid. (check api_key and api_username, and the key's scopes)")
    assert KEY not in run.everything_written()


@pytest.mark.parametrize("published", [True, False])
def test_crash_is_settled_by_external_id(tmp_path, fake, monkeypatch, published) -> None:
    run = discourse(tmp_path, fake, monkeypatch)
    key = run.crash_after_claim(published)
    run.run()
    row = run.row()
    assert row.status == S.SENT
    assert len(fake.posts("discourse")) == 1
    lookups = [r.path for r in fake.received("discourse") if r.method == "GET"]
    assert lookups[0] == f"/t/external_id/{external_id(key)}.json"
    if published:
        assert row.error == "found on the platform after a crash"


def test_reply_channel_cannot_look_up_so_on_unknown_decides(tmp_path, fake, monkeypatch) -> None:
    fake.publish("discourse", {"raw": "x" * 30, "title": "Our winter thread", "slug": "our-winter-thread",
                               "post_number": 1, "topic_id": 777, "external_id": None})
    run = discourse(tmp_path, fake, monkeypatch, extra="topic_id: 777")
    run.crash_after_claim(published=False)
    run.run()
    assert run.row().status == S.UNKNOWN
    assert len(fake.posts("discourse")) == 1  # only the thread's first post


@pytest.mark.parametrize("published", [True, False])
def test_drainage_send_asks_the_forum_about_an_unknown_delivery(tmp_path, fake, monkeypatch, cli,
                                                                published) -> None:
    run = discourse(tmp_path, fake, monkeypatch)
    run.crash_after_claim(published)
    with session(run.dispatcher.engine) as s:  # as a daemon with on_unknown: skip would have left it
        row = s.exec(select(Delivery)).one()
        row.status = S.UNKNOWN
        s.add(row)
        s.commit()
    result = cli("send", "c", "--config", str(tmp_path / "config.yaml"), "--at", "2026-03-01 11:30")
    assert result.exit_code == 0, result.output
    (topic,) = fake.posts("discourse")
    row = run.row()
    assert (row.status, row.remote_id) == (S.SENT, str(topic["id"]))
    if published:
        assert result.output.split()[:2] == ["already", "sent"]
        assert f"found on forum ({topic['id']}) after a crash left it unknown" in " ".join(result.output.split())
    else:
        assert result.output.split()[0] == "sent"
    assert len(fake.received("discourse", f"/{external_id(row.key)}.json")) == 1
