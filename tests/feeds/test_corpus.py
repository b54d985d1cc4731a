"""feedparser's own test documents (a vendored subset, see tests/data/feedparser-corpus/README.md) through the
real poller and dispatcher over a local HTTP server: no internal error, no hang, and no post with garbage.

One campaign polls every document as a feed of its own, posting its entries at once (`backfill`), so every
entry drainage accepts becomes a post on an outbox channel and every other one is skipped with its reason
(most of these small documents test one element, and their entries lack a title or a link); each post is
then read for the garbage a loose reading produces: the text 'None', an empty headline, markup in plain text.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from drainage.clock import FakeClock
from drainage.posts import feed_delivery_key
from drainage.store.db import session
from drainage.store.models import Delivery, FeedState, SeenEntry
from tests.feeds.helpers import dispatcher_for, outbox
from tests.project_files import config_yaml, write_project

CORPUS = Path(__file__).resolve().parent.parent / "data" / "feedparser-corpus"
HEADER = re.compile(rb"^Header:\s*Content-type:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)
MARKUP = re.compile(r"<[A-Za-z/!?][^<>]*>")

STORE = {"name": "Corpus", "link_hosts": ["*.com", "*.org", "*.net", "*.example", "*.test"]}  # many hosts

FEED = """\
  - url: {url}
    every: 1h
    backfill: 1000
    cap: 1000
    channels:
      - channel: box
        template: post.j2
"""

TEMPLATE = """\
{{ entry.title }}
{% if entry.price %}{{ entry | price }}{% endif %}
{{ entry.summary | shorten(120) }}
{{ entry.url }}
"""


def documents() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*.xml"))


@pytest.mark.slow
def test_feedparser_corpus_polls_without_internal_errors_hangs_or_garbage_posts(tmp_path, feed_server) -> None:
    paths = documents()
    assert len(paths) > 400
    urls = {}
    for path in paths:
        body = path.read_bytes()
        declared = HEADER.search(body)
        content_type = declared.group(1).decode("latin-1") if declared else "application/xml"
        urls[feed_server.serve("/" + path.relative_to(CORPUS).as_posix(), body, content_type=content_type)] = path
    config = write_project(tmp_path, config_yaml(tmp_path, store=STORE,
                                                 channels={"box": {"type": "outbox", "kind": "forum"}}),
                           campaigns={"corpus.yaml": "title: Corpus\nfeeds:\n" + "".join(FEED.format(url=url)
                                                                                          for url in urls)},
                           templates={"post.j2": TEMPLATE})
    dispatcher = dispatcher_for(config, FakeClock(datetime(2026, 3, 1, 10, tzinfo=UTC)))

    async def one_pass() -> None:
        async with asyncio.timeout(600):  # a hang fails here instead of stalling the suite
            await dispatcher.run_all()

    asyncio.run(one_pass())

    with session(dispatcher.engine) as s:
        states = {url: s.get(FeedState, ("corpus", url)) for url in urls}
    assert all(state is not None and state.polled_at is not None for state in states.values())
    errors = {urls[url].relative_to(CORPUS).as_posix(): state.error for url, state in states.items()
              if state is not None and state.error}
    internal = {name: error for name, error in errors.items()
                if error.startswith("internal error") or "parsing the document" in error}
    assert internal == {}
    good = len(urls) - len(errors)
    assert good > len(urls) * 0.8, errors  # most of feedparser's documents are feeds drainage reads

    with session(dispatcher.engine) as s:
        seen = s.exec(select(SeenEntry)).all()
        sent = {d.key for d in s.exec(select(Delivery)).all() if d.status == "sent"}
    skipped = [row for row in seen if json.loads(row.fingerprint).get("skipped")]
    posted = [row for row in seen if feed_delivery_key("corpus", "box", row.digest) in sent]
    assert len(seen) > 100 and posted  # most of the corpus's entries lack a title or a link: those are skipped
    assert sorted(r.digest for r in skipped + posted) == sorted(r.digest for r in seen)  # each one or the other
    posts = [record["text"] for record in outbox(tmp_path, "box")]
    assert len(posts) == len(posted)
    garbage = [text for text in posts if re.search(r"\bNone\b", text) or not text.splitlines()[0].strip()
               or MARKUP.search(text)]
    assert garbage == []
