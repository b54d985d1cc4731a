"""The tracker's link-in-bio page: the items an instagram channel posted, each through a link tracked for that
channel, so its clicks show in `drainage report` as the instagram channel."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from drainage.store.models import DeliveryStatus as S
from tests.channels.helpers import ChannelRun
from tests.tracker_helpers import run as run_async
from tests.tracker_helpers import running

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.4 Mobile/15E148 Safari/604.1")
PREVIEW = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
BIO = """\
bio_pages:
  shop:
    channel: insta
    title: "Northwind <Knits>"
    intro: "New this week & on sale"
    cache_seconds: 120
"""


def posted(tmp_path, fake, monkeypatch) -> ChannelRun:
    monkeypatch.setenv("INSTAGRAM_TOKEN", "EAAIgToken")
    options = f"""
        type: instagram
        ig_user_id: "1784"
        access_token: ${{INSTAGRAM_TOKEN}}
        graph_url: {fake.base_url}
        poll_every: 0.02
    """
    fake.settings["ig_polls"] = 0
    run = ChannelRun(tmp_path, fake, "insta", options, image=True, config_extra=BIO,
                     template="{{ item.name }}: 10% off with code WARM10, link in bio\n")
    run.run()
    assert run.row().status == S.SENT
    return run


def test_page_lists_the_posted_item_through_a_link_tracked_for_instagram(tmp_path, fake, monkeypatch, cli) -> None:
    run = posted(tmp_path, fake, monkeypatch)
    config = run.project.config

    async def scenario() -> tuple[str, dict[str, str], int, str, float, float]:
        async with running(config) as (tracker, client):
            tracker.bio.now = lambda: run.clock.now() + timedelta(days=1)
            page = await client.get("/l/shop", headers={"user-agent": IPHONE})
            await client.get("/l/shop", headers={"user-agent": PREVIEW})
            missing = (await client.get("/l/other")).status_code
            (href,) = re.findall(r'<a href="([^"]+)"><img', page.text)
            assert href.startswith("https://go.example.com/c/")
            click = await client.get(href.removeprefix("https://go.example.com"), headers={"user-agent": IPHONE})
            assert click.status_code == 302
            await tracker.recorder.flush()
            views = tracker.metrics.registry.get_sample_value
            human = views("drainage_tracker_bio_views_total", {"page": "shop", "agent_class": "human"})
            preview = views("drainage_tracker_bio_views_total", {"page": "shop", "agent_class": "preview"})
            return page.text, dict(page.headers), missing, href, human or 0, preview or 0

    html, headers, missing, href, human, preview = run_async(scenario)
    assert headers["cache-control"] == "public, max-age=120"
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert "<script" not in html and 'name="viewport"' in html
    assert "<h1>Northwind &lt;Knits&gt;</h1>" in html and "<p>New this week &amp; on sale</p>" in html
    assert f'<li><a href="{href}"><img src="{fake.image_url("scarf.png")}" alt="" loading="lazy" width="64" ' \
           'height="64"><span>Socks &amp; &lt;Scarves&gt;</span></a></li>' in html
    assert missing == 404
    assert (human, preview) == (1, 1)
    result = cli("report", "--since", "3650d", "--format", "json", "--config", str(tmp_path / "config.yaml"))
    assert result.exit_code == 0, result.output
    rows = {r["channel"]: r for r in json.loads(result.stdout)["rows"]}
    assert list(rows) == ["insta"]
    assert rows["insta"]["human_clicks"] == 1


@pytest.mark.parametrize(("page", "problem"), [
    ("shop:\n    channel: instaa", "bio_pages.shop.channel: no channel 'instaa' in channels (did you mean 'insta'?)"),
    ("Shop Page:\n    channel: insta", "bio page name 'Shop Page' is not a URL path segment"),
])
def test_bad_bio_pages_are_reported_with_their_line(tmp_path, fake, monkeypatch, cli, page, problem) -> None:
    run = posted(tmp_path, fake, monkeypatch)
    config = tmp_path / "config.yaml"
    config.write_text(config.read_text().replace(BIO, f"bio_pages:\n  {page}\n"))
    result = cli("validate", "--config", str(config))
    assert result.exit_code == 2
    assert problem in result.output
    assert run.name == "insta"
