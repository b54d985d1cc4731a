"""Catalog-size campaigns: the work of validate and plan grows with the items, not with items x posts.

Asserted by counting (contexts built, templates rendered), never by timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import drainage.project as project_module
from drainage.posts import plan_campaign
from drainage.project import load_project
from drainage.render import Renderer
from drainage.validation import check_rendering

CAMPAIGN = """\
id: catalog
title: Catalog
start: 2024-01-01
schedule:
  - cron: "0 9,13,18 * * *"
channels:
  - channel: social-outbox
    template: social/gift.j2
    variants:
      - name: plain
      - name: hook
        template: social/launch.j2
        vars: {hook: "Just in:"}
  - channel: forum-outbox
    template: forum/launch.j2
    variants: [{name: a}, {name: b}]
themes:
  - name: christmas
    from: 12-01
    to: 12-26
    vars: {greeting: "Merry Christmas!"}
    templates: {social/gift.j2: social/gift_christmas.j2}
items:
"""


def write_catalog(root: Path, items: int, name: str = "Product") -> None:
    for old in (root / "campaigns").glob("*.yaml"):
        old.unlink()
    lines = [CAMPAIGN] + [f"  - {{id: p{i}, name: '{name} {i}', url: /products/p{i}, price: {10 + i}}}\n"
                          for i in range(items)]
    (root / "campaigns" / "catalog.yaml").write_text("".join(lines), encoding="utf-8")


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts item contexts built and templates rendered."""
    counts = {"item_context": 0, "render": 0}
    item_context, render = project_module.item_context, Renderer.render

    def counting_item_context(item):  # type: ignore[no-untyped-def]
        counts["item_context"] += 1
        return item_context(item)

    def counting_render(self, name, context):  # type: ignore[no-untyped-def]
        counts["render"] += 1
        return render(self, name, context)

    monkeypatch.setattr(project_module, "item_context", counting_item_context)
    monkeypatch.setattr(Renderer, "render", counting_render)
    return counts


def test_validate_and_plan_build_each_item_context_once(project_dir: Path, counted: dict[str, int]) -> None:
    write_catalog(project_dir, 40)
    project = load_project(Path("config.yaml"))
    assert check_rendering(project) == []
    campaign = project.campaigns["catalog"]
    start = datetime(2024, 12, 20, tzinfo=UTC)
    planned = plan_campaign(campaign, start, start + timedelta(days=7))
    for post in planned:
        project.compose(post)
    assert len(planned) > 40  # every item, some twice
    assert counted["item_context"] == 40


def test_validate_renders_grow_linearly_with_the_items(project_dir: Path, counted: dict[str, int]) -> None:
    renders = []
    for items in (20, 40, 80):
        write_catalog(project_dir, items)
        counted["render"] = 0
        assert check_rendering(load_project(Path("config.yaml"))) == []
        renders.append(counted["render"])
    assert renders[1] == 2 * renders[0] and renders[2] == 4 * renders[0]
    # each item with each variant and each theme would be 2 channels x 2 variants x 2 themes = 8 per item; the
    # forum template reads neither variant nor theme, and the social launch template reads no theme
    assert renders[0] < 8 * 20


def test_posts_rendered_alike_still_report_each_variant(project_dir: Path) -> None:
    write_catalog(project_dir, 3, name="A very long product name " * 12)
    problems = check_rendering(load_project(Path("config.yaml")))
    too_long = sorted(p.message.split(" is ")[0] for p in problems if "social-outbox" in p.message)
    assert too_long == [
        f"post for channel 'social-outbox', item 'p{i}', variant '{variant}'{theme}"
        for i in range(3) for variant in ("hook", "plain") for theme in ("", ", theme 'christmas'")]


def test_a_template_cannot_change_the_shared_context(project_dir: Path) -> None:
    write_catalog(project_dir, 3)
    (project_dir / "templates" / "forum" / "launch.j2").write_text("{{ item.update(name='changed') }}{{ item.name }}")
    problems = check_rendering(load_project(Path("config.yaml")))
    assert problems and all("not allowed in a template" in p.message for p in problems)


def test_items_is_still_a_list_a_template_can_combine(project_dir: Path) -> None:
    write_catalog(project_dir, 3)
    (project_dir / "templates" / "forum" / "launch.j2").write_text(
        "{{ (items + [item]) | length }} {{ items[:2] | map(attribute='key') | join(',') }} {{ link(item) }}")
    assert check_rendering(load_project(Path("config.yaml"))) == []


# --- what is built once must still differ where posts differ ----------------------------------------------


def planned_posts(project_dir: Path) -> list:  # type: ignore[type-arg]
    campaign = load_project(Path("config.yaml")).campaigns["catalog"]
    start = datetime(2024, 12, 20, tzinfo=UTC)  # in the christmas theme, then out of it
    return plan_campaign(campaign, start, start + timedelta(days=14))


def test_items_differing_only_in_name_render_differently(project_dir: Path) -> None:
    lines = [CAMPAIGN, "  - {id: a, name: 'Ruby scarf', url: /products/x, price: 10}\n",
             "  - {id: b, name: 'Moss scarf', url: /products/x, price: 10}\n"]
    (project_dir / "campaigns" / "catalog.yaml").write_text("".join(lines), encoding="utf-8")
    project = load_project(Path("config.yaml"))
    campaign = project.campaigns["catalog"]
    start = datetime(2024, 6, 3, 8, tzinfo=UTC)
    posts = [p for p in plan_campaign(campaign, start, start + timedelta(days=1))
             if p.channel == "social-outbox" and p.variant_name == "plain"]
    texts = {p.item.key: project.compose(p).post.text for p in posts}
    assert set(texts) == {"a", "b"}
    assert "Ruby scarf" in texts["a"] and "Moss scarf" not in texts["a"]
    assert "Moss scarf" in texts["b"] and "Ruby scarf" not in texts["b"]


def test_each_variant_and_theme_keeps_its_own_vars_and_tags(project_dir: Path) -> None:
    write_catalog(project_dir, 3)
    project = load_project(Path("config.yaml"))
    seen: dict[tuple[str, str, bool], set[str]] = {}
    for post in planned_posts(project_dir):
        composed = project.compose(post)
        themed = post.theme is not None
        key = (post.channel, post.variant_name, themed)
        seen.setdefault(key, set()).add(composed.post.text.splitlines()[0])
        (link,) = composed.links
        assert link.variant == post.variant_name and link.item == post.item.key
        christmas = themed and post.variant_name == "plain" and post.channel == "social-outbox"  # its own content
        assert f"utm_content={'christmas' if christmas else post.variant_name}" in link.target
        assert f"utm_source={post.channel}" in link.target
    assert all(line.startswith("Just in:") for line in seen[("social-outbox", "hook", False)])
    assert all(line.startswith("Merry Christmas!") for line in seen[("social-outbox", "plain", True)])
    assert all(line.startswith("Gift idea:") for line in seen[("social-outbox", "plain", False)])


def test_the_workers_find_what_one_process_finds(project_dir: Path) -> None:
    lines = [CAMPAIGN] + [f"  - {{id: p{i}, name: '{'Long name ' * (40 if i % 7 == 0 else 1)}{i}', "
                          f"url: /products/p{i}, price: {10 + i}}}\n" for i in range(50)]
    (project_dir / "campaigns" / "catalog.yaml").write_text("".join(lines), encoding="utf-8")
    # in a process of its own: this one may have threads (a server of another test), and is then never forked
    done = subprocess.run([sys.executable, "-c", WORKERS_SCRIPT], capture_output=True, text=True, timeout=240,
                          check=True)
    found = json.loads(done.stdout)
    assert found["forked"] == 1  # the three workers' path was taken
    assert len({p[2].split("'")[3] for p in found["1"]}) == 8  # items p0, p7, ... p49
    assert found["3"] == found["1"]


WORKERS_SCRIPT = """
import json
from pathlib import Path

import drainage.validation as validation
from drainage.project import load_project

forked = []
check_forked = validation._check_forked
validation._check_forked = lambda *args: forked.append(1) or check_forked(*args)
found = {w: validation.check_rendering(load_project(Path("config.yaml")), workers=w) for w in (1, 3)}
out = {w: [[p.file, p.line, p.message] for p in problems] for w, problems in found.items()}
print(json.dumps({**out, "forked": len(forked)}))
"""
