"""`/reports` on the tracker (token or nothing), the `drainage report` and `drainage prune` commands, retention
that never changes a report, the migration that fills the daily rollups, and reach stored from receipts."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select, text

from drainage.channel import Receipt
from drainage.config import load_config
from drainage.journal import record_reach, record_sent
from drainage.reports.query import build_report
from drainage.reports.render_csv_json import to_json
from drainage.reports.request import parse_request
from drainage.store.db import make_engine, session
from drainage.store.migrate import upgrade
from drainage.store.models import Click, Delivery
from drainage.store.retention import prune_raw_clicks
from drainage.tracker.app import Tracker
from tests.databases import ON_POSTGRES, database_url
from tests.project_files import config_yaml, write_project
from tests.report_helpers import D1, D3, build_history
from tests.waiting import eventually_async

TOKEN = "reports-token-for-tests-0123456789"
QUERY = f"from={D1}&to={D3}"


def write_config(root: Path, **tracker: str) -> Path:
    """The tracker's clicks are written by a thread here: the pages are the subject, not the writer process."""
    tracker = {"reports_token": "${DRAINAGE_REPORTS_TOKEN:-}", "writer": "thread", **tracker}
    return write_project(root, config_yaml(root, store={"name": "Northwind"}, tracker=tracker))


def call(root: Path, requests: list[tuple[str, dict[str, str]]], token: str | None = TOKEN) -> list[httpx.Response]:
    """Start the tracker app on the history in `root` and send GET requests to it."""
    loaded, problems = load_config(write_config(root), "config.yaml",
                                   {"DRAINAGE_REPORTS_TOKEN": token} if token else {})
    assert loaded is not None, problems

    async def scenario() -> list[httpx.Response]:
        engine = make_engine(loaded.database_url)
        tracker = Tracker(loaded, engine)
        await tracker.startup()
        try:
            transport = httpx.ASGITransport(app=tracker)
            async with httpx.AsyncClient(transport=transport, base_url="https://go.example.com") as client:
                return [await client.get(path, headers=headers) for path, headers in requests]
        finally:
            await tracker.shutdown()
            engine.dispose()

    return asyncio.run(scenario())


def _clicks_left(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM clicks")).scalar() or 0)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    build_history(tmp_path).dispose()
    return tmp_path


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_reports_refuse_a_missing_or_wrong_token(history: Path) -> None:
    bearer = {"authorization": f"Bearer {TOKEN}"}
    answers = call(history, [
        (f"/reports?{QUERY}", {}),
        (f"/reports?{QUERY}", {"authorization": "Bearer wrong-token-wrong-token-wrong"}),
        (f"/reports?{QUERY}", {"authorization": f"Bearer {TOKEN[:-1]}"}),
        (f"/reports?{QUERY}", {"authorization": f"Token {TOKEN}"}),
        (f"/reports?{QUERY}", {"authorization": "Bearer"}),
        (f"/reports?{QUERY}", basic("ops", "wrong")),
        (f"/reports?{QUERY}", {"authorization": "Basic !!not-base64!!"}),
        (f"/reports?{QUERY}&token={TOKEN}", {}),                      # never in the URL
        (f"/reports?{QUERY}&format=json", bearer),
        (f"/reports?{QUERY}&format=json", basic("anyone", TOKEN)),   # what a browser sends after the 401
    ])
    for answer in answers[:8]:
        assert answer.status_code == 401
        assert answer.json() == {"error": "a valid reports token is required (Authorization: Bearer <token>)"}
        assert 'Basic realm="drainage reports"' in answer.headers["www-authenticate"]
        assert TOKEN not in answer.text
    assert [a.status_code for a in answers[8:]] == [200, 200]
    assert answers[8].headers["cache-control"] == "no-store, private"
    bearer_doc, basic_doc = (answers[n].json() for n in (8, 9))
    for doc in (bearer_doc, basic_doc):
        doc.pop("generated_at")  # to the second: two answers may straddle one
    assert bearer_doc["totals"]["human_clicks"] == 17 and bearer_doc == basic_doc


def test_without_a_configured_token_reports_are_off(history: Path) -> None:
    for token in (None, ""):
        [answer] = call(history, [("/reports", {"authorization": "Bearer "})], token=token)
        assert answer.status_code == 503
        assert answer.json()["error"].startswith("reports are off: set tracker.reports_token")


def test_reports_take_the_commands_filters_as_parameters(history: Path) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    html, as_json, as_csv, filtered, bad_by, bad_format, bad_top = call(history, [
        (f"/reports?{QUERY}&by=variant", auth),
        (f"/reports?{QUERY}&by=day&format=json", auth),
        (f"/reports?{QUERY}&by=campaign&format=csv", auth),
        (f"/reports?{QUERY}&campaign=autumn&channel=forum&channel=social&format=json&top=1", auth),
        ("/reports?by=week", auth),
        ("/reports?format=pdf", auth),
        ("/reports?top=ten", auth),
    ])
    assert html.status_code == 200 and html.headers["content-type"] == "text/html; charset=utf-8"
    assert "Channel report 2026-11-02 .. 2026-11-04 (UTC days), by variant" in html.text
    expected = build_report(make_engine(database_url(history)),
                            parse_request(start=str(D1), end=str(D3), by="day"))
    expected_doc = json.loads(to_json(expected))
    got = as_json.json()
    for doc in (expected_doc, got):
        del doc["generated_at"]
    assert got == expected_doc
    assert as_csv.headers["content-disposition"] == \
        'attachment; filename="drainage-report-campaign-2026-11-02-2026-11-04.csv"'
    assert as_csv.text.splitlines()[1].startswith("2026-11-02,2026-11-04,,autumn,,,,1,2,0,3,0,2,3,0,0,,1,15.50")
    doc = filtered.json()
    assert doc["filters"] == {"campaign": ["autumn"], "channel": ["forum", "social"], "market": []}
    assert [(r["channel"], r["human_clicks"]) for r in doc["rows"]] == [("forum", 3)] and len(doc["top_posts"]) == 1
    assert (bad_by.status_code, bad_by.json()["error"]) == (
        400, "cannot group by 'week': expected one of channel, campaign, variant, item, day, market")
    assert (bad_format.status_code, bad_format.json()["error"]) == (
        400, "format must be one of html, json, csv, got 'pdf'")
    assert bad_top.status_code == 400


def test_a_short_reports_token_is_refused_without_showing_it(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    loaded, problems = load_config(path, "config.yaml", {"DRAINAGE_REPORTS_TOKEN": "hunter2"})
    assert loaded is None
    assert [str(p) for p in problems] == [
        "config.yaml:9:18: tracker.reports_token: the reports token is too short: use at least 16 random "
        "characters (e.g. `openssl rand -hex 24`)"]
    assert "hunter2" not in str(problems)
    loaded, problems = load_config(write_config(tmp_path, keep_raw_clicks="12h"), "config.yaml", {})
    assert loaded is None and [str(p) for p in problems] == [
        "config.yaml:11:20: tracker.keep_raw_clicks: '12h' is too short: keep raw clicks at least 2d (a late write may "
        "still add to yesterday's unique visitors)"]


def test_report_command_prints_tables_and_writes_files(history: Path, cli, monkeypatch) -> None:
    monkeypatch.chdir(history)
    write_config(history)
    result = cli("report", "--from", str(D1), "--to", str(D3), "--by", "variant")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].strip() == "Channel report 2026-11-02 .. 2026-11-04 (UTC days), by variant"
    assert [line.split() for line in lines if line.split()[:3] == ["spring", "social", "a"]] == [[
        "spring", "social", "a", "2", "0", "1", "7", "3", "1", "4", "0.86%", "1", "50.00", "25.00"]]
    assert any(line.split() == ["total", "5", "3", "1", "17", "4", "3", "13", "1.13%", "6", "137.84", "27.57"]
               for line in lines)
    assert "top 5 posts by human clicks" in result.output and "https://social.example.com/p1" in result.output
    assert "too little data to tell" in result.output
    assert "transient: HTTP # from forum.example.com (gave up after # attempts)" in result.output
    for name in ("r.json", "r.csv", "r.html", "r.txt"):
        result = cli("report", "--from", str(D1), "--to", str(D3), "--output", name)
        assert result.exit_code == 0, result.output
    assert json.loads((history / "r.json").read_text())["totals"]["orders"] == 6
    assert (history / "r.csv").read_text().startswith("period_from,period_to,day,campaign,channel,")
    assert (history / "r.html").read_text().startswith("<!doctype html>")
    assert "Channel report" in (history / "r.txt").read_text()
    result = cli("report", "--format", "json", "--since", "3650d")
    assert result.exit_code == 0 and json.loads(result.stdout)["period"]["days"] == 3650


def test_report_command_explains_bad_options_and_a_missing_database(tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path)
    result = cli("report", "--since", "soon")
    assert result.exit_code == 2
    assert "error: --since: 'soon' is not a duration" in result.output
    result = cli("report", "--format", "pdf")
    assert result.exit_code == 2 and "error: --format must be one of table, csv, json, html, got 'pdf'" in result.output
    result = cli("report")
    if not ON_POSTGRES:  # no SQLite file yet (a PostgreSQL database always exists)
        assert result.exit_code == 1 and "nothing has been sent or clicked" in result.output
    assert "Traceback" not in result.output


def test_pruning_raw_clicks_never_changes_a_report(history: Path, cli, monkeypatch) -> None:
    engine = make_engine(database_url(history))
    request = parse_request(start=str(D1), end=str(D3), by="variant")
    before = json.loads(to_json(build_report(engine, request)))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM clicks")).scalar() == 31
    # keeping 3 days at Nov 6 12:00 deletes the clicks before D2 (Nov 3) 12:00: D0 2, D1 9, D2 morning 9
    now = datetime(2026, 11, 6, 12, tzinfo=UTC)
    pruned = prune_raw_clicks(engine, timedelta(days=3), now=now, chunk=5)
    assert (pruned.clicks, pruned.before) == (20, datetime(2026, 11, 3, 12, tzinfo=UTC))
    with engine.connect() as conn:
        oldest = conn.execute(select(func.min(Click.clicked_at))).scalar()
        assert oldest is not None and oldest.astimezone(UTC).strftime("%Y-%m-%d %H:%M") == "2026-11-03 12:00"
        assert str(conn.execute(text("SELECT min(day) FROM visitor_days")).scalar()) == "2026-11-03"
        assert conn.execute(text("SELECT sum(clicks) FROM click_rollups")).scalar() == 31  # rollups stay
    after = json.loads(to_json(build_report(engine, request)))
    for doc in (before, after):
        del doc["generated_at"]
    assert after == before
    with pytest.raises(ValueError, match="at least 2 days"):
        prune_raw_clicks(engine, timedelta(days=1))
    engine.dispose()
    monkeypatch.chdir(history)
    write_config(history)
    result = cli("prune")
    assert result.exit_code == 1 and "set tracker.keep_raw_clicks in config.yaml" in result.output
    result = cli("prune", "--older-than", "1d")
    assert result.exit_code == 1 and "keep raw clicks at least 2d" in result.output
    write_config(history, keep_raw_clicks="2d")
    result = cli("prune")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("deleted 11 raw clicks and")  # all that was left: the history is in 2026-11
    assert "rollups and reports are unchanged" in result.output


def test_the_tracker_prunes_raw_clicks_when_retention_is_set(history: Path) -> None:
    loaded, problems = load_config(write_config(history, keep_raw_clicks="2d"), "config.yaml", {})
    assert loaded is not None, problems

    async def scenario() -> None:
        engine = make_engine(loaded.database_url)
        tracker = Tracker(loaded, engine)
        tracker.prune_delay = 0
        await tracker.startup()
        try:
            await eventually_async(lambda: _clicks_left(engine) == 0, what="the hourly prune of raw clicks")
        finally:
            await tracker.shutdown()
            engine.dispose()

    asyncio.run(scenario())
    engine = make_engine(loaded.database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM clicks")).scalar() == 0
        assert conn.execute(text("SELECT sum(human + preview + bot) FROM link_days")).scalar() == 31
    engine.dispose()


@pytest.mark.skipif(ON_POSTGRES, reason="copies rows between two SQLite files with ATTACH")
def test_the_migration_fills_daily_rollups_from_existing_clicks(tmp_path: Path) -> None:
    built = tmp_path / "built"
    built.mkdir()
    build_history(built).dispose()
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0002")
    with engine.begin() as conn:  # the rows a 0002 tracker wrote (no link_days, no order_days yet)
        conn.execute(text(f"ATTACH DATABASE '{built / 'drainage.db'}' AS new"))
        for table in ("click_rollups", "visitor_days", "links", "orders"):  # the columns a 0002 table has
            columns = ", ".join(r[1] for r in conn.execute(text(f"PRAGMA main.table_info({table})")))
            conn.execute(text(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM new.{table}"))
        link_days = conn.execute(text("SELECT * FROM new.link_days ORDER BY day, code")).all()
        order_days = conn.execute(text("SELECT * FROM new.order_days ORDER BY day, key")).all()
    with engine.begin() as conn:
        conn.execute(text("DETACH DATABASE new"))
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT * FROM link_days ORDER BY day, code")).all() == link_days
        assert conn.execute(text("SELECT * FROM order_days ORDER BY day, key")).all() == order_days
    assert len(link_days) >= 8 and len(order_days) == 7
    engine.dispose()
    shutil.rmtree(built)


def test_receipts_and_later_updates_store_the_reach_of_a_post(tmp_path: Path) -> None:
    engine = build_history(tmp_path)
    with session(engine) as s:
        row = Delivery(key="k", campaign="c", channel="mail", item="i", slot_at=datetime(2026, 11, 2, tzinfo=UTC),
                       status="sending")
        s.add(row)
        s.commit()
        delivery_id = row.id or 0
    record_sent(engine, delivery_id, Receipt("msg-1", recipients=1200))
    record_reach(engine, delivery_id, impressions=5000)
    with session(engine) as s:
        stored = s.get(Delivery, delivery_id)
        assert stored is not None and (stored.status, stored.recipients, stored.impressions) == ("sent", 1200, 5000)
