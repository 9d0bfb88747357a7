"""Prometheus metrics of one node: counters fed by hooks, gauges read at scrape time.

Each node has its own :class:`~prometheus_client.CollectorRegistry` (two nodes
share a process in the tests, and a global registry would mix them). Labels are
bureau ids, record types and outcome codes only, never record content.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.console.backend import LocalSendEvent, PeerOutcome

__all__ = ["GaugeSnapshot", "NodeMetrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(slots=True)
class GaugeSnapshot:
    """Values read from the database (and certificates) just before a scrape."""

    pending: dict[str, int] = field(default_factory=dict)  # per peer
    dead_letters: dict[str, int] = field(default_factory=dict)
    oldest_pending_age: dict[str, float] = field(default_factory=dict)
    inbox_undelivered: int = 0
    certificate_expiry: dict[str, float] = field(default_factory=dict)  # tls | signing
    peer_reachable: dict[str, float] = field(default_factory=dict)
    log_intact: float | None = None
    log_entries: int = 0


class _ScrapeCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = GaugeSnapshot()

    def collect(self) -> Iterable[Metric]:
        s = self.snapshot
        yield from _per_peer(
            "chuanyu_outbox_pending", "Outbound records waiting for delivery", s.pending
        )
        yield from _per_peer(
            "chuanyu_dead_letters", "Outbound records dead-lettered", s.dead_letters
        )
        yield from _per_peer(
            "chuanyu_oldest_pending_age_seconds",
            "Age of the oldest outbound record still pending",
            s.oldest_pending_age,
        )
        yield from _per_peer(
            "chuanyu_peer_reachable", "1 if the partner answered last time", s.peer_reachable
        )
        inbox = GaugeMetricFamily(
            "chuanyu_inbox_undelivered", "Inbound records the local system has not taken yet"
        )
        inbox.add_metric([], s.inbox_undelivered)
        yield inbox
        expiry = GaugeMetricFamily(
            "chuanyu_certificate_expiry_seconds",
            "Seconds until the node's certificate expires (negative: expired)",
            labels=["certificate"],
        )
        for name, seconds in sorted(s.certificate_expiry.items()):
            expiry.add_metric([name], seconds)
        yield expiry
        entries = GaugeMetricFamily("chuanyu_transfer_log_entries", "Entries in the transfer log")
        entries.add_metric([], s.log_entries)
        yield entries
        if s.log_intact is not None:
            intact = GaugeMetricFamily(
                "chuanyu_transfer_log_intact", "1 if the last hash-chain verification passed"
            )
            intact.add_metric([], s.log_intact)
            yield intact


def _per_peer(
    name: str, documentation: str, values: dict[str, int] | dict[str, float]
) -> Iterator[Metric]:
    family = GaugeMetricFamily(name, documentation, labels=["peer"])
    for peer, value in sorted(values.items()):
        family.add_metric([peer], value)
    yield family


class NodeMetrics:
    """The node's registry, and the :class:`~gateway.console.backend.MetricsHook` that feeds it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.inbound = Counter(
            "chuanyu_inbound_envelopes",
            "Envelopes from partners, by outcome (accepted, duplicate or refusal reason)",
            ["peer", "record_type", "outcome"],
            registry=self.registry,
        )
        self.inbound_seconds = Histogram(
            "chuanyu_inbound_seconds",
            "Time to check and durably accept (or refuse) one inbound envelope",
            ["peer", "record_type"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.deliveries = Counter(
            "chuanyu_deliveries",
            "Delivery attempts to partners, by outcome (delivered, retry, rejected, dead_lettered)",
            ["peer", "record_type", "outcome"],
            registry=self.registry,
        )
        self.delivery_seconds = Histogram(
            "chuanyu_delivery_seconds",
            "Duration of one delivery attempt (a round trip to the partner)",
            ["peer", "record_type"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.local_sends = Counter(
            "chuanyu_local_sends",
            "Records handed over by local systems, by outcome (queued, duplicate, refusal)",
            ["record_type", "outcome"],
            registry=self.registry,
        )
        self._scrape = _ScrapeCollector()
        self.registry.register(self._scrape)

    def update(self, snapshot: GaugeSnapshot) -> None:
        self._scrape.snapshot = snapshot

    # -- NodeHooks -----------------------------------------------------------

    def inbound_handled(self, event: PeerOutcome) -> None:
        record_type = event.record_type or "unknown"
        self.inbound.labels(event.peer or "unknown", record_type, event.outcome).inc()
        self.inbound_seconds.labels(event.peer or "unknown", record_type).observe(event.seconds)

    def delivery_attempted(self, event: PeerOutcome) -> None:
        self.deliveries.labels(event.peer, event.record_type, event.outcome).inc()
        self.delivery_seconds.labels(event.peer, event.record_type).observe(event.seconds)

    def local_send_handled(self, event: LocalSendEvent) -> None:
        self.local_sends.labels(event.record_type or "unknown", event.outcome).inc()
