"""The telegram plugin through the dispatcher, with python-telegram-bot against the fake Bot API."""

from __future__ import annotations

import pytest

from drainage.store.models import DeliveryStatus as S
from tests.channels.helpers import ChannelRun, FaultCase, check_fault, crash_during
from tests.fake_platform import FakePlatform
from tests.fake_platform import faults as F

TOKEN = "123456:AAFakeTokenThatMustNeverBeLogged"


def telegram(tmp_path, fake: FakePlatform, monkeypatch: pytest.MonkeyPatch, *, chat: str = "@northwind",
             image: bool = False, extra: str = "", timeout: float = 5) -> ChannelRun:
    monkeypatch.setenv("TG_TOKEN", TOKEN)
    options = f"""
        type: telegram
        token: ${{TG_TOKEN}}
        chat_id: "{chat}"
        base_url: {fake.base_url}/bot
        timeout: {timeout}
        {extra}
    """
    return ChannelRun(tmp_path, fake, "tg", options, image=image)


def test_text_post_is_escaped_html_with_the_tracked_link(tmp_path, fake, monkeypatch) -> None:
    run = telegram(tmp_path, fake, monkeypatch, extra="link_preview: false")
    run.run()
    row = run.row()
    assert (row.status, row.attempts, row.error) == (S.SENT, 1, None)
    (post,) = fake.posts("telegram")
    link = post["shown"].split()[-1]
    assert link.startswith("https://go.example.com/c/")
    assert post["text"] == f"Socks &amp; &lt;Scarves&gt;: 10% off this week with code WARM10. {link}"
    assert post["shown"] == f"Socks & <Scarves>: 10% off this week with code WARM10. {link}"
    assert post["form"]["parse_mode"] == "HTML"
    assert '"is_disabled": true' in post["form"]["link_preview_options"]
    assert (row.remote_id, row.remote_url) == (f"-1001234567890:{post['id']}", f"https://t.me/northwind/{post['id']}")
    calls = [r.path.rsplit("/", 1)[1] for r in fake.received("telegram")]
    assert calls == ["getMe", "sendMessage"]
    assert fake.received("telegram")[1].path == f"/bot{TOKEN}/sendMessage"


def test_photo_with_caption_to_a_group(tmp_path, fake, monkeypatch) -> None:
    run = telegram(tmp_path, fake, monkeypatch, chat="-1009876543210", image=True)
    run.run()
    (post,) = fake.posts("telegram")
    assert post["method"] == "sendPhoto"
    assert post["photo"] == fake.image_url("scarf.png")
    assert post["shown"].startswith("Socks & <Scarves>: 10% off")
    assert post["chat_id"] == "-1009876543210"
    assert run.row().remote_url == f"https://t.me/c/9876543210/{post['id']}"


def test_caption_too_long_goes_out_as_a_message(tmp_path, fake, monkeypatch) -> None:
    monkeypatch.setenv("TG_TOKEN", TOKEN)
    options = f"{{type: telegram, token: '${{TG_TOKEN}}', chat_id: '@northwind', base_url: '{fake.base_url}/bot'}}"
    run = ChannelRun(tmp_path, fake, "tg", options, image=True, template="{{ 'x' * 1500 }} {{ link(item) }}")
    run.run()
    (post,) = fake.posts("telegram")
    assert post["method"] == "sendMessage" and post["text"].startswith("x" * 1500)
    assert run.row().status == S.SENT


def test_flood_control_waits_what_telegram_asked(tmp_path, fake, monkeypatch) -> None:
    run = telegram(tmp_path, fake, monkeypatch)
    fake.inject("telegram", F.telegram_flood(37))
    run.run()
    row = run.row()
    assert (row.status, row.attempts, row.error) == (S.RETRYING, 0, "rate_limited: Telegram flood control: retry "
                                                                    "in 37 s")
    assert run.wait_seconds() == 37
    run.clock.advance(36)
    run.run()
    assert fake.posts("telegram") == []
    run.clock.advance(1)
    run.run()
    assert (run.row().status, len(fake.posts("telegram"))) == (S.SENT, 1)


@pytest.mark.parametrize("case", [
    FaultCase(F.TELEGRAM_SERVER_ERROR, "transient: Telegram unreachable or failing: NetworkError: Internal Server "
                                       "Error", exact=False),
    FaultCase(F.HTML_PAGE, "transient: Telegram unreachable or failing: NetworkError: Bad Gateway (502). Parsing the "
                           "server response", exact=False),
    FaultCase(F.slow(3.0), "transient: Telegram unreachable or failing: TimedOut: Timed out", exact=False),
])
def test_transient_faults_are_retried_then_sent(tmp_path, fake, monkeypatch, case) -> None:
    run = telegram(tmp_path, fake, monkeypatch, timeout=1.0)
    check_fault(run, fake, "telegram", case)
    assert run.row().attempts == 2


@pytest.mark.parametrize("case", [
    FaultCase(F.TELEGRAM_CHAT_NOT_FOUND, "permanent: Telegram refused the message for chat @northwind: Chat not "
                                         "found"),
    FaultCase(F.TELEGRAM_KICKED, "permanent: Telegram refused the message for chat @northwind: Forbidden: bot was "
                                 "kicked from the channel chat"),
    FaultCase(F.TELEGRAM_MIGRATED, "permanent: chat @northwind is now a supergroup: set chat_id: '-100555'"),
])
def test_chat_gone_fails_at_once_with_the_reason(tmp_path, fake, monkeypatch, case) -> None:
    check_fault(telegram(tmp_path, fake, monkeypatch), fake, "telegram", case)


def test_revoked_token_pauses_the_channel_and_never_shows_the_token(tmp_path, fake, monkeypatch) -> None:
    run = telegram(tmp_path, fake, monkeypatch)
    fake.revoke(TOKEN)
    run.run()
    run.clock.advance(minutes=10)
    run.run()
    state = run.paused()
    assert state is not None
    assert state.reason == ("auth: Telegram rejected the bot token (revoked or mistyped); get a valid one from "
                            "@BotFather")
    assert run.row().status == S.RETRYING and run.row().next_attempt_at is None
    assert len(fake.received("telegram")) == 1  # one getMe, then the channel stays paused
    assert "channel.paused" in run.log.getvalue()
    assert TOKEN not in run.everything_written()
    assert TOKEN.split(":")[1] not in run.everything_written()


def test_bad_html_from_a_template_is_permanent(tmp_path, fake, monkeypatch) -> None:
    monkeypatch.setenv("TG_TOKEN", TOKEN)
    options = f"{{type: telegram, token: '${{TG_TOKEN}}', chat_id: '@northwind', base_url: '{fake.base_url}/bot'}}"
    run = ChannelRun(tmp_path, fake, "tg", options)
    (tmp_path / "templates" / "post.j2").unlink()
    (tmp_path / "templates" / "post.html.j2").write_text("<p>{{ item.name }}</p> {{ link(item) }}")
    campaign = tmp_path / "campaigns" / "c.yaml"
    campaign.write_text(campaign.read_text().replace("template: post.j2", "template: post.html.j2"))
    from drainage.project import load_project

    run.dispatcher.set_project(load_project(tmp_path / "config.yaml"))
    run.project = run.dispatcher.project
    run.run()
    assert run.row().status == S.FAILED
    assert run.row().error == ("permanent: Telegram refused the message for chat @northwind: Can't parse "
                               'entities: unsupported start tag "p"')


def test_drainage_send_posts_through_the_plugin_once(tmp_path, fake, monkeypatch, cli) -> None:
    telegram(tmp_path, fake, monkeypatch)
    config = str(tmp_path / "config.yaml")
    first = cli("send", "c", "--config", config, "--at", "2026-03-01 11:30")
    assert first.exit_code == 0, first.output
    again = cli("send", "c", "--config", config, "--at", "2026-03-01 11:30")
    assert "already sent" in again.output
    (post,) = fake.posts("telegram")
    assert post["shown"].startswith("Socks & <Scarves>: 10% off")
    assert TOKEN not in first.output + again.output


def test_a_crash_while_the_bot_checks_its_token_leaves_the_post_claimable_not_unknown(tmp_path, fake,
                                                                                      monkeypatch) -> None:
    run = telegram(tmp_path, fake, monkeypatch)
    crash_during(run, fake, "telegram:getMe")
    assert (run.row().status, fake.posts("telegram")) == (S.PREPARING, [])
    run.run()
    row = run.row()
    assert (row.status, row.attempts, row.error) == (S.SENT, 1, None)
    assert len(fake.posts("telegram")) == 1
    assert "delivery.released" in run.log.getvalue() and "unknown." not in run.log.getvalue()


def test_a_crash_while_the_message_is_sent_leaves_its_outcome_unknown(tmp_path, fake, monkeypatch) -> None:
    run = telegram(tmp_path, fake, monkeypatch)
    crash_during(run, fake, "telegram:sendMessage")
    assert run.row().status == S.SENDING
    run.run()
    row = run.row()
    assert (row.status, row.error) == (S.UNKNOWN, "outcome unknown after a crash and the platform cannot be asked; "
                                                  "not resent (on_unknown: skip)")
    assert len(fake.received("telegram", "/sendMessage")) == 1  # maybe posted (the held call may finish), not resent


def test_drainage_send_never_posts_an_unknown_delivery_again_silently(tmp_path, fake, monkeypatch, cli) -> None:
    run = telegram(tmp_path, fake, monkeypatch)
    key = run.crash_after_claim(published=False)
    run.clock.advance(minutes=5)
    run.run()
    assert run.row().status == S.UNKNOWN
    config = str(tmp_path / "config.yaml")
    refused = cli("send", "c", "--config", config, "--at", "2026-03-01 11:30")
    assert refused.exit_code == 1
    assert " ".join(refused.output.split()) == (
        "unknown c -> tg | 2026-03-01 11:00 UTC | item scarf | c -> tg at 2026-03-01 11:00 UTC: outcome unknown, a "
        f"crash interrupted its send on {run.row().updated_at:%Y-%m-%d %H:%M} UTC and tg cannot say whether it "
        "arrived (it may be there). Look at tg: if the post is missing, `drainage send c --channel tg --force` posts "
        "it as a separate delivery (the unknown one stays in the journal); if it is there, there is nothing to do")
    assert fake.posts("telegram") == []
    forced = cli("send", "c", "--config", config, "--at", "2026-03-01 11:30", "--channel", "tg", "--force")
    assert forced.exit_code == 0, forced.output
    assert len(fake.posts("telegram")) == 1
    assert [(r.key, r.status, r.forced) for r in run.rows()] == [(key, S.UNKNOWN, False),
                                                                 (f"{key}#forced-1", S.SENT, True)]
