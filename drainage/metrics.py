"""Prometheus metrics of the daemon: deliveries by channel and status, send latency, queue depth, pauses."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from sqlalchemy import Engine, func
from sqlmodel import col, select

from drainage.store.db import session
from drainage.store.models import Delivery, DeliveryStatus


class Metrics:
    """The daemon's metrics, in a registry of their own (several daemons in one test process stay apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter("drainage_deliveries_total", "Delivery state changes by channel and status",
                                  ["channel", "status"], registry=self.registry)
        self.send_seconds = Histogram("drainage_send_seconds", "Time a successful send took", ["channel"],
                                      registry=self.registry)
        self.queue = Gauge("drainage_queue_depth", "Deliveries waiting to be sent (pending or retrying)",
                           registry=self.registry)
        self.pauses = Counter("drainage_channel_pauses_total", "Channel pauses after auth errors", ["channel"],
                              registry=self.registry)

    def delivery(self, channel: str, status: str) -> None:
        self.deliveries.labels(channel=channel, status=status).inc()

    def sent(self, channel: str, seconds: float) -> None:
        self.send_seconds.labels(channel=channel).observe(seconds)

    def paused(self, channel: str) -> None:
        self.pauses.labels(channel=channel).inc()

    def queue_depth(self, engine: Engine) -> None:
        with session(engine) as s:
            waiting = s.exec(select(func.count()).where(col(Delivery.status).in_(
                [DeliveryStatus.PENDING, DeliveryStatus.RETRYING]))).one()
        self.queue.set(int(waiting))

    def serve(self, host: str, port: int) -> None:
        """Expose /metrics over HTTP on host:port (a background thread)."""
        start_http_server(port, addr=host, registry=self.registry)
