"""Prometheus metrics of the tracker: redirects, clicks by class, queue depth, flush latency, orders."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class RedirectCounts(Collector):
    """`drainage_tracker_redirects_total{result}` kept as plain integers: the redirect path adds 1 to an int
    (one event loop, no lock needed) instead of taking a prometheus Counter's lock per request; the metric is
    built when /metrics is scraped."""

    def __init__(self) -> None:
        self.redirect = 0
        self.not_found = 0

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("drainage_tracker_redirects", "Answers on /c/{code}, by result",
                                     labels=["result"])
        family.add_metric(["redirect"], self.redirect)
        family.add_metric(["not_found"], self.not_found)
        yield family


class TrackerMetrics:
    """The tracker's metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.redirects = RedirectCounts()
        self.registry.register(self.redirects)
        self.clicks = Counter("drainage_tracker_clicks_total", "Clicks written, by agent class", ["agent_class"],
                              registry=self.registry)
        self.queue = Gauge("drainage_tracker_queue_depth", "Clicks answered and not yet committed",
                           registry=self.registry)
        self.flush_seconds = Histogram("drainage_tracker_flush_seconds", "Time one batch of clicks took to write",
                                       registry=self.registry,
                                       buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.flush_errors = Counter("drainage_tracker_flush_errors_total", "Batches that failed to write (retried)",
                                    registry=self.registry)
        self.dropped = Counter("drainage_tracker_clicks_dropped_total",
                               "Clicks dropped because the database was unreachable past tracker.max_pending",
                               registry=self.registry)
        self.orders = Counter("drainage_tracker_orders_total", "Order webhooks, by result", ["result"],
                              registry=self.registry)
