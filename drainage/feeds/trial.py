"""Trying an entry's posts before queueing it: an entry that would print a missing value, or make an empty
post, with the templates it is posted with, is skipped with the reason instead of posted.

Other rendering errors (a link outside the store's hosts, a template bug) are left to the posting slot, where
the delivery fails with the reason, as for any post.
"""

from __future__ import annotations

from datetime import datetime

from drainage.campaigns import LoadedCampaign
from drainage.feeds.entries import FeedEntry
from drainage.posts import FeedRef, feed_post
from drainage.project import Project
from drainage.render import MissingValue
from drainage.validation import missing_values


def template_defect(project: Project, campaign: LoadedCampaign, feed_index: int, entry: FeedEntry, event: str,
                    previous_price: float | None, now: datetime) -> str | None:
    """Why this entry cannot make a good post on one of its feed's channels, or None."""
    feed = campaign.model.feeds[feed_index]
    ref = FeedRef(feed_index, entry.digest, event, entry.fields(previous_price))
    for use_index, use in enumerate(feed.channels):
        if use.channel not in project.config.channels:
            continue
        planned = feed_post(campaign, feed_index, use_index, now, ref)
        try:
            text = project.compose(planned).post.text
        except MissingValue as exc:
            problem = project.renderer.template_problem(exc, planned.template, f"the post for {use.channel}", [],
                                                        missing=missing_values(planned))
            where = f"{problem.file}:{problem.line}" if problem.line else problem.file
            return f"{where}: {problem.message.split(' (while rendering')[0]}"
        except Exception:  # any other error fails the delivery at its slot, with the reason
            continue
        if not text.strip():
            return f"its post for {use.channel} ({planned.template}) would be empty"
    return None
