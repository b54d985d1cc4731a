"""The pinterest plugin through the dispatcher, with httpx against the fake Pinterest API v5."""

from __future__ import annotations

import pytest

from channels.pinterest import PinterestChannel, PinterestOptions
from drainage.store.models import DeliveryStatus as S
from tests.channels.helpers import ChannelRun, FaultCase, check_fault
from tests.fake_platform import FakePlatform
from tests.fake_platform import faults as F
from tests.fake_platform import pinterest as P

TOKEN = "pina_TokenNeverLogged"


def pinterest(tmp_path, fake: FakePlatform, monkeypatch: pytest.MonkeyPatch, *, image: bool = True,
              extra: str = "") -> ChannelRun:
    monkeypatch.setenv("PINTEREST_TOKEN", TOKEN)
    options = f"""
        type: pinterest
        board_id: "549755885175"
        access_token: ${{PINTEREST_TOKEN}}
        api_url: {fake.base_url}
        timeout: 1
    """ + extra
    return ChannelRun(tmp_path, fake, "pins", options, image=image)


def test_pin_with_image_title_description_and_tracked_link(tmp_path, fake, monkeypatch) -> None:
    run = pinterest(tmp_path, fake, monkeypatch)
    run.run()
    row = run.row()
    assert (row.status, row.error) == (S.SENT, None)
    (pin,) = fake.posts("pinterest")
    link = pin["description"].split()[-1]
    assert link.startswith("https://go.example.com/c/")
    assert pin == {"id": pin["id"], "board_id": "549755885175", "board_section_id": None,
                   "title": "New in the shop: Socks & <Scarves>", "link": link,
                   "description": f"Socks & <Scarves>: 10% off this week with code WARM10. {link}",
                   "image_url": fake.image_url("scarf.png"), "created_at": "2026-03-01T11:00:00"}
    (request,) = fake.received("pinterest")
    assert (request.method, request.path, request.headers["authorization"]) == ("POST", "/v5/pins",
                                                                                f"Bearer {TOKEN}")
    assert (row.remote_id, row.remote_url) == (str(pin["id"]), f"https://www.pinterest.com/pin/{pin['id']}/")


def test_sandbox_selects_the_sandbox_host() -> None:
    def channel(**options: object) -> PinterestChannel:
        return PinterestChannel("p", PinterestOptions(board_id="1", access_token="t", **options))

    assert channel().base_url == "https://api.pinterest.com"
    assert channel(sandbox=True).base_url == "https://api-sandbox.pinterest.com"
    assert channel(sandbox=True, api_url="http://127.0.0.1:9/").base_url == "http://127.0.0.1:9"


RATE_LIMITED = "rate_limited: Pinterest error 8 (HTTP 429): You have exceeded your rate limit. Try again later."


@pytest.mark.parametrize("case", [
    FaultCase(P.pinterest_rate_limited(120), RATE_LIMITED, wait=120),
    FaultCase(P.pinterest_rate_limited(None), RATE_LIMITED, wait=60),  # no Retry-After: a minute
])
def test_rate_limit_waits_retry_after(tmp_path, fake, monkeypatch, case) -> None:
    check_fault(pinterest(tmp_path, fake, monkeypatch), fake, "pinterest", case)


@pytest.mark.parametrize("case", [
    FaultCase(P.PINTEREST_SERVER_ERROR, "transient: Pinterest error 3 (HTTP 503): Service is temporarily "
                                        "unavailable."),
    FaultCase(F.HTML_PAGE, "transient: Pinterest answered HTTP 502 with an error page"),
    FaultCase(F.slow(2.0), "transient: Pinterest unreachable: ReadTimeout"),
    FaultCase(P.PINTEREST_BAD_IMAGE, "permanent: Pinterest error 1 (HTTP 400): Invalid request: Sorry, we could not "
                                     "fetch the image."),
])
def test_transient_faults_are_retried_and_a_bad_request_fails_with_pinterests_message(tmp_path, fake, monkeypatch,
                                                                                      case) -> None:
    check_fault(pinterest(tmp_path, fake, monkeypatch), fake, "pinterest", case)


def test_expired_token_pauses_the_channel_and_is_never_shown(tmp_path, fake, monkeypatch) -> None:
    run = pinterest(tmp_path, fake, monkeypatch)
    fake.revoke(TOKEN)
    run.run()
    state = run.paused()
    assert state is not None
    assert state.reason == "auth: Pinterest error 2 (HTTP 401): Authentication failed. (get a new access token)"
    assert run.row().status == S.RETRYING
    assert TOKEN not in run.everything_written()


def test_missing_scope_pauses_the_channel(tmp_path, fake, monkeypatch) -> None:
    run = pinterest(tmp_path, fake, monkeypatch)
    fake.inject("pinterest", P.PINTEREST_NO_SCOPE)
    run.run()
    state = run.paused()
    assert state is not None and state.reason.startswith("auth: Pinterest error 29 (HTTP 403): You are not")


@pytest.mark.parametrize("published", [True, False])
def test_crash_is_settled_by_looking_the_pin_up(tmp_path, fake, monkeypatch, published) -> None:
    run = pinterest(tmp_path, fake, monkeypatch)
    run.crash_after_claim(published)
    run.run()
    row = run.row()
    assert row.status == S.SENT
    (pin,) = fake.posts("pinterest")  # found and not pinned again, or not found and pinned once
    assert row.remote_id == str(pin["id"])
    calls = [(r.method, r.path) for r in fake.received("pinterest")]
    assert calls == [("POST", "/v5/pins"), ("GET", "/v5/boards/549755885175/pins")] if published else \
        [("GET", "/v5/boards/549755885175/pins"), ("POST", "/v5/pins")]
    if published:
        assert row.error == "found on the platform after a crash"


def test_lookup_ignores_an_older_pin_with_the_same_description(tmp_path, fake, monkeypatch) -> None:
    run = pinterest(tmp_path, fake, monkeypatch)
    run.crash_after_claim(published=False)
    fake.publish("pinterest", {"board_id": "549755885175", "description": run.row().text, "link": None,
                               "created_at": "2026-02-28T11:00:00"})
    run.run()
    assert run.row().status == S.SENT and len(fake.posts("pinterest")) == 2


def test_validate_requires_an_image_and_a_title_of_at_most_100_characters(tmp_path, fake, monkeypatch, cli) -> None:
    pinterest(tmp_path, fake, monkeypatch, image=False)
    campaign = tmp_path / "campaigns" / "c.yaml"
    campaign.write_text(campaign.read_text().replace('subject: "New in the shop: {{ item.name }}"',
                                                     'subject: "{{ item.name * 10 }}"'))
    result = cli("validate", "--config", str(tmp_path / "config.yaml"))
    assert result.exit_code == 2, result.output
    assert "has no image, and this channel publishes only posts with one: give the item an `image`" in result.output
    assert "has a title (subject) of 170 characters, over the channel's limit of 100" in result.output
