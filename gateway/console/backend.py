"""What the console needs of a node, and nothing more.

The console is built over a :class:`ConsoleBackend`: the composition root
(:mod:`gateway.app`) implements it over a running node, so the console never
imports the node and the node never imports the console. Reads go through the
store's :class:`~gateway.store.reads.ConsoleReads` and
:class:`~gateway.store.reads.OperatorRecords`; everything else the console shows or
does (peer health, re-drive, certificates, the log's integrity, audit events,
readiness, metrics) is one method here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509

from gateway.pki import SigningCertificateVerifier
from gateway.store.reads import ConsoleReads, OperatorRecords
from gateway.translog import ChainVerdict, LogEvent

__all__ = [
    "ConsoleBackend",
    "LocalSendEvent",
    "MetricsHook",
    "PeerOutcome",
    "PeerStatus",
]


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """What the node last saw of one partner: by delivery or by a health probe."""

    bureau: str
    address: str
    reachable: bool | None  # None: neither a delivery nor a probe has answered yet
    checked_at: dt.datetime | None
    error: str = ""


class PeerOutcome(Protocol):
    """An envelope from a partner handled, or a delivery to one attempted."""

    @property
    def peer(self) -> str: ...
    @property
    def record_type(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def seconds(self) -> float: ...


class LocalSendEvent(Protocol):
    """A record handed over by a local system (or refused)."""

    @property
    def record_type(self) -> str: ...
    @property
    def outcome(self) -> str: ...


class MetricsHook(Protocol):
    """The node's observation events the console counts (the node's hooks, structurally)."""

    def inbound_handled(self, event: PeerOutcome) -> None: ...

    def delivery_attempted(self, event: PeerOutcome) -> None: ...

    def local_send_handled(self, event: LocalSendEvent) -> None: ...


class ConsoleBackend(Protocol):
    """One node as the console sees it."""

    # -- identity ------------------------------------------------------------
    @property
    def bureau(self) -> str: ...

    @property
    def node_name(self) -> str:
        """The node's configured display name; empty if none."""

    def partner_names(self) -> Mapping[str, str]:
        """Every partner's bureau id and configured display name (empty if none)."""

    # -- the store's read views ----------------------------------------------
    @property
    def reads(self) -> ConsoleReads: ...

    @property
    def operators(self) -> OperatorRecords: ...

    # -- partners ------------------------------------------------------------
    def peer_health(self) -> Mapping[str, PeerStatus]:
        """Per partner, what the node last saw of it."""

    async def probe_peers(self) -> Mapping[str, PeerStatus]:
        """Health-check every partner now; the answers also update :meth:`peer_health`."""

    async def redrive(self, message_id: str, *, operator: str) -> bool:
        """Put a dead letter back in its partner's queue; False if it is not one."""

    # -- what the console shows and checks -----------------------------------
    def certificates(self) -> Mapping[str, x509.Certificate]:
        """The node's own certificates by name: ``tls`` (when readable) and ``signing``."""

    @property
    def verifier(self) -> SigningCertificateVerifier:
        """Checks a stored envelope's signing certificate again on the record page."""

    async def verify_log(self) -> ChainVerdict:
        """Verify the whole transfer log's hash chain (reads every entry)."""

    async def append_log(self, events: Sequence[LogEvent]) -> None:
        """Append audit events to the transfer log (durable on return)."""

    async def check_store(self) -> str:
        """Readiness of the store and the node: empty if the node serves and its store
        writes, otherwise why not."""

    def add_metrics_hook(self, hook: MetricsHook) -> None:
        """Feed the node's observation events to ``hook``."""
