"""A gateway node: its servers, its dispatchers and its store, started and stopped together.

::

    async with GatewayNode(config) as node:   # ports 0 allowed: node.peer_port
        await node.wait_stopped()
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from chuanyu.exchange.v1 import exchange_service_pb2, local_service_pb2, operator_service_pb2
from gateway.adapter import load_adapter
from gateway.agreements import load_agreements
from gateway.config import NodeConfig
from gateway.envelope import Freshness
from gateway.errors import ConfigInvalid, GatewayError, StoreUnavailable
from gateway.node.folders import InboundFolder, OutboundFolder
from gateway.node.hooks import HookChain
from gateway.node.inbound import InboundService
from gateway.node.limits import PeerLimiter
from gateway.node.outbound import OutboundService, OutboxDispatcher
from gateway.node.reconcile import Reconciler
from gateway.node.retention import RetentionJob
from gateway.node.services import (
    EXCHANGE_SERVICE,
    LOCAL_SERVICE,
    OPERATOR_SERVICE,
    InboxSignal,
    exchange_handler,
    local_handler,
    operator_handler,
)
from gateway.pki import (
    SigningCertificateVerifier,
    bureau_of,
    expiring_certificates,
    key_id,
    key_matches_certificate,
    load_certificate,
    load_certificates,
    load_crls,
    load_private_key,
    signing_suite_of,
)
from gateway.signing import Signer, suite_named
from gateway.store.at_rest import default_key_file, open_vault
from gateway.store.base import OutboundState
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore
from gateway.translog import Direction, EventKind, LogEvent

__all__ = ["GatewayNode", "NodeIdentity", "load_identity"]

_log = logging.getLogger("chuanyu.node")


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    signer: Signer
    verifier: SigningCertificateVerifier
    server_credentials: grpc.ServerCredentials
    channel_credentials: grpc.ChannelCredentials


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigInvalid(f"cannot read {path}: {exc.strerror}") from exc


def load_identity(config: NodeConfig) -> NodeIdentity:
    """Load keys and certificates, and check they belong to this bureau."""
    bureau = config.bureau
    cas = load_certificates(config.tls.ca)
    signing_cert = load_certificate(config.signing.cert)
    if bureau_of(signing_cert) != bureau:
        raise ConfigInvalid(
            f"{config.source}: signing.cert {config.signing.cert} is for bureau "
            f"{bureau_of(signing_cert)}, not {bureau}"
        )
    tls_cert = load_certificate(config.tls.cert)
    if bureau_of(tls_cert) != bureau:
        raise ConfigInvalid(
            f"{config.source}: tls.cert {config.tls.cert} is for bureau {bureau_of(tls_cert)}, "
            f"not {bureau}"
        )
    suite = suite_named(config.signing.suite)
    signing_key = load_private_key(config.signing.key)
    suite.check_private_key(signing_key)
    if not key_matches_certificate(signing_cert, signing_key):
        raise ConfigInvalid(
            f"{config.source}: signing.key {config.signing.key} is not the key of "
            f"signing.cert {config.signing.cert}"
        )
    if signing_suite_of(signing_cert) != suite.name:
        raise ConfigInvalid(
            f"{config.source}: signing.suite is {suite.name} but signing.cert holds a "
            f"{signing_suite_of(signing_cert)} key"
        )
    crls = load_crls(config.tls.crl) if config.tls.crl is not None else []
    verifier = SigningCertificateVerifier(cas, crls=crls)
    # Our own certificate must pass the checks our partners will make.
    verifier.verify(
        signing_cert.public_bytes(serialization.Encoding.DER), now=dt.datetime.now(dt.UTC)
    )
    signer = Signer(
        bureau=bureau,
        suite=suite,
        private_key=signing_key,
        certificate_der=signing_cert.public_bytes(serialization.Encoding.DER),
        key_id=key_id(signing_cert),
    )
    ca_pem = _read(config.tls.ca)
    tls_key_pem, tls_cert_pem = _read(config.tls.key), _read(config.tls.cert)
    return NodeIdentity(
        signer=signer,
        verifier=verifier,
        server_credentials=grpc.ssl_server_credentials(
            [(tls_key_pem, tls_cert_pem)], root_certificates=ca_pem, require_client_auth=True
        ),
        channel_credentials=grpc.ssl_channel_credentials(
            root_certificates=ca_pem, private_key=tls_key_pem, certificate_chain=tls_cert_pem
        ),
    )


def _grpc_options(config: NodeConfig) -> list[tuple[str, int | str]]:
    size = config.exchange.max_message_bytes
    return [
        ("grpc.max_receive_message_length", size),
        ("grpc.max_send_message_length", size),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def _channel_options(config: NodeConfig) -> list[tuple[str, int | str]]:
    return [
        *_grpc_options(config),
        # The dispatcher keeps its own per-partner backoff and probes; gRPC's reconnect
        # backoff, shared through the global subchannel pool by every channel to an
        # address, must not stall it for minutes after the partner is back.
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 5_000),
    ]


def _server_options(config: NodeConfig) -> list[tuple[str, int | str]]:
    return [
        *_grpc_options(config),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.max_connection_idle_ms", 300_000),
    ]


class GatewayNode:
    """One bureau's node. Use as an async context manager."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.bureau = config.bureau
        self.identity = load_identity(config)
        # A bad agreement file stops the node here, naming file, key and rule.
        self.agreements = load_agreements(config.agreements.directory)
        key_file = config.storage.key_file or default_key_file(config.node.database)
        storage = config.storage
        self.store: SqliteStore | PostgresStore
        if storage.engine == "postgresql" and storage.dsn is not None:
            self.store = PostgresStore(
                storage.dsn,
                bureau=config.bureau,
                schema=storage.schema_name,
                vault=open_vault(key_file),
                lock_timeout_ms=storage.busy_timeout_ms,
                lease_seconds=storage.lease_seconds,
            )
        else:
            self.store = SqliteStore(
                config.node.database,
                bureau=config.bureau,
                busy_timeout_ms=storage.busy_timeout_ms,
                vault=open_vault(key_file),
            )
        self.serving = False
        self.signal = InboxSignal()
        self.hooks = HookChain()
        self.peer_port = 0
        self.local_port = 0
        self._peer_server: grpc.aio.Server | None = None
        self._local_server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()
        self._tasks: list[asyncio.Task[None]] = []
        self.console: Any = None  # attached by gateway.app: async start() and stop()
        self.outbound_folder: OutboundFolder | None = None
        self.inbound_folder: InboundFolder | None = None
        self._stopped = asyncio.Event()
        self.dispatchers = {
            p.bureau: OutboxDispatcher(
                partner=p,
                signer=self.identity.signer,
                verifier=self.identity.verifier,
                store=self.store,
                credentials=self.identity.channel_credentials,
                exchange=config.exchange,
                retry=config.retry,
                freshness_seconds=config.exchange.freshness_seconds,
                channel_options=_channel_options(config),
                hooks=self.hooks,
            )
            for p in config.partners
        }
        self.inbound = InboundService(
            bureau=config.bureau,
            partners=frozenset(self.dispatchers),
            signer=self.identity.signer,
            verifier=self.identity.verifier,
            store=self.store,
            agreements=self.agreements,
            freshness=Freshness(
                max_age=dt.timedelta(seconds=config.exchange.freshness_seconds),
                max_skew=dt.timedelta(seconds=config.exchange.max_clock_skew_seconds),
            ),
            hooks=self.hooks,
        )
        self.outbound = OutboundService(
            bureau=config.bureau,
            partners=config.partners,
            signer=self.identity.signer,
            store=self.store,
            wake=self._wake,
            agreements=self.agreements,
            hooks=self.hooks,
        )
        self._local_files()
        if config.console is not None:
            from gateway.app import attach_console

            attach_console(self)
        self.reconciler = Reconciler(
            bureau=config.bureau,
            partners=frozenset(self.dispatchers),
            signer=self.identity.signer,
            verifier=self.identity.verifier,
            store=self.store,
            callers={b: d.call_reconcile for b, d in self.dispatchers.items()},
        )
        self.retention = RetentionJob(
            self.store, self.agreements, config.retention.interval_seconds
        )

    def _local_files(self) -> None:
        settings = self.config.local_files
        if settings is None:
            return
        try:
            adapter = load_adapter(settings.adapter)
        except GatewayError as exc:
            raise ConfigInvalid(
                f"{self.config.source}: local_files.adapter: {exc.message}"
            ) from exc
        if settings.outbound is not None:
            self.outbound_folder = OutboundFolder(
                settings.outbound,
                adapter,
                self.outbound,
                self.store,
                settings.poll_seconds,
                settings.stream_above_bytes,
            )
        if settings.inbound is not None:
            self.inbound_folder = InboundFolder(
                settings.inbound, adapter, self.store, self.signal, settings.poll_seconds
            )

    def _wake(self, bureau: str) -> None:
        dispatcher = self.dispatchers.get(bureau)
        if dispatcher is not None:
            dispatcher.wake()

    async def redrive(self, message_id: str, *, operator: str) -> bool:
        """Put a dead-lettered message back in its partner's queue (at most once delivered:
        the partner de-duplicates on the unchanged message id)."""
        row = await self.store.get_outbound(message_id)
        if row is None or row.state is not OutboundState.DEAD_LETTERED:
            return False
        event = LogEvent(
            EventKind.REDRIVEN,
            Direction.OUTBOUND,
            peer=row.receiver,
            message_id=message_id,
            record_type=row.record_type,
            detail={"operator": operator, "previous_error": row.last_error[:300]},
        )
        if not await self.store.redrive(message_id, [event]):
            return False
        self._wake(row.receiver)
        return True

    def route(self, bureau: str, address: str) -> None:
        """Send to ``bureau`` at ``address`` instead of the configured one."""
        self.dispatchers[bureau].route(address)

    async def __aenter__(self) -> GatewayNode:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await self.store.open()
        try:
            await self._start_servers()
        except BaseException:
            await self.store.close()
            raise
        if self.console is not None:
            await self.console.start()
        self._supervise(self._watch_store(), "store-watch")
        self._supervise(self.retention.run(), "retention")
        if self.dispatchers:
            self._supervise(
                self.reconciler.run(self.config.reconcile.interval_seconds), "reconcile"
            )
        self._supervise(self._watch_certificates(), "certificate-watch")
        for folder in (self.outbound_folder, self.inbound_folder):
            if folder is not None:
                self._supervise(folder.run(), type(folder).__name__)
        for dispatcher in self.dispatchers.values():
            self._supervise(dispatcher.run(), f"dispatch-{dispatcher.partner.bureau}")
        _log.info(
            "bureau %s serving partners on port %d, local systems on port %d",
            self.bureau,
            self.peer_port,
            self.local_port,
        )

    async def _start_servers(self) -> None:
        options = _server_options(self.config)
        peer = grpc.aio.server(options=options)
        peer.add_generic_rpc_handlers(
            [
                exchange_handler(
                    self.inbound,
                    self.signal,
                    self.identity.verifier,
                    PeerLimiter(
                        max_concurrent=self.config.limits.max_concurrent_calls,
                        rate=self.config.limits.calls_per_second,
                        burst=self.config.limits.burst,
                    ),
                    self.reconciler,
                    stream_window=self.config.exchange.stream_window,
                )
            ]
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, peer)
        service_names = (
            exchange_service_pb2.DESCRIPTOR.services_by_name["ExchangeService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(service_names, peer)
        self.peer_port = peer.add_secure_port(
            self.config.listen.peer, self.identity.server_credentials
        )
        if self.peer_port == 0:
            raise ConfigInvalid(f"cannot listen on {self.config.listen.peer} (listen.peer)")

        local = grpc.aio.server(options=options)
        local.add_generic_rpc_handlers(
            [
                local_handler(self.outbound, self.store, self.signal),
                operator_handler(
                    self.store,
                    lambda message_id, operator: self.redrive(message_id, operator=operator),
                    self.reconciler,
                    next(iter(sorted(self.dispatchers)), ""),
                ),
            ]
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, local)
        reflection.enable_server_reflection(
            (
                local_service_pb2.DESCRIPTOR.services_by_name["LocalService"].full_name,
                operator_service_pb2.DESCRIPTOR.services_by_name["OperatorService"].full_name,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            local,
        )
        self.local_port = local.add_insecure_port(self.config.listen.local)
        if self.local_port == 0:
            raise ConfigInvalid(f"cannot listen on {self.config.listen.local} (listen.local)")
        await peer.start()
        await local.start()
        self._peer_server, self._local_server = peer, local
        await self._set_serving(True)

    def _supervise(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        """Run a background task; if it ever ends on its own, say so loudly."""
        task = asyncio.create_task(coroutine, name=name)
        task.add_done_callback(self._task_ended)
        self._tasks.append(task)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        _log.critical(
            "background task %s stopped%s", task.get_name(), f": {error!r}" if error else ""
        )

    async def _set_serving(self, serving: bool) -> None:
        self.serving = serving
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", EXCHANGE_SERVICE, LOCAL_SERVICE, OPERATOR_SERVICE):
            await self._health.set(name, status)

    async def _watch_store(self) -> None:
        """Readiness follows the store: NOT_SERVING while commits fail, back by itself."""
        interval = self.config.storage.probe_seconds
        while True:
            if not self.store.available:
                with contextlib.suppress(StoreUnavailable):
                    await self.store.probe()
            available = self.store.available
            if available != self.serving:
                if available:
                    _log.warning("store writable again: serving")
                else:
                    _log.error("store cannot commit (%s): not serving", self.store.last_error)
                await self._set_serving(available)
            await asyncio.sleep(interval if not available else min(interval, 0.5))

    def certificate_warnings(self) -> list[str]:
        """Certificates of this node expiring within the warning period (or expired)."""
        tls = self.config.tls
        paths = [tls.ca, tls.cert, self.config.signing.cert]
        soon = expiring_certificates(paths, tls.expiry_warning_days, dt.datetime.now(dt.UTC))
        return [
            f"{item.path.name} ({item.bureau or 'CA'}, {item.role}) expires "
            f"{item.not_after:%Y-%m-%d}: {item.remaining.days} day(s) left"
            for item in soon
        ]

    async def _watch_certificates(self) -> None:
        """Re-read the CRL when it changes; warn about certificates that expire soon."""
        tls = self.config.tls
        crl_mtime = tls.crl.stat().st_mtime if tls.crl is not None else 0.0
        next_expiry_check = 0.0
        loop = asyncio.get_running_loop()
        while True:
            if tls.crl is not None:
                try:
                    mtime = tls.crl.stat().st_mtime
                    if mtime != crl_mtime:
                        self.identity.verifier.set_crls(load_crls(tls.crl))
                        crl_mtime = mtime
                        _log.warning("revocation list %s reloaded", tls.crl)
                except (OSError, GatewayError) as exc:
                    # Keep the CRLs we have: a half-written file must not open the door.
                    _log.error("cannot reload the revocation list %s: %s", tls.crl, exc)
            if loop.time() >= next_expiry_check:
                for warning in await asyncio.to_thread(self.certificate_warnings):
                    _log.warning("certificate expiring: %s", warning)
                next_expiry_check = loop.time() + 3600
            await asyncio.sleep(tls.crl_reload_seconds)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking calls, let in-flight ones finish within ``grace``, then close."""
        await self._health.enter_graceful_shutdown()
        if self.console is not None:
            await self.console.stop()
        servers = [s for s in (self._peer_server, self._local_server) if s is not None]
        await asyncio.gather(*(s.stop(grace) for s in servers))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for dispatcher in self.dispatchers.values():
            await dispatcher.close()
        await self.inbound.drain()
        await self.store.close()
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()
