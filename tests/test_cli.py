"""End to end through the command line on the example project: validate, plan, preview, send, schema, db."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select

from drainage.store.db import make_engine, session
from drainage.store.models import Delivery, DeliveryStatus, Link
from tests.conftest import REPO, project_engine
from tests.databases import ON_POSTGRES


def outbox_records(root: Path, channel: str) -> list[dict]:
    path = root / "outbox" / f"{channel}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_help_lists_commands(cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("validate", "plan", "preview", "send", "schema", "db"):
        assert command in result.output


def test_examples_validate(project_dir, cli) -> None:
    result = cli("validate")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == ("ok: config.yaml and 5 campaigns are valid; every template renders within "
                                     "its channel's limit")


def test_send_twice_posts_once(project_dir, cli) -> None:
    first = cli("send", "scarf-launch", "--channel", "social-outbox", "--at", "2026-11-27 09:30")
    assert first.exit_code == 0, first.output
    assert "sent" in first.output
    second = cli("send", "scarf-launch", "--channel", "social-outbox", "--at", "2026-11-27 10:15")
    assert second.exit_code == 0, second.output
    assert "already sent" in second.output
    records = outbox_records(project_dir, "social-outbox")
    assert len(records) == 1
    assert records[0]["key"] == "scarf-launch|social-outbox|merino-scarf-red|benefit|2026-11-27T08:00:00Z"
    engine = project_engine(project_dir)
    with session(engine) as s:
        rows = s.exec(select(Delivery)).all()
    assert [(r.status, r.attempts, r.remote_id) for r in rows] == [
        (DeliveryStatus.SENT, 1, records[0]["id"])]


def test_force_sends_again_as_a_separate_delivery(project_dir, cli) -> None:
    cli("send", "scarf-launch", "--channel", "social-outbox", "--at", "2026-11-27 09:30")
    forced = cli("send", "scarf-launch", "--channel", "social-outbox", "--at", "2026-11-27 09:30", "--force")
    assert forced.exit_code == 0, forced.output
    records = outbox_records(project_dir, "social-outbox")
    assert len(records) == 2
    assert records[1]["key"].endswith("#forced-1")


def test_sent_post_text_and_links_are_what_preview_showed(project_dir, cli) -> None:
    shown = cli("preview", "scarf-launch", "--channel", "social-outbox", "--at", "2026-11-27 09:00")
    assert shown.exit_code == 0, shown.output
    cli("send", "scarf-launch", "--channel", "social-outbox", "--at", "2026-11-27 09:00")
    record = outbox_records(project_dir, "social-outbox")[0]
    assert record["text"] == (
        "Soft as a cloud, warm as a hug. Meet the Merino scarf, ruby red: $49.00.\n"
        f"{record['links'][0]}\n#Merino #WinterStyle #Handmade")
    assert record["links"][0] in shown.output
    engine = project_engine(project_dir)
    with session(engine) as s:
        link = s.get(Link, record["links"][0].rsplit("/", 1)[1])
    assert link is not None
    assert link.target == ("https://shop.example.com/products/merino-scarf?color=red&utm_source=social-outbox"
                           "&utm_medium=social&utm_campaign=merino-launch-2026&utm_content=benefit")
    assert (link.campaign, link.channel, link.item, link.variant) == (
        "scarf-launch", "social-outbox", "merino-scarf-red", "benefit")
    assert link.target in shown.output


def test_round_robin_continues_from_the_journal(project_dir, cli) -> None:
    for day in ("2026-11-26", "2026-11-27", "2026-11-30"):
        result = cli("send", "scarf-launch", "--channel", "social-outbox", "--at", f"{day} 09:00")
        assert result.exit_code == 0, result.output
    records = outbox_records(project_dir, "social-outbox")
    assert [(r["item"], r["variant"]) for r in records] == [
        ("merino-scarf-red", "benefit"), ("merino-scarf-grey", "benefit"), ("merino-scarf-red", "scarcity")]


def test_dry_run_sends_nothing(project_dir, cli) -> None:
    result = cli("send", "weekly-roundup", "--dry-run", "--at", "2026-11-29 16:00")
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output
    assert not (project_dir / "outbox").exists()


def test_plan_lists_upcoming_posts_in_local_time(project_dir, cli) -> None:
    result = cli("plan", "--days", "2", "--from", "2026-11-29T00:00:00+00:00", "--campaign", "weekly-roundup")
    assert result.exit_code == 0, result.output
    assert "3 posts planned from 2026-11-29 00:00 UTC for 2 days" in result.output
    assert "2026-11-29 15:00 CET" in result.output
    for channel in ("social-outbox", "forum-outbox", "newsletter-outbox"):
        assert channel in result.output


@pytest.mark.skipif(ON_POSTGRES, reason="an SQLite file is what a read-only command must not create")
def test_plan_does_not_create_a_database(project_dir, cli) -> None:
    assert cli("plan").exit_code == 0
    assert not (project_dir / "drainage.db").exists()


def test_preview_shows_theme_length_and_tracked_urls(project_dir, cli) -> None:
    result = cli("preview", "christmas-sale", "--channel", "social-outbox", "--at", "2026-12-10 11:30")
    assert result.exit_code == 0, result.output
    assert "theme christmas" in result.output
    assert "template social/gift_christmas.j2" in result.output
    assert "/280" in result.output
    assert "https://go.example.com/c/" in result.output
    assert "utm_campaign=christmas-sale" in result.output


def test_unknown_campaign_is_a_clear_error(project_dir, cli) -> None:
    result = cli("send", "scarf-lunch")
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == "config.yaml: no campaign 'scarf-lunch' (did you mean 'scarf-launch'?)"


def test_paused_campaign_is_not_sent(project_dir, cli) -> None:
    path = project_dir / "campaigns" / "launch.yaml"
    path.write_text(path.read_text().replace("status: active", "status: paused"))
    result = cli("send", "scarf-launch", "--at", "2026-11-27 09:30")
    assert result.exit_code == 2
    assert "campaigns/launch.yaml:5:9: campaign 'scarf-launch' is paused (set 'status: active', or pass --force " \
           "to send it anyway)" in result.output


def test_secret_values_never_printed(project_dir, cli, monkeypatch) -> None:
    monkeypatch.setenv("OUTBOX_DIR", "s3cr3t-value-outbox")
    config = project_dir / "config.yaml"
    config.write_text(config.read_text().replace("path: outbox\n    kind: social",
                                                 "path: ${OUTBOX_DIR}\n    kind: social\n    bogus: 1"))
    result = cli("validate")
    assert result.exit_code == 2
    assert "s3cr3t" not in result.output
    assert "unknown key 'bogus' in channels.social-outbox" in result.output


def test_schema_files_are_current(cli) -> None:
    for kind in ("config", "campaign"):
        result = cli("schema", kind)
        assert result.exit_code == 0
        committed = json.loads((REPO / "schemas" / f"{kind}.schema.json").read_text())
        assert json.loads(result.output) == committed, f"run `drainage schema --output schemas` ({kind})"


def test_db_upgrade_and_current(project_dir, cli) -> None:
    from drainage.store.migrate import head_revision

    head = head_revision(make_engine("sqlite://"))
    assert head is not None and head != "0001"
    up = cli("db", "upgrade")
    assert up.exit_code == 0, up.output
    assert f"database at revision {head} (was None)" in up.output
    again = cli("db", "upgrade")
    assert "already up to date" in again.output
    assert cli("db", "current").output.strip() == f"current: {head}, newest: {head}"


def test_config_before_or_after_the_command_and_the_later_one_wins(project_dir, cli, monkeypatch) -> None:
    (project_dir / "sub").mkdir()
    (project_dir / "config.yaml").rename(project_dir / "sub" / "config.yaml")
    for name in ("campaigns", "templates"):
        (project_dir / name).rename(project_dir / "sub" / name)
    good, missing = str(project_dir / "sub" / "config.yaml"), "nowhere.yaml"
    ok = "ok: sub/config.yaml and 5 campaigns are valid"
    assert cli("--config", good, "validate").output.startswith(ok)
    assert cli("-c", good, "validate").output.startswith(ok)
    assert cli("validate", "--config", good).output.startswith(ok)
    assert cli("--config", missing, "validate", "--config", good).output.startswith(ok)
    after = cli("--config", good, "validate", "--config", missing)
    assert (after.exit_code, after.output.splitlines()[0]) == (2, "nowhere.yaml: file not found")
    monkeypatch.setenv("DRAINAGE_CONFIG", missing)
    assert cli("--config", good, "validate").output.startswith(ok)  # typed beats the environment
    assert cli("validate").output.splitlines()[0] == "nowhere.yaml: file not found"
    monkeypatch.delenv("DRAINAGE_CONFIG")
    listed = cli("--config", good, "subscribers", "list")
    assert listed.exit_code == 0, listed.output
    current = cli("--config", good, "db", "current")
    assert current.exit_code == 0, current.output


def test_commands_resolve_only_the_secrets_they_use(project_dir, cli, monkeypatch) -> None:
    config = project_dir / "config.yaml"
    text = config.read_text()
    text = text.replace("tracker:\n", "tracker:\n  reports_token: ${DRAINAGE_REPORTS_TOKEN}\n", 1)
    telegram = '  tg: {type: telegram, token: "${TELEGRAM_TOKEN}", chat_id: "@shop"}\n'
    text = text.replace("channels:\n", "channels:\n" + telegram, 1)
    config.write_text(text)
    monkeypatch.setenv("DRAINAGE_REPORTS_TOKEN", "r" * 24)
    monkeypatch.setenv("TELEGRAM_TOKEN", "123:abc")
    sent = cli("send", "scarf-launch", "--channel", "social-outbox", "--at", "2026-11-27 09:30")
    assert sent.exit_code == 0, sent.output
    monkeypatch.delenv("DRAINAGE_REPORTS_TOKEN")
    monkeypatch.delenv("TELEGRAM_TOKEN")

    for command in (["report"], ["report", "--format", "csv"], ["prune", "--older-than", "90d"], ["db", "current"],
                    ["db", "upgrade"], ["subscribers", "list"]):
        result = cli(*command)
        assert result.exit_code == 0, (command, result.output)
        assert "DRAINAGE_REPORTS_TOKEN" not in result.output and "TELEGRAM_TOKEN" not in result.output

    checked = cli("validate")  # validate still checks every secret is set
    assert checked.exit_code == 2
    assert [line.split(": ", 1)[1] for line in checked.output.splitlines()[:2]] == [
        "environment variable DRAINAGE_REPORTS_TOKEN is not set (export DRAINAGE_REPORTS_TOKEN=... before running, "
        "or write ${DRAINAGE_REPORTS_TOKEN:-default})",
        "environment variable TELEGRAM_TOKEN is not set (export TELEGRAM_TOKEN=... before running, or write "
        "${TELEGRAM_TOKEN:-default})"]
