"""The indexnow channel through the search submitter, with httpx against the fake IndexNow endpoint: each new
store URL submitted once, a changed one again, an unchanged one never; the protocol's answers mapped."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from drainage.daemon import Daemon
from drainage.errors import ProblemsFound
from drainage.indexnow import SearchSubmitter, Submitted
from drainage.project import Project, load_project
from drainage.reports.query import build_report
from drainage.reports.request import Period, ReportRequest
from drainage.store.db import make_engine, session
from drainage.store.migrate import ensure_schema
from drainage.store.models import ChannelState, Delivery, SeenEntry
from drainage.store.models import DeliveryStatus as S
from tests.databases import database_url
from tests.fake_platform import FakePlatform
from tests.fake_platform import indexnow as N
from tests.project_files import block, config_yaml, write_project

KEY = "4f1c2e8a9b7d4e2f8c1a"
NOW = datetime.fromisoformat("2026-03-01T10:00:00+00:00")
FEED = "https://shop.example.com/collections/all.atom"

CAMPAIGN = """\
title: Catalog
status: {status}
items:
  - id: scarf
    name: Scarf
    url: /products/scarf
    price: {price}
  - id: hat
    name: Hat
    url: https://shop.example.com/products/hat
  - id: post
    name: Winter post
    url: https://blog.example.com/winter
feeds:
  - url: {feed}
    channels:
      - channel: out
        template: post.j2
schedule:
  - cron: "0 11 * * *"
channels:
  - channel: {channel}
    template: post.j2
"""


class Search:
    """A project with an indexnow channel `search`, its database and a submitter."""

    def __init__(self, root: Path, fake: FakePlatform, monkeypatch: pytest.MonkeyPatch, options: str = "") -> None:
        monkeypatch.setenv("INDEXNOW_KEY", KEY)
        search = {"type": "indexnow", "key": "${INDEXNOW_KEY}", "endpoint": fake.base_url, **block(options)}
        self.config = write_project(
            root, config_yaml(root, store={"link_hosts": ["blog.example.com"]},
                              channels={"out": {"type": "outbox"}, "search": search}),
            templates={"post.j2": "{{ item.name }} {{ link(item) }}\n"})
        self.campaign(price=20)
        self.engine = make_engine(database_url(root))
        ensure_schema(self.engine)
        self.submitter = SearchSubmitter(self.engine)
        self.now = NOW

    def campaign(self, price: float, status: str = "active", channel: str = "out") -> None:
        (self.config.parent / "campaigns" / "catalog.yaml").write_text(
            CAMPAIGN.format(price=price, status=status, feed=FEED, channel=channel))

    def project(self) -> Project:
        return load_project(self.config)

    def run(self, later: timedelta = timedelta(minutes=5)) -> list[Submitted]:
        self.now += later
        return asyncio.run(self.submitter.run(self.project(), self.now))

    def feed_entry(self, link: str, title: str, fingerprint: str = "{}") -> None:
        with session(self.engine) as s:
            row = s.get(SeenEntry, ("catalog", FEED, link)) or SeenEntry(
                campaign="catalog", url=FEED, digest=link, identity=link)
            row.link, row.title, row.fingerprint = link, title, fingerprint
            s.add(row)
            s.commit()

    def journal(self) -> list[Delivery]:
        with session(self.engine) as s:
            return list(s.exec(select(Delivery).order_by(Delivery.id)).all())


def submitted(fake: FakePlatform) -> list[list[str]]:
    return [post["urlList"] for post in fake.posts("indexnow")]


def test_each_new_url_once_a_changed_one_again_an_unchanged_one_never(tmp_path, fake, monkeypatch) -> None:
    search = Search(tmp_path, fake, monkeypatch)
    search.feed_entry("https://shop.example.com/products/gloves", "Gloves")
    search.feed_entry("https://elsewhere.example.org/x", "Not the store's")
    (result,) = search.run()
    assert (result.channel, result.urls, result.batches, result.errors) == ("search", 4, 2, [])
    shop = ["https://shop.example.com/products/gloves", "https://shop.example.com/products/hat",
            "https://shop.example.com/products/scarf"]
    assert submitted(fake) == [["https://blog.example.com/winter"], shop]  # one batch per host
    first = fake.posts("indexnow")[1]
    assert (first["host"], first["key"], first["keyLocation"]) == ("shop.example.com", KEY, None)

    search.run()  # nothing changed: nothing is sent
    assert len(fake.received("indexnow")) == 2

    search.campaign(price=25)  # the scarf changed
    search.feed_entry("https://shop.example.com/products/gloves", "Gloves", '{"price": "9.00"}')  # so did gloves
    search.feed_entry("https://shop.example.com/products/boots", "Boots")  # a new entry
    search.run()
    assert submitted(fake)[2:] == [["https://shop.example.com/products/boots",
                                    "https://shop.example.com/products/gloves",
                                    "https://shop.example.com/products/scarf"]]
    search.run()
    assert len(fake.received("indexnow")) == 3

    rows = search.journal()
    assert [(r.campaign, r.channel, r.item, r.status) for r in rows] == [
        ("indexnow", "search", "blog.example.com", S.SENT), ("indexnow", "search", "shop.example.com", S.SENT),
        ("indexnow", "search", "shop.example.com", S.SENT)]
    assert rows[1].text == "\n".join(shop) and rows[1].remote_id == "3 URLs (202)"


def test_paused_campaigns_are_left_out_unless_named(tmp_path, fake, monkeypatch) -> None:
    search = Search(tmp_path, fake, monkeypatch)
    search.campaign(price=20, status="paused")
    search.run()
    assert submitted(fake) == []
    search.config.write_text(search.config.read_text() + "    campaigns: [catalog]\n")
    search.run()
    assert len(submitted(fake)) == 2


def test_batches_hold_at_most_batch_size_urls(tmp_path, fake, monkeypatch) -> None:
    search = Search(tmp_path, fake, monkeypatch, "batch_size: 2\nkey_location: https://shop.example.com/k.txt")
    for n in range(3):
        search.feed_entry(f"https://shop.example.com/products/p{n}", f"P{n}")
    (result,) = search.run()
    assert result.errors == ["permanent: IndexNow HTTP 422: The URL does not belong to the host (URLs not of the "
                             "host, or the key does not match the protocol)"]  # the blog's: key file elsewhere
    assert [len(urls) for urls in submitted(fake)] == [2, 2, 1]
    assert fake.posts("indexnow")[-1]["keyLocation"] == "https://shop.example.com/k.txt"


def test_rate_limit_waits_and_keeps_the_urls_pending(tmp_path, fake, monkeypatch) -> None:
    search = Search(tmp_path, fake, monkeypatch)
    fake.inject("indexnow", N.TOO_MANY)
    (result,) = search.run()
    assert result.errors == ["rate_limited: IndexNow HTTP 429 (too many requests)"]
    assert [(r.status, r.error) for r in search.journal()] == [
        (S.FAILED, "rate_limited: IndexNow HTTP 429 (too many requests)")]
    assert search.run(timedelta(minutes=5)) == []  # within Retry-After (600 s): not even tried
    assert len(fake.received("indexnow")) == 1
    search.run(timedelta(minutes=6))
    assert len(submitted(fake)) == 2


@pytest.mark.parametrize(("fault", "error"), [
    (N.SERVER_ERROR, "transient: IndexNow HTTP 503: Service Unavailable"),
    (N.BAD_REQUEST, "permanent: IndexNow HTTP 400: Invalid request parameters (bad request)"),
])
def test_failures_are_journalled_and_tried_again_later(tmp_path, fake, monkeypatch, fault, error) -> None:
    search = Search(tmp_path, fake, monkeypatch)
    fake.inject("indexnow", fault)
    (result,) = search.run()
    assert result.errors == [error]
    assert search.run(timedelta(seconds=10)) == []  # backing off
    search.run(timedelta(minutes=2))
    assert len(submitted(fake)) == 2


def test_urls_of_another_host_are_refused_for_good(tmp_path, fake, monkeypatch) -> None:
    search = Search(tmp_path, fake, monkeypatch, "key_location: https://cdn.example.net/key.txt")
    (result,) = search.run()
    assert result.errors == 2 * ["permanent: IndexNow HTTP 422: The URL does not belong to the host (URLs not of the "
                             "host, or the key does not match the protocol)"]


def test_a_key_not_valid_pauses_the_channel_and_is_never_shown(tmp_path, fake, monkeypatch) -> None:
    search = Search(tmp_path, fake, monkeypatch)
    fake.revoke(KEY)
    search.run()
    with session(search.engine) as s:
        state = s.get(ChannelState, "search")
    assert state is not None and state.paused
    assert state.reason == ("auth: IndexNow HTTP 403: User is unauthorized to access the site. Please verify the "
                            "site using the key and try again. (the key is not valid: the store must serve it at "
                            "https://{host}/{key}.txt)")
    assert all(KEY not in (r.error or "") for r in search.journal())
    assert search.run(timedelta(hours=1)) == []  # paused until resumed
    assert len(fake.received("indexnow")) == 1


def test_a_campaign_cannot_post_to_a_search_channel(tmp_path, fake, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    search = Search(tmp_path, fake, monkeypatch)
    search.campaign(price=20, channel="search")
    with pytest.raises(ProblemsFound) as raised:
        search.project()
    assert [str(p) for p in raised.value.problems] == [
        "campaigns/catalog.yaml:22:14: channel 'search' is a search channel: it submits the "
        "store's own URLs by itself, it posts nothing (remove it from the campaign's channels)"]


def test_a_malformed_key_is_a_config_problem(tmp_path, fake, monkeypatch) -> None:
    search = Search(tmp_path, fake, monkeypatch)
    monkeypatch.setenv("INDEXNOW_KEY", "short")
    with pytest.raises(ProblemsFound) as raised:
        search.project()
    assert "an IndexNow key is 8 to 128 characters of a-z, A-Z, 0-9 and '-'" in str(raised.value)


def test_the_daemon_submits_in_its_single_pass(tmp_path, fake, monkeypatch) -> None:
    search = Search(tmp_path, fake, monkeypatch)
    asyncio.run(Daemon(search.config, search.project(), search.engine).run(once=True))
    assert len(submitted(fake)) == 2


def test_reports_count_a_search_channels_submissions_per_day(tmp_path, fake, monkeypatch) -> None:
    search = Search(tmp_path, fake, monkeypatch)
    search.run()  # two batches (two hosts) on 2026-03-01
    search.feed_entry("https://shop.example.com/products/boots", "Boots")
    search.run(timedelta(days=1))  # one on 2026-03-02
    day = NOW.date()
    report = build_report(search.engine, ReportRequest(Period(day, day + timedelta(days=1)), by="day",
                                                       channels=("search",)))
    assert [(row.day, row.posts_sent) for row in report.rows] == [(day, 2), (day + timedelta(days=1), 1)]
    (channel,) = report.by_channel
    assert (channel.channel, channel.posts_sent) == ("search", 3)
