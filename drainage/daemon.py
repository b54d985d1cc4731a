"""`drainage run`: the long-running daemon.

APScheduler (3.x, the stable line) fires one job per (campaign, channel) at each slot, through a trigger
that asks drainage's own DST-correct schedule for the next slot; a periodic sweep catches retries and
anything a trigger missed. Every firing only "kicks" the dispatcher for a channel: what is due is always
decided from the journal and the cursors, so a late, doubled or lost firing cannot post twice or drop a post.

Store feeds: the sweep also starts a task for each feed whose next poll (in the database) has come and that
is not being polled, outside the channels' passes (see `drainage.feeds.poller` for why); a feed that queued
entries kicks its channels when its own poll ends, so a slow feed holds up no other feed and no channel. Each
feed channel's posting slots have a trigger of their own, like a campaign's slots.

Signals: SIGHUP reloads campaigns and templates (an invalid edit is refused, the previous version keeps
running); SIGTERM / SIGINT stop new sends and let in-flight sends finish within `shutdown_timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from drainage.campaigns import ChannelUse, LoadedCampaign
from drainage.clock import Clock, RealClock
from drainage.dispatch import Dispatcher, paused_channels, resume_channel
from drainage.errors import ProblemsFound
from drainage.feeds.poller import PollResult
from drainage.indexnow import SearchSubmitter
from drainage.logs import event
from drainage.metrics import Metrics
from drainage.posts import feed_slots, slots_for
from drainage.project import Project, load_project
from drainage.schedule import parse_duration
from drainage.tracker.supervisor import TrackerProcess
from drainage.validation import check_rendering

HORIZONS = (timedelta(days=1), timedelta(days=32), timedelta(days=400))


class SlotTrigger(BaseTrigger):
    """An APScheduler trigger that fires at a campaign channel's slots (windows and quiet hours applied)."""

    def __init__(self, campaign: LoadedCampaign, use: ChannelUse) -> None:
        self.campaign = campaign
        self.use = use

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        start = previous_fire_time + timedelta(seconds=1) if previous_fire_time else now
        for horizon in HORIZONS:
            slots = self.slots(start, start + horizon)
            if slots:
                return slots[0]
        return None

    def slots(self, start: datetime, end: datetime) -> list[datetime]:
        return slots_for(self.campaign, self.use, start, end)

    def __str__(self) -> str:
        return f"slots of {self.campaign.id} -> {self.use.channel}"


class FeedSlotTrigger(SlotTrigger):
    """Fires at the posting slots of one channel of a campaign's feed."""

    def __init__(self, campaign: LoadedCampaign, feed_index: int, use_index: int) -> None:
        super().__init__(campaign, campaign.model.feeds[feed_index].channels[use_index])
        self.feed_index, self.use_index = feed_index, use_index

    def slots(self, start: datetime, end: datetime) -> list[datetime]:
        return feed_slots(self.campaign, self.feed_index, self.use_index, start, end)

    def __str__(self) -> str:
        return f"feed slots of {self.campaign.id} -> {self.use.channel}"


def secrets_of(project: Project) -> list[str]:
    """Every secret value in config.yaml (channel options, tracker keys), to be masked in logs."""
    return project.config.secrets()


def validated_project(config_path: Path) -> Project:
    """Load and fully validate (rendering included); raise ProblemsFound otherwise."""
    project = load_project(config_path)
    problems = check_rendering(project)
    if problems:
        raise ProblemsFound(problems)
    return project


class Daemon:
    """Runs the scheduler, the dispatcher, reloads and shutdown for one config."""

    def __init__(self, config_path: Path, project: Project, engine: Engine, clock: Clock | None = None,
                 *, tracker: bool = False) -> None:
        self.config_path = config_path
        self.tracker = TrackerProcess(config_path) if tracker else None
        self.project = project
        self.engine = engine
        self.clock = clock or RealClock()
        self.metrics = Metrics()
        self.dispatcher = Dispatcher(project, engine, self.clock, self.metrics)
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.stop_event = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self.search = SearchSubmitter(engine)
        self._search_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def run(self, *, once: bool = False) -> None:
        """Run until SIGTERM/SIGINT (or a single pass with `once`)."""
        self._loop = asyncio.get_running_loop()
        cfg = self.project.config.config.daemon
        if once:
            event("daemon.started", mode="once", campaigns=len(self.project.campaigns))
            await self.dispatcher.run_all()
            await self._search_pass()
            await self._close()
            return
        if cfg.metrics_port:
            self.metrics.serve(cfg.metrics_host, cfg.metrics_port)
        self._install_signals()
        if self.tracker is not None:
            self.tracker.start()
        self._schedule_jobs()
        self.scheduler.start()
        watcher = asyncio.create_task(self._watch()) if cfg.watch else None
        event("daemon.started", campaigns=len(self.project.campaigns), channels=",".join(self.dispatcher.channels()),
              metrics=f"http://{cfg.metrics_host}:{cfg.metrics_port}/metrics" if cfg.metrics_port else None)
        self.kick_feeds()
        self.kick_all()
        self.kick_search()
        await self.stop_event.wait()
        if watcher is not None:
            watcher.cancel()
        await self.shutdown()

    def request_stop(self, reason: str = "signal") -> None:
        if not self.stop_event.is_set():
            event("daemon.stopping", reason=reason)
            self.dispatcher.stopping = True
            self.stop_event.set()

    async def shutdown(self) -> None:
        """No new sends; in-flight sends get `shutdown_timeout` to finish; the journal stays consistent."""
        self.dispatcher.stopping = True
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        timeout = parse_duration(self.project.config.config.daemon.shutdown_timeout).total_seconds()
        tasks = [*self._tasks.values(), *self.dispatcher.feeds.in_flight(),
                 *([self._search_task] if self._search_task else [])]
        pending = [t for t in tasks if not t.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=timeout)
            for task in still:
                task.cancel()
            if still:
                event("daemon.shutdown_timeout", logging.WARNING, unfinished=len(still),
                      note="their deliveries stay 'sending' and are settled at the next start")
        self.dispatcher.feeds.close()  # the feed parser workers
        if self.tracker is not None:
            await self.tracker.stop()
        await self._close()
        event("daemon.stopped")

    async def _close(self) -> None:
        await self.project.close()

    def _install_signals(self) -> None:
        assert self._loop is not None
        for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
            self._loop.add_signal_handler(sig, self.request_stop, name)
        self._loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload("SIGHUP")))

    # -- scheduling --------------------------------------------------------------------------------------------
    def _schedule_jobs(self) -> None:
        self.scheduler.remove_all_jobs()
        sweep = parse_duration(self.project.config.config.daemon.sweep_every).total_seconds()
        self.scheduler.add_job(self._kick_all_job, IntervalTrigger(seconds=sweep), id="sweep", coalesce=True,
                               max_instances=1, misfire_grace_time=None)
        for campaign in self.project.campaigns.values():
            if campaign.model.status != "active":
                continue
            for index, use in enumerate(campaign.model.channels):
                if use.channel not in self.project.config.channels:
                    continue
                self.scheduler.add_job(self._kicker(use.channel), SlotTrigger(campaign, use),
                                       id=f"{campaign.id}:{index}:{use.channel}", coalesce=True, max_instances=1,
                                       misfire_grace_time=None)
            for feed_index, feed in enumerate(campaign.model.feeds):
                for use_index, use in enumerate(feed.channels):
                    if use.channel not in self.project.config.channels or not (use.schedule or feed.schedule):
                        continue  # without a schedule, entries go out after each poll (the feed pass kicks)
                    self.scheduler.add_job(self._kicker(use.channel), FeedSlotTrigger(campaign, feed_index, use_index),
                                           id=f"{campaign.id}:feeds[{feed_index}]:{use_index}:{use.channel}",
                                           coalesce=True, max_instances=1, misfire_grace_time=None)

    def _kicker(self, channel: str) -> Callable[[], Awaitable[None]]:
        async def job() -> None:  # a coroutine, so APScheduler runs it on the event loop (not in a thread)
            self.kick(channel)

        return job

    async def _kick_all_job(self) -> None:
        self.kick_feeds()
        self.kick_all()
        self.kick_search()

    def kick_search(self) -> None:
        """Submit new and changed store URLs to search channels (IndexNow) unless a pass is running."""
        if self.dispatcher.stopping or (self._search_task is not None and not self._search_task.done()):
            return
        self._search_task = asyncio.ensure_future(self._search_pass())

    async def _search_pass(self) -> None:
        try:
            await self.search.run(self.project, self.clock.now())
        except Exception as exc:  # a pass must never kill the daemon; the next sweep tries again
            event("search.error", logging.ERROR, error=f"{exc.__class__.__name__}: {exc}")

    def kick_feeds(self) -> None:
        """Start polling each due feed that is not being polled, each on its own; a feed that queued entries
        kicks its channels as soon as it is done (and the search channels: new entries may be new store URLs)."""
        self.dispatcher.start_feed_polls(self._feed_polled)

    def _feed_polled(self, result: PollResult) -> None:
        for name in sorted(result.channels):
            self.kick(name)
        self.kick_search()

    def kick_all(self) -> None:
        for name in self.dispatcher.channels():
            self.kick(name)

    def kick(self, channel: str) -> None:
        """Start a pass over `channel`, or ask the running one to go again when it ends."""
        if self.dispatcher.stopping:
            return
        task = self._tasks.get(channel)
        if task is not None and not task.done():
            self._again.add(channel)
            return
        self._tasks[channel] = asyncio.ensure_future(self._pass(channel))

    async def _pass(self, channel: str) -> None:
        while True:
            self._again.discard(channel)
            try:
                await self.dispatcher.run_channel(channel)
            except Exception as exc:  # a pass must never kill the daemon; the next kick tries again
                event("dispatch.error", logging.ERROR, channel=channel, error=f"{exc.__class__.__name__}: {exc}")
            if channel not in self._again or self.dispatcher.stopping:
                return

    # -- reload ------------------------------------------------------------------------------------------------
    async def reload(self, reason: str) -> bool:
        """Load and validate the files again; swap them in only if valid. Lifts auth pauses."""
        try:
            project = await asyncio.to_thread(validated_project, self.config_path)
        except ProblemsFound as exc:
            for problem in exc.problems:
                event("reload.refused", logging.ERROR, problem=str(problem))
            event("reload.kept_previous", logging.ERROR, reason=reason, problems=len(exc.problems))
            return False
        old = self.project
        self.project = project
        self.dispatcher.set_project(project)
        for state in paused_channels(self.engine):
            resume_channel(project, self.engine, state.channel, self.clock.now())
            event("channel.resumed", channel=state.channel, reason="config reload")
        if self.scheduler.running:
            self._schedule_jobs()
        await old.close()
        event("reload.done", reason=reason, campaigns=len(project.campaigns))
        self.kick_feeds()
        self.kick_all()
        self.kick_search()
        return True

    async def _watch(self) -> None:
        from watchfiles import awatch

        root = self.project.root
        paths = [p for p in (self.project.config.path, self.project.config.campaigns_dir,
                             self.project.config.templates_dir) if p.exists()]
        with contextlib.suppress(asyncio.CancelledError):
            async for _changes in awatch(*paths, stop_event=self.stop_event, debounce=500):
                await self.reload(f"files changed under {root}")


def run_daemon(config_path: Path, project: Project, engine: Engine, *, once: bool = False,
               clock: Clock | None = None, tracker: bool = False) -> None:
    """Run the daemon in a fresh event loop (the console entry point); `tracker` also serves the tracker."""
    daemon = Daemon(config_path, project, engine, clock, tracker=tracker)
    asyncio.run(daemon.run(once=once))

