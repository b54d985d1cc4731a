"""Rendering one campaign email for each recipient: subject, HTML (autoescaped), text part, tracked links.

A `Composer` is prepared once per fan-out (templates compiled, the campaign's context built) and then renders
each recipient with only what differs: `subscriber`, the link maker (whose links carry the recipient's
pseudonymous ref, so a click is attributed to email, campaign, variant and recipient) and `unsubscribe_url`.
`validate`, `preview` and the journal use the same path with a sample subscriber.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any, Protocol

from inscriptis import get_text
from jinja2 import Template, TemplateError

from drainage.campaigns import LoadedCampaign
from drainage.channel import Channel, Post
from drainage.config import LoadedConfig
from drainage.email.slots import Calls, Recipient, Slotted
from drainage.links import TrackedLink
from drainage.markets import market_of_locale, markets_of
from drainage.posts import Composed, PlannedPost
from drainage.render import InlineTemplateError, LinkContext, Renderer, is_html


class Project(Protocol):
    """What composing an email needs of a project (`drainage.project.Project` is one): its templates, config and
    campaigns, and how it builds a post's template context and link maker."""

    config: LoadedConfig
    campaigns: dict[str, LoadedCampaign]
    renderer: Renderer

    def link_context(self, planned: PlannedPost, channel: Channel, recipient: str) -> LinkContext: ...

    def context(self, planned: PlannedPost, channel: Channel, links: LinkContext) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Subscriber:
    """A recipient as templates see it (`subscriber.name`, `subscriber.locale`, its attributes...)."""

    ref: str
    email: str
    name: str = ""
    locale: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)

    def context(self) -> dict[str, Any]:
        return {**self.attributes, "email": self.email, "name": self.name, "locale": self.locale}

    @classmethod
    def from_row(cls, ref: str, email: str, name: str, locale: str, attributes: str | None) -> Subscriber:
        if not attributes or attributes == "{}":
            return cls(ref, email, name or "", locale or "", {})
        try:
            extra = json.loads(attributes)
        except ValueError:
            extra = {}
        return cls(ref, email, name or "", locale or "", extra if isinstance(extra, dict) else {})


SAMPLE = Subscriber(ref="", email="subscriber@example.com", name="Sam Sample", locale="en_US")
"""Who `validate` and `preview` render an email for."""


@dataclass
class Rendered:
    """One recipient's email, before it becomes MIME."""

    subject: str
    html: str | None
    text: str
    links: list[TrackedLink]
    unsubscribe_url: str


class Composer:
    """Renders one planned email post for any number of recipients."""

    def __init__(self, project: Project, planned: PlannedPost, channel: Channel,
                 unsubscribe_url: Any = None, *, slotted: bool = False) -> None:
        self.project, self.planned, self.channel = project, planned, channel
        env = project.renderer.env
        use = planned.use
        self.html_template: Template | None = env.get_template(planned.template) if is_html(planned.template) \
            else None
        text_name = planned.themed(use.text_template) if use.text_template else (
            None if self.html_template is not None else planned.template)
        self.text_template = env.get_template(text_name) if text_name else None
        try:
            self.subject_template = env.from_string(planned.subject or planned.campaign.model.title)
        except TemplateError as exc:
            raise InlineTemplateError(exc) from exc
        self.public_url = project.config.config.tracker.public_url.rstrip("/")
        self.unsubscribe_url = unsubscribe_url or (lambda ref: f"{self.public_url}/u/SAMPLE-TOKEN")
        self.footer_name = escape(project.config.config.store.name)
        placeholder = project.link_context(planned, channel, "")
        self.base = project.context(planned, channel, placeholder)
        self._links = project.link_context(planned, channel, "")  # reused: only the recipient changes
        self._links.targets = {}  # tagged link targets, the same for everyone
        self._calls = Calls([])
        self._slotted: dict[str, Slotted | None] = {}
        if slotted:  # a fan-out: the constant parts are rendered once (see `drainage.email.slots`)
            for key, template in (("html", self.html_template), ("text", self.text_template)):
                if template is not None and template.name is not None and env.loader is not None:
                    source = env.loader.get_source(env, template.name)[0]
                    self._slotted[key] = Slotted.prepare(template, source, self.base, self._calls)
            self._slotted["subject"] = Slotted.prepare(self.subject_template, planned.subject or
                                                       planned.campaign.model.title, self.base, self._calls)

    def _render(self, key: str, template: Template, context: dict[str, Any], recipient: Recipient) -> str:
        slotted = self._slotted.get(key)
        return slotted.render(recipient) if slotted is not None else template.render(context)

    def render(self, subscriber: Subscriber) -> Rendered:
        """Render for one recipient; raises jinja2/link errors like any template."""
        links = self._links
        links.recipient, links.made = subscriber.ref, []
        url = self.unsubscribe_url(subscriber.ref)
        fields = subscriber.context()
        context = {**self.base, "link": links, "subscriber": fields, "unsubscribe_url": url}
        recipient = Recipient(fields, links, url, self._calls)
        html = self._render("html", self.html_template, context, recipient).strip() \
            if self.html_template is not None else None
        if self.text_template is not None:
            text = self._render("text", self.text_template, context, recipient).strip()
        else:
            text = get_text(html or "").strip()
        try:
            subject = " ".join(self._render("subject", self.subject_template, context, recipient).split())
        except (TemplateError, ValueError, TypeError, ArithmeticError, LookupError) as exc:
            raise InlineTemplateError(exc) from exc
        return Rendered(subject, _with_html_footer(html, url, self.footer_name), _with_text_footer(text, url),
                        list(links.made), url)


def _with_html_footer(html: str | None, url: str, store: str) -> str | None:
    """The visible unsubscribe link, added when the template does not show `unsubscribe_url` itself."""
    if html is None or escape(url) in html or url in html:
        return html
    footer = (f'<p style="font-size:12px;color:#666">You receive this because you subscribed to {store}. '
              f'<a href="{escape(url)}">Unsubscribe</a></p>')
    at = html.lower().rfind("</body>")
    return html[:at] + footer + html[at:] if at >= 0 else html + "\n" + footer


def _with_text_footer(text: str, url: str) -> str:
    return text if url in text else f"{text}\n\n--\nUnsubscribe: {url}"


def planned_for(project: Project, post: Post) -> PlannedPost:
    """The planned post a journal payload was rendered from (to render it again per recipient)."""
    campaign = project.campaigns[post.campaign]
    uses = [(i, u) for i, u in enumerate(campaign.model.channels) if u.channel == post.channel]
    index, use = next(((i, u) for i, u in uses if any(v.name == post.variant for v in u.variants)), uses[0])
    market = next((m for m in campaign.markets if m.id == post.market), None)
    item = next(i for i in campaign.items_for(market) if i.key == post.item)
    variant = next((v for v in use.variants if v.name == post.variant), None)
    theme = campaign.theme_on(post.slot.astimezone(campaign.tz_of(market)).date(), market)
    return PlannedPost(campaign, use, index, post.slot, item, variant, theme, market=market)


def audience_of(project: Project, planned: PlannedPost, channel: Channel) -> Callable[[str, str], bool] | None:
    """Which subscribers (by locale and `country` attribute) a market's mail goes to on a channel of every market
    (None: the whole lists).

    A subscriber's locale and country pick their market (drainage.markets.market_of_locale); a channel with
    `market:` mails its own lists whole."""
    if planned.market is None or getattr(channel.options, "market", None):
        return None
    markets, wanted = markets_of(project.config.config), planned.market.id

    def accepts(locale: str, country: str) -> bool:
        found = market_of_locale(locale, markets, country)
        return found is not None and found.id == wanted

    return accepts


def compose_sample(project: Project, planned: PlannedPost, channel: Channel) -> Composed:
    """What `validate`, `preview` and the journal show for an email post: the sample subscriber's email."""
    rendered = Composer(project, planned, channel).render(SAMPLE)
    post = Post(key=planned.key, campaign=planned.campaign.id, channel=channel.name, item=planned.item.key,
                variant=planned.variant_name, slot=planned.slot, text=rendered.text, subject=rendered.subject,
                html=rendered.html, image_url=planned.item.image, links=[link.url for link in rendered.links],
                market=planned.market_id)
    return Composed(planned, post, rendered.links, len(rendered.text), None)
