"""The fan-out's slotted rendering (constant parts once, per-recipient values filled in) matches Jinja2's."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import TemplateError

from drainage.email.compose import Composer, Subscriber
from drainage.posts import posts_for_slots
from drainage.project import load_project
from tests.email_helpers import SLOT, write_project

SLOTTABLE = [
    # the helpers' own templates (spring.html.j2 / spring.txt.j2) and variations on them
    None,
    "<p>{{ subscriber['name'] }} / {{ subscriber.plan }} / {{ subscriber.email }}</p>"
    "{% for i in items %}<a href=\"{{ link(i) }}\">{{ i.name }}</a>{% endfor %}{{ unsubscribe_url }}",
    "{% if item.price > 10 %}<b>{{ subscriber.name }}</b>{% else %}cheap{% endif %}{{ link(item) }}{{ link(item) }}"
    "{{ link('/x', content='a') }}{{ link('/x', content='b') }}",
    "{% set greeting = 'Hi' %}{{ greeting }} {{ subscriber.name }}{# comment #} {{ item | price }}",
]
NOT_SLOTTABLE = [
    "{{ subscriber.name | upper }} {{ link(item) }}",
    "{% if subscriber.plan == 'gold' %}gold {% endif %}{{ subscriber.name }}",
    "{% for subscriber in [1, 2] %}{{ subscriber }}{% endfor %}",
    "{% set s = subscriber %}{{ s.name }}",
    "{% filter upper %}{{ subscriber.name }}{% endfilter %}",
    "{% autoescape false %}{{ subscriber.name }}{% endautoescape %}",
    "{{ link(subscriber.plan) }}",
    "{{ items | random }} {{ subscriber.name }}",
    "{{ subscriber.name ~ '!' }}",
]
SUBSCRIBERS = [
    Subscriber("a1", "ann@example.com", "Ann", "de_DE", {"plan": "gold"}),
    Subscriber("b2", "bob@example.com", "<script>alert(1)</script> & \"Co\" 'x'", "", {"plan": 7}),
    Subscriber("c3", "cy@example.com", "Çý 🧶", "fr_FR", {}),  # no plan: StrictUndefined raises where used
]


def composers(root: Path, html: str | None, subject: str | None = None) -> tuple[Composer, Composer]:
    config = write_project(root, 2525)
    if html is not None:
        (root / "templates" / "email" / "spring.html.j2").write_text(html, encoding="utf-8")
        (root / "templates" / "email" / "spring.txt.j2").write_text(html, encoding="utf-8")  # not autoescaped
    if subject is not None:
        campaign = root / "campaigns" / "spring.yaml"
        campaign.write_text(campaign.read_text().replace("subject: \"Für {{ subscriber.name or 'you' }}: "
                                                         "{{ item.name }}\"", f"subject: \"{subject}\""))
    project = load_project(config)
    planned = posts_for_slots(project.campaigns["spring"], 0, [SLOT])[0]
    channel = project.channel("news")

    def url(ref: str) -> str:
        return f"https://go.example.com/u/{ref}~token"

    return (Composer(project, planned, channel, url, slotted=True),
            Composer(project, planned, channel, url, slotted=False))


def outcome(composer: Composer, subscriber: Subscriber) -> object:
    try:
        r = composer.render(subscriber)
    except (TemplateError, ValueError, TypeError, LookupError) as exc:
        return f"{exc.__class__.__name__}: {exc}"
    return (r.subject, r.html, r.text, r.links, r.unsubscribe_url)


@pytest.mark.parametrize("html", SLOTTABLE + NOT_SLOTTABLE)
def test_slotted_rendering_gives_what_jinja_gives(tmp_path: Path, html: str | None) -> None:
    slotted, plain = composers(tmp_path, html)
    assert (slotted._slotted["html"] is not None) == (html in SLOTTABLE)
    assert (slotted._slotted["text"] is not None) == (html in SLOTTABLE)
    assert slotted._slotted["subject"] is None  # `subscriber.name or 'you'`: Jinja2 renders it
    for subscriber in SUBSCRIBERS * 2:
        assert outcome(slotted, subscriber) == outcome(plain, subscriber)


def test_slotted_html_is_autoescaped_text_is_not_and_links_are_per_recipient(tmp_path: Path) -> None:
    slotted, plain = composers(tmp_path, None, subject="New: {{ item.name }} for {{ subscriber.name }}")
    assert all(slotted._slotted[k] is not None for k in ("html", "text", "subject"))
    ann, bob = (slotted.render(s) for s in SUBSCRIBERS[:2])
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;Co&#34; &#39;x&#39;" in (bob.html or "")
    assert "Hello <script>alert(1)</script> & \"Co\" 'x'," in bob.text
    assert bob.subject == "New: Merino scarf for <script>alert(1)</script> & \"Co\" 'x'"
    assert [k.recipient for k in ann.links] == ["a1", "a1"] and [k.recipient for k in bob.links] == ["b2", "b2"]
    assert {k.code for k in ann.links}.isdisjoint(k.code for k in bob.links)
    for subscriber in SUBSCRIBERS:
        assert outcome(slotted, subscriber) == outcome(plain, subscriber)


def test_a_template_failing_everywhere_fails_each_recipient_as_before(tmp_path: Path) -> None:
    slotted, plain = composers(tmp_path, "{{ item.nope }} {{ subscriber.name }}")
    assert slotted._slotted["html"] is None
    assert outcome(slotted, SUBSCRIBERS[0]) == outcome(plain, SUBSCRIBERS[0]) \
        == "UndefinedError: 'dict object' has no attribute 'nope'"
