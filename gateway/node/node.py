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
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from chuanyu.exchange.v1 import exchange_service_pb2, local_service_pb2, operator_service_pb2
from gateway.adapter import load_adapter
from gateway.agreements import load_agreements
from gateway.clock import utc_now
from gateway.config import NodeConfig
from gateway.envelope import Freshness
from gateway.errors import ConfigInvalid, GatewayError, StoreUnavailable
from gateway.node.dispatcher import OutboxDispatcher
from gateway.node.folders import InboundFolder, OutboundFolder
from gateway.node.grpc import (
    EXCHANGE_SERVICE,
    HARD_LIMIT_HEADROOM,
    LOCAL_SERVICE,
    OPERATOR_SERVICE,
    PartnersOnly,
    exchange_handler,
    local_handler,
    operator_handler,
)
from gateway.node.hooks import HookChain
from gateway.node.identity import NodeIdentity, channel_options, load_identity, server_options
from gateway.node.inbound import InboundService
from gateway.node.limits import PeerLimiter, RejectionLog
from gateway.node.outbound import OutboundService
from gateway.node.partner import PartnerClient, PartnerHealth
from gateway.node.reconcile import Reconciler
from gateway.node.retention import RetentionJob
from gateway.node.signal import InboxSignal
from gateway.pki import expiring_certificates, load_crls
from gateway.store import NodeStore, key_file_for, open_store
from gateway.store.at_rest import open_vault

__all__ = ["GatewayNode", "NodeIdentity", "Surface", "load_identity"]

_log = logging.getLogger("chuanyu.node")


class Surface(Protocol):
    """Something served beside the node (an operator console): it starts after the
    node's servers and stops before them."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class GatewayNode:
    """One bureau's node. Use as an async context manager."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.bureau = config.bureau
        self.identity = load_identity(config)
        # A bad agreement file stops the node here, naming file, key and rule.
        self.agreements = load_agreements(config.agreements.directory)
        self.store: NodeStore = open_store(config, open_vault(key_file_for(config)))
        self.serving = False
        self.signal = InboxSignal()
        self.hooks = HookChain()
        self.peer_port = 0
        self.local_port = 0
        self._peer_server: grpc.aio.Server | None = None
        self._local_server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()
        self._tasks: list[asyncio.Task[None]] = []
        self._surfaces: list[Surface] = []
        self.outbound_folder: OutboundFolder | None = None
        self.inbound_folder: InboundFolder | None = None
        self._stopped = asyncio.Event()
        self.partners = {
            p.bureau: PartnerClient(
                p,
                self.identity.channel_credentials,
                exchange=config.exchange,
                retry=config.retry,
                channel_options=channel_options(config),
            )
            for p in config.partners
        }
        self.dispatchers = {
            p.bureau: OutboxDispatcher(
                partner=p,
                client=self.partners[p.bureau],
                signer=self.identity.signer,
                verifier=self.identity.verifier,
                store=self.store,
                exchange=config.exchange,
                retry=config.retry,
                freshness_seconds=config.exchange.freshness_seconds,
                hooks=self.hooks,
            )
            for p in config.partners
        }
        limits = config.limits
        self.rejections = RejectionLog(self.store, limits.rejection_log_seconds)
        self.limiter = PeerLimiter(
            max_concurrent=limits.max_concurrent_calls,
            rate=limits.calls_per_second,
            burst=limits.burst,
            max_streams=limits.max_streams_per_peer,
        )
        self.inbound = InboundService(
            bureau=config.bureau,
            partners=frozenset(self.dispatchers),
            signer=self.identity.signer,
            verifier=self.identity.verifier,
            store=self.store,
            agreements=self.agreements,
            rejections=self.rejections,
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
            retry=config.retry,
            hooks=self.hooks,
        )
        self._local_files()
        self.reconciler = Reconciler(
            bureau=config.bureau,
            partners=frozenset(self.dispatchers),
            signer=self.identity.signer,
            verifier=self.identity.verifier,
            store=self.store,
            clients=self.partners,
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

    def partner_health(self) -> dict[str, PartnerHealth]:
        """What this node knows of each partner, from its calls and probes."""
        return {bureau: client.health() for bureau, client in self.partners.items()}

    async def probe_partners(self) -> dict[str, PartnerHealth]:
        """A ``grpc.health.v1`` check of every partner over its channel."""
        results = await asyncio.gather(*(c.probe() for c in self.partners.values()))
        return dict(zip(self.partners, results, strict=True))

    def attach(self, surface: Surface) -> None:
        """Run ``surface`` with the node: started after the servers, stopped first."""
        self._surfaces.append(surface)

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
        for surface in self._surfaces:
            await surface.start()
        self._supervise(self._watch_store(), "store-watch")
        self._supervise(self.retention.run(), "retention")
        self._supervise(self.rejections.run(), "rejection-log")
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
        # grpc reads a request up to a little over the limit, so the handlers refuse it with
        # details (MESSAGE_TOO_LARGE); past that grpc refuses it bare, unread.
        limit = self.config.exchange.max_message_bytes
        options = [
            *(o for o in server_options(self.config) if o[0] != "grpc.max_receive_message_length"),
            ("grpc.max_receive_message_length", limit + HARD_LIMIT_HEADROOM),
        ]
        peer = grpc.aio.server(
            options=[
                *options,
                ("grpc.max_concurrent_streams", self.config.limits.max_streams_per_connection),
            ],
            interceptors=[
                PartnersOnly(
                    self.bureau,
                    frozenset(self.dispatchers),
                    self.identity.verifier,
                    self.rejections,
                )
            ],
        )
        peer.add_generic_rpc_handlers(
            [
                exchange_handler(
                    self.inbound,
                    self.signal,
                    self.identity.verifier,
                    self.limiter,
                    self.reconciler,
                    stream_window=self.config.exchange.stream_window,
                    max_message_bytes=limit,
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
                local_handler(self.outbound, self.store, self.signal, max_message_bytes=limit),
                operator_handler(
                    self.store,
                    lambda message_id, operator: self.outbound.redrive(
                        message_id, operator=operator
                    ),
                    self.reconciler,
                    next(iter(sorted(self.dispatchers)), ""),
                    max_message_bytes=limit,
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
        soon = expiring_certificates(paths, tls.expiry_warning_days, utc_now())
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
        for surface in reversed(self._surfaces):
            await surface.stop()
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
        await self.rejections.flush()
        await self.store.close()
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()
