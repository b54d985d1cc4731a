"""`drainage send`: render a campaign's current slot and send it now, through the journal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from drainage import journal
from drainage.campaigns import LoadedCampaign
from drainage.dispatch import post_to_json
from drainage.email.manual import send_email
from drainage.errors import AlreadySent, ChannelError, Paused, Problem, ProblemsFound
from drainage.posts import PlannedPost, posts_for_slots, slots_for
from drainage.project import Composed, Host, Project
from drainage.store.models import DeliveryStatus

LOOKBACKS = (timedelta(days=1), timedelta(days=8), timedelta(days=32), timedelta(days=367))


@dataclass
class Outcome:
    """What happened to one post of a manual send."""

    composed: Composed
    status: str  # sent | already sent | failed | paused | dry run
    detail: str = ""


def latest_slot(campaign: LoadedCampaign, use_index: int, at: datetime) -> datetime | None:
    """The most recent slot at or before `at` for one channel of a campaign (within a year)."""
    use = campaign.model.channels[use_index]
    for back in LOOKBACKS:
        slots = slots_for(campaign, use, at - back, at + timedelta(seconds=1))
        if slots:
            return slots[-1]
    return None


def current_posts(project: Project, engine: Engine, campaign: LoadedCampaign, at: datetime,
                  channel: str | None = None) -> list[PlannedPost]:
    """The posts of each channel's most recent slot (ProblemsFound when no slot is due yet)."""
    prior = journal.prior_counter(engine)
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
    for index, use in uses:
        slot = latest_slot(campaign, index, at)
        if slot is None:
            problems.append(Problem(campaign.shown_as, 0, 0, f"no slot of channel '{use.channel}' is due at "
                                                             f"{at:%Y-%m-%d %H:%M} UTC",
                                    "see `drainage plan`, or pass --at with a scheduled time"))
            continue
        planned += posts_for_slots(campaign, index, [slot], prior)
    if problems and not planned:
        raise ProblemsFound(problems)
    return planned


async def send_campaign(project: Project, engine: Engine, campaign: LoadedCampaign, at: datetime, *,
                        channel: str | None = None, dry_run: bool = False, force: bool = False,
                        include_sent: bool = False, say: Callable[[str], None] = print) -> list[Outcome]:
    """Send each channel's current slot once; a slot already in the journal is refused unless `force`.
    Email fan-outs follow `drainage.email.manual` (resume, tell what is known, `include_sent`)."""
    if campaign.model.status != "active" and not force:
        raise ProblemsFound([campaign.positions.problem(
            ("status",), f"campaign '{campaign.id}' is {campaign.model.status}",
            "set 'status: active', or pass --force to send it anyway")])
    outcomes: list[Outcome] = []
    project.bind(Host(engine, project))
    for planned in current_posts(project, engine, campaign, at, channel):
        composed = project.compose(planned)
        if dry_run:
            outcomes.append(Outcome(composed, "dry run"))
            continue
        if project.channel(planned.channel).fans_out:
            said = await send_email(project, engine, planned, composed, force=force, include_sent=include_sent,
                                    say=say)
            outcomes.append(Outcome(composed, said.status, said.detail))
            continue
        try:
            row = journal.claim(engine, planned, composed.post.text, composed.links, force=force,
                                payload=post_to_json(composed.post))
        except AlreadySent as exc:
            outcomes.append(Outcome(composed, "already sent", f"{exc} (use --force to send it again)"))
            continue
        composed.post.key = row.key
        try:
            receipt = await project.channel(planned.channel).send(composed.post)
        except Paused as exc:  # the daemon carries on after `drainage resume CAMPAIGN`
            journal.record_failed(engine, row.id or 0, exc, status=DeliveryStatus.RETRYING)
            outcomes.append(Outcome(composed, "paused", str(exc)))
            continue
        except ChannelError as exc:
            journal.record_failed(engine, row.id or 0, exc)
            outcomes.append(Outcome(composed, "failed", f"{exc.kind}: {exc}"))
            continue
        journal.record_sent(engine, row.id or 0, receipt)
        outcomes.append(Outcome(composed, "sent", receipt.remote_id))
    return outcomes
