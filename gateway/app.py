"""The composition root: a node, and the surfaces built over it.

``build_node(config)`` makes a :class:`~gateway.node.GatewayNode` and, when the
configuration has a ``[console]`` table, an operator console over a
:class:`NodeConsoleBackend`, attached to the node so that it starts and stops with
it. This is the one module that knows both the node and the console; neither
imports the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence

from cryptography import x509

from gateway.config import NodeConfig
from gateway.console import Console, PeerStatus
from gateway.console.backend import MetricsHook
from gateway.errors import ConfigInvalid, GatewayError
from gateway.node import GatewayNode, PartnerHealth
from gateway.pki import SigningCertificateVerifier, load_certificate
from gateway.store import key_file_for, open_store
from gateway.store.at_rest import open_vault
from gateway.store.reads import ConsoleReads, OperatorRecords
from gateway.translog import ChainVerdict, LogEntry, LogEvent, verify_chain

__all__ = [
    "NodeConsoleBackend",
    "attach_console",
    "build_node",
    "console_of",
    "operator_records",
]

_LOG_PAGE = 2000
_CONSOLES: weakref.WeakKeyDictionary[GatewayNode, Console] = weakref.WeakKeyDictionary()


def build_node(config: NodeConfig) -> GatewayNode:
    """The node of ``config``, with its console when ``config.console`` is set."""
    node = GatewayNode(config)
    if config.console is not None and console_of(node) is None:
        attach_console(node)
    return node


def console_of(node: GatewayNode) -> Console | None:
    """The console attached to ``node`` by :func:`build_node`, if any."""
    return _CONSOLES.get(node)


@contextlib.asynccontextmanager
async def operator_records(config: NodeConfig) -> AsyncIterator[OperatorRecords]:
    """The operator rows of the node of ``config``, on its engine, for the ``operators``
    command and the demo (the node need not run)."""
    async with open_store(config, open_vault(key_file_for(config))) as store:
        yield store


def attach_console(node: GatewayNode) -> Console:
    settings = node.config.console
    if settings is None:
        raise ConfigInvalid(f"{node.config.source}: no [console] table")
    console = Console(NodeConsoleBackend(node), settings)
    _CONSOLES[node] = console
    node.attach(console)
    return console


class NodeConsoleBackend:
    """:class:`~gateway.console.ConsoleBackend` over a running :class:`GatewayNode`."""

    def __init__(self, node: GatewayNode) -> None:
        self._node = node

    @property
    def bureau(self) -> str:
        return self._node.bureau

    @property
    def node_name(self) -> str:
        return self._node.config.node.name

    def partner_names(self) -> Mapping[str, str]:
        return {p.bureau: p.name for p in self._node.config.partners}

    @property
    def reads(self) -> ConsoleReads:
        return self._node.store

    @property
    def operators(self) -> OperatorRecords:
        return self._node.store

    def peer_health(self) -> Mapping[str, PeerStatus]:
        return _peer_statuses(self._node.partner_health())

    async def probe_peers(self) -> Mapping[str, PeerStatus]:
        return _peer_statuses(await self._node.probe_partners())

    async def redrive(self, message_id: str, *, operator: str) -> bool:
        return await self._node.outbound.redrive(message_id, operator=operator)

    def certificates(self) -> Mapping[str, x509.Certificate]:
        signing = x509.load_der_x509_certificate(self._node.identity.signer.certificate_der)
        try:
            # Read again each time: a renewed certificate on disk shows at once.
            tls = load_certificate(self._node.config.tls.cert)
        except GatewayError:
            return {"signing": signing}
        return {"tls": tls, "signing": signing}

    @property
    def verifier(self) -> SigningCertificateVerifier:
        return self._node.identity.verifier

    async def verify_log(self) -> ChainVerdict:
        # The chain is checked in a worker thread as pages arrive from the store's own
        # reader, so any engine works and a long log is never held in memory at once.
        loop = asyncio.get_running_loop()
        store = self._node.store

        def entries() -> Iterator[LogEntry]:
            after = 0
            while True:
                page = asyncio.run_coroutine_threadsafe(
                    store.read_log(after, _LOG_PAGE), loop
                ).result()
                yield from page
                if len(page) < _LOG_PAGE:
                    return
                after = page[-1].seq

        return await asyncio.to_thread(lambda: verify_chain(entries()))

    async def append_log(self, events: Sequence[LogEvent]) -> None:
        await self._node.store.append_log(events)

    async def check_store(self) -> str:
        if not self._node.serving:
            return f"not serving: {self._node.store.last_error or 'starting or stopping'}"
        try:
            # An empty job through the store's own writer: proves the writer runs and can
            # take the write lock, without adding a log entry.
            await self._node.store.append_log([])
        except GatewayError as exc:
            return exc.message
        return ""

    def add_metrics_hook(self, hook: MetricsHook) -> None:
        self._node.hooks.add(hook)


def _peer_statuses(health: Mapping[str, PartnerHealth]) -> dict[str, PeerStatus]:
    """The node's partner health, in the console's terms (one source: the partner clients)."""
    return {
        bureau: PeerStatus(h.bureau, h.address, h.reachable, h.checked_at, h.error)
        for bureau, h in health.items()
    }
