"""The instagram plugin through the dispatcher, with facebook-sdk (the Graph client it shares with the
facebook plugin) against the fake Instagram content publishing API."""

from __future__ import annotations

import pytest

from drainage.store.models import DeliveryStatus as S
from tests.channels.helpers import ChannelRun, FaultCase, check_fault
from tests.fake_platform import FakePlatform
from tests.fake_platform import faults as F

TOKEN = "EAAInstagramTokenNeverLogged"
ACCOUNT = "17841400000000001"


def instagram(tmp_path, fake: FakePlatform, monkeypatch: pytest.MonkeyPatch, *, image: bool = True,
              ready_within: float = 5, on_unknown: str = "skip", template: str | None = None,
              item_lines: str = "") -> ChannelRun:
    monkeypatch.setenv("INSTAGRAM_TOKEN", TOKEN)
    options = f"""
        type: instagram
        ig_user_id: "{ACCOUNT}"
        access_token: ${{INSTAGRAM_TOKEN}}
        graph_url: {fake.base_url}
        ready_within: {ready_within}
        poll_every: 0.02
        timeout: 1
    """
    kwargs = {"template": template} if template else {}
    return ChannelRun(tmp_path, fake, "insta", options, image=image, on_unknown=on_unknown, item_lines=item_lines,
                      **kwargs)


def test_container_polled_until_finished_then_published(tmp_path, fake, monkeypatch) -> None:
    fake.settings["ig_polls"] = 2  # IN_PROGRESS twice, then FINISHED
    run = instagram(tmp_path, fake, monkeypatch)
    run.run()
    row = run.row()
    assert (row.status, row.error) == (S.SENT, None)
    (post,) = fake.posts("instagram")
    assert post["caption"].startswith("Socks & <Scarves>: 10% off this week with code WARM10. https://go.example")
    assert (post["image_url"], post["media_type"]) == (fake.image_url("scarf.png"), "IMAGE")
    calls = [(r.method, r.path, r.query.get("fields")) for r in fake.received("instagram")]
    container = fake.posts("instagram-containers")[0]["id"]
    assert calls == [("POST", f"/v25.0/{ACCOUNT}/media", None)] + \
        [("GET", f"/v25.0/{container}", "status_code,status")] * 3 + \
        [("POST", f"/v25.0/{ACCOUNT}/media_publish", None), ("GET", f"/v25.0/{post['id']}", "permalink")]
    assert fake.received("instagram")[0].form["access_token"] == TOKEN
    assert (row.remote_id, row.remote_url) == (str(post["id"]), f"https://www.instagram.com/p/FAKE{post['id']}/")


def test_several_images_make_a_carousel(tmp_path, fake, monkeypatch) -> None:
    run = instagram(tmp_path, fake, monkeypatch,
                    item_lines=f"images: ['{fake.image_url('side.png')}', '{fake.image_url('back.png')}']")
    run.run()
    assert run.row().status == S.SENT
    (post,) = fake.posts("instagram")
    assert post["media_type"] == "CAROUSEL"
    assert post["children"] == [fake.image_url(n) for n in ("scarf.png", "side.png", "back.png")]
    children = [c for c in fake.posts("instagram-containers") if c["carousel_item"]]
    assert len(children) == 3 and all(c["caption"] is None for c in children)


def test_container_in_error_fails_with_instagrams_status(tmp_path, fake, monkeypatch) -> None:
    run = instagram(tmp_path, fake, monkeypatch, image=False, item_lines=f"image: {fake.image_url('broken.png')}")
    run.run()
    row = run.row()
    assert (row.status, row.attempts) == (S.FAILED, 1)
    assert row.error == ("permanent: Instagram could not prepare the media (ERROR): Error: Media download has "
                         "failed. The media URI doesn't meet our requirements.")
    assert fake.posts("instagram") == []


def test_container_not_ready_in_time_is_retried(tmp_path, fake, monkeypatch) -> None:
    fake.settings["ig_polls"] = 10**6
    run = instagram(tmp_path, fake, monkeypatch, ready_within=0.1)
    run.run()
    row = run.row()
    assert (row.status, row.attempts) == (S.RETRYING, 1)
    container = fake.posts("instagram-containers")[0]["id"]
    assert row.error == f"transient: Instagram's media container {container} was still IN_PROGRESS after 0.1 s"


@pytest.mark.parametrize("case", [
    FaultCase(F.graph_error(4, "(#4) Application request limit reached", status=403, transient=True),
              "rate_limited: Instagram error ", exact=False, wait=3600),
    FaultCase(F.graph_error(9, "Application request limit reached", subcode=2207042),
              "rate_limited: Instagram error ", exact=False, wait=3600),
])
def test_rate_limits_wait_an_hour(tmp_path, fake, monkeypatch, case) -> None:
    check_fault(instagram(tmp_path, fake, monkeypatch), fake, "instagram", case)


@pytest.mark.parametrize("case", [
    FaultCase(F.FB_SERVER_ERROR, "transient: Instagram error 2: An unexpected error has occurred.", exact=False),
    FaultCase(F.HTML_PAGE, "transient: Graph API answered with an error page instead of JSON", exact=False),
    FaultCase(F.graph_error(100, "Invalid parameter", subcode=2207026),
              "permanent: Instagram error 100/2207026: Invalid parameter"),
])
def test_transient_faults_are_retried_and_a_bad_request_fails_with_the_graph_message(tmp_path, fake, monkeypatch,
                                                                                     case) -> None:
    check_fault(instagram(tmp_path, fake, monkeypatch), fake, "instagram", case)


def test_expired_token_pauses_the_channel_and_is_never_shown(tmp_path, fake, monkeypatch) -> None:
    run = instagram(tmp_path, fake, monkeypatch)
    fake.revoke(TOKEN)
    run.run()
    state = run.paused()
    assert state is not None
    assert state.reason == ("auth: Instagram error 190/463: Error validating access token: Session has expired. "
                            "(get a new access token)")
    assert TOKEN not in run.everything_written()


@pytest.mark.parametrize("published", [True, False])
def test_crash_is_settled_by_looking_the_caption_up(tmp_path, fake, monkeypatch, published) -> None:
    run = instagram(tmp_path, fake, monkeypatch)
    run.crash_after_claim(published)
    run.run()
    row = run.row()
    assert row.status == S.SENT
    assert len(fake.posts("instagram")) == 1
    if published:
        assert row.error == "found on the platform after a crash"
        assert row.remote_id == str(fake.posts("instagram")[0]["id"])


def test_validate_requires_an_image_and_at_most_30_hashtags(tmp_path, fake, monkeypatch, cli) -> None:
    tags = " ".join(f"#tag{i}" for i in range(31))
    instagram(tmp_path, fake, monkeypatch, image=False,
              template="{{ item.name }} " + tags + " https://x.example/#not-a-tag {{ link(item) }}\n")
    result = cli("validate", "--config", str(tmp_path / "config.yaml"))
    assert result.exit_code == 2, result.output
    assert "item 'scarf' has no image, and this channel publishes only posts with one" in result.output
    assert "has 31 hashtags, over the channel's limit of 30" in result.output
