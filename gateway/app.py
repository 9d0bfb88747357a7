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
import datetime as dt
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence

import grpc
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.config import NodeConfig
from gateway.console import Console, PeerStatus
from gateway.console.backend import MetricsHook
from gateway.errors import ConfigInvalid, GatewayError
from gateway.node import GatewayNode
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
    node.console = console  # INTEGRATION: node.attach(console)
    return console


class NodeConsoleBackend:
    """:class:`~gateway.console.ConsoleBackend` over a running :class:`GatewayNode`."""

    def __init__(self, node: GatewayNode) -> None:
        self._node = node
        self._today = _NodeToday(node)

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
        return self._today.partner_health()

    async def probe_peers(self) -> Mapping[str, PeerStatus]:
        return await self._today.probe_partners()

    async def redrive(self, message_id: str, *, operator: str) -> bool:
        return await self._today.redrive(message_id, operator=operator)

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


# ------------------------------------------------------------------------------------
# INTERIM: what the node and the store offer today, in place of the API they are
# getting. Replace, then delete this class:
#   partner_health()  -> node.partner_health()      probe_partners() -> node.probe_partners()
#   redrive(...)      -> node.outbound.redrive(...)
# ------------------------------------------------------------------------------------


class _NodeToday:
    def __init__(self, node: GatewayNode) -> None:
        self._node = node
        self._probes: dict[str, PeerStatus] = {}

    def partner_health(self) -> dict[str, PeerStatus]:
        out: dict[str, PeerStatus] = {}
        for bureau, dispatcher in self._node.dispatchers.items():
            health = dispatcher.health
            probe = self._probes.get(bureau)
            if health.reachable is None and probe is not None:
                out[bureau] = probe
                continue
            seen = [t for t in (health.last_success_at, health.last_failure_at) if t is not None]
            out[bureau] = PeerStatus(
                bureau,
                dispatcher.address,
                health.reachable,
                max(seen) if seen else None,
                health.last_error,
            )
        return out

    async def probe_partners(self) -> dict[str, PeerStatus]:
        addresses = {b: d.address for b, d in self._node.dispatchers.items()}
        await asyncio.gather(*(self._probe(b, a) for b, a in addresses.items()))
        return self.partner_health()

    async def _probe(self, bureau: str, address: str) -> None:
        error = ""
        serving = False
        credentials = self._node.identity.channel_credentials
        try:
            async with grpc.aio.secure_channel(address, credentials) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                response = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
                serving = response.status == health_pb2.HealthCheckResponse.SERVING
                if not serving:
                    error = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        except grpc.aio.AioRpcError as exc:
            error = f"{exc.code().name}: {(exc.details() or '')[:200]}"
        self._probes[bureau] = PeerStatus(bureau, address, serving, dt.datetime.now(dt.UTC), error)

    async def redrive(self, message_id: str, *, operator: str) -> bool:
        return await self._node.redrive(message_id, operator=operator)
