"""`drainage send`: render a campaign's current slot and send it now, through the journal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from drainage import journal
from drainage.campaigns import LoadedCampaign
from drainage.channel import Channel, post_from_json, post_to_json
from drainage.email.manual import send_email
from drainage.email.service import EmailServices
from drainage.errors import AlreadySent, ChannelError, OutcomeUnknown, Paused, Problem, ProblemsFound
from drainage.markets import Market
from drainage.posts import PlannedPost, posts_for_slots, slots_for
from drainage.priors import prior_counter
from drainage.project import Composed, Project
from drainage.schedule import parse_duration
from drainage.store.db import session
from drainage.store.models import DeliveryStatus, utcnow
from drainage.workers import worker_id

LOOKBACKS = (timedelta(days=1), timedelta(days=8), timedelta(days=32), timedelta(days=367))


@dataclass
class Outcome:
    """What happened to one post of a manual send."""

    composed: Composed
    status: str  # sent | already sent | unknown | failed | paused | dry run
    detail: str = ""


def latest_slot(campaign: LoadedCampaign, use_index: int, at: datetime, market: Market | None = None
                ) -> datetime | None:
    """The most recent slot at or before `at` for one channel of a campaign (within a year), in `market`."""
    use = campaign.model.channels[use_index]
    for back in LOOKBACKS:
        slots = slots_for(campaign, use, at - back, at + timedelta(seconds=1), market=market)
        if slots:
            return slots[-1]
    return None


def current_posts(project: Project, engine: Engine, campaign: LoadedCampaign, at: datetime,
                  channel: str | None = None, market: str | None = None) -> list[PlannedPost]:
    """The posts of each channel's most recent slot (ProblemsFound when no slot is due yet); `market`: only
    that market's posts."""
    prior = prior_counter(engine)
    planned: list[PlannedPost] = []
    problems = []
    uses = [(i, u) for i, u in enumerate(campaign.model.channels) if channel in (None, u.channel)]
    if not campaign.model.channels:
        raise ProblemsFound([Problem(campaign.shown_as, 0, 0, f"campaign '{campaign.id}' has no scheduled posts "
                                                              "to send: it only posts new entries of its feeds",
                                     "the daemon (`drainage run`) posts them; `drainage feeds check URL` shows "
                                     "what it would post now")])
    if not uses:
        names = ", ".join(u.channel for u in campaign.model.channels)
        raise ProblemsFound([Problem(campaign.shown_as, 0, 0, f"campaign '{campaign.id}' does not post to "
                                                              f"channel '{channel}'", f"it posts to: {names}")])
    for index, use in uses:  # a campaign with markets: each market's own latest slot
        for each in campaign.markets_for(use) if campaign.markets else (None,):
            if market is not None and (each is None or each.id != market):
                continue
            slot = latest_slot(campaign, index, at, each)
            if slot is None:
                problems.append(Problem(campaign.shown_as, 0, 0, f"no slot of channel '{use.channel}' "
                                        + (f"in market '{each.id}' " if each else "")
                                        + f"is due at {at:%Y-%m-%d %H:%M} UTC",
                                        "see `drainage plan`, or pass --at with a scheduled time"))
                continue
            planned += posts_for_slots(campaign, index, [slot], prior, each)
    if market is not None and not planned and not problems:
        raise ProblemsFound([Problem(campaign.shown_as, 0, 0, f"campaign '{campaign.id}' posts nothing for market "
                                                              f"'{market}'" + (f" on channel '{channel}'" if channel
                                                                               else ""),
                                     "see `drainage plan --market " + market + "`")])
    if problems and not planned:
        raise ProblemsFound(problems)
    return planned


async def send_campaign(project: Project, engine: Engine, campaign: LoadedCampaign, at: datetime, *,
                        channel: str | None = None, market: str | None = None, dry_run: bool = False,
                        force: bool = False, include_sent: bool = False,
                        say: Callable[[str], None] = print) -> list[Outcome]:
    """Send each channel's current slot once (`market`: only that market's posts); a slot already in the journal
    is refused unless `force`.
    Email fan-outs follow `drainage.email.manual` (resume, tell what is known, `include_sent`)."""
    if campaign.model.status != "active" and not force:
        raise ProblemsFound([campaign.positions.problem(
            ("status",), f"campaign '{campaign.id}' is {campaign.model.status}",
            "set 'status: active', or pass --force to send it anyway")])
    outcomes: list[Outcome] = []
    services = EmailServices(engine)  # the fan-out service of each email channel, as in the daemon
    for planned in current_posts(project, engine, campaign, at, channel, market):
        composed = project.compose(planned)
        if dry_run:
            outcomes.append(Outcome(composed, "dry run"))
            continue
        service = services.get(project, project.channel(planned.channel))
        if service is not None:
            said = await send_email(service, planned, composed, force=force, include_sent=include_sent, say=say)
            outcomes.append(Outcome(composed, said.status, said.detail))
            continue
        outcomes.append(await _send_one(project, engine, composed, force))
    return outcomes


async def _send_one(project: Project, engine: Engine, composed: Composed, force: bool) -> Outcome:
    """Claim the slot (`preparing`), let the plugin prepare, mark it `sending` and publish."""
    planned = composed.planned
    channel = project.channel(planned.channel)
    lease = parse_duration(project.config.config.daemon.lease)
    if not force:
        found = await ask_about_unknown(engine, channel, planned.key)
        if found is not None:
            return Outcome(composed, *found)
    try:
        row = journal.claim(engine, planned, composed.post.text, composed.links, force=force,
                            payload=post_to_json(composed.post), status=DeliveryStatus.PREPARING,
                            worker=worker_id(), lease_until=utcnow() + lease)
    except OutcomeUnknown as exc:
        return Outcome(composed, "unknown", f"{exc}. {_what_to_do(planned)}")
    except AlreadySent as exc:
        return Outcome(composed, "already sent", f"{exc} (use --force to send it again)")
    composed.post.key = row.key
    receipt = None
    try:
        async with channel.prepare(composed.post) as publish:
            if not journal.mark_sending(engine, row.id or 0):
                return Outcome(composed, "already sent", "a daemon took this delivery over while it was prepared")
            receipt = await publish()
            journal.record_sent(engine, row.id or 0, receipt)  # before the plugin closes its client
    except Paused as exc:  # the daemon carries on after `drainage resume CAMPAIGN`
        if receipt is None:
            journal.record_failed(engine, row.id or 0, exc, status=DeliveryStatus.RETRYING)
            return Outcome(composed, "paused", str(exc))
    except ChannelError as exc:
        if receipt is None:
            journal.record_failed(engine, row.id or 0, exc)
            return Outcome(composed, "failed", f"{exc.kind}: {exc}")
    assert receipt is not None  # set, or an outcome was returned above
    return Outcome(composed, "sent", receipt.remote_id)


async def ask_about_unknown(engine: Engine, channel: Channel, key: str) -> tuple[str, str] | None:
    """A delivery whose outcome a crash left unknown is settled by asking the platform, where it can be asked:
    found, it is recorded sent (returns the outcome); not found, it is released for sending (returns None)."""
    with session(engine) as s:
        row = journal.find(s, key)
    if row is None or row.status != DeliveryStatus.UNKNOWN or not channel.can_lookup or row.payload is None:
        return None
    post = post_from_json(row.payload)
    post.key = row.key
    try:
        receipt = await channel.lookup(post)
    except ChannelError as exc:
        return "unknown", (f"outcome unknown after a crash, and asking {channel.name} failed ({exc.kind}: {exc}); "
                           "try again later")
    if receipt is not None:
        journal.record_sent(engine, row.id or 0, receipt, note="found on the platform after a crash")
        return "already sent", f"found on {channel.name} ({receipt.remote_id}) after a crash left it unknown"
    journal.record_failed(engine, row.id or 0, f"outcome was unknown after a crash; {channel.name} has no such "
                                               "post, so it is sent again", status=DeliveryStatus.RETRYING)
    return None


def _what_to_do(planned: PlannedPost) -> str:
    return (f"Look at {planned.channel}: if the post is missing, `drainage send {planned.campaign.id} --channel "
            f"{planned.channel} --force` posts it as a separate delivery (the unknown one stays in the journal); "
            "if it is there, there is nothing to do")
