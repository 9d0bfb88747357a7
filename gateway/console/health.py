"""What the console knows about the node's health: log integrity, peers, certificates.

The hash chain is verified in a worker thread (it reads every entry) on a timer
and on demand, and the verdict is cached: pages show the cached verdict and when
it was reached. Partners are probed with the standard gRPC health check over the
node's own mutual-TLS credentials, so a node with nothing to send still knows
whether its partners answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.errors import GatewayError
from gateway.store.sqlite import iter_log_file
from gateway.translog import ChainVerdict, verify_chain

__all__ = [
    "CertificateStatus",
    "IntegrityMonitor",
    "IntegrityStatus",
    "PeerProbe",
    "PeerProber",
    "certificate_status",
]

_log = logging.getLogger("chuanyu.console")


@dataclass(frozen=True, slots=True)
class IntegrityStatus:
    verdict: ChainVerdict | None  # None: not verified yet
    checked_at: dt.datetime | None
    seconds: float = 0.0
    running: bool = False

    def as_json(self) -> dict[str, object]:
        v = self.verdict
        return {
            "verified": v is not None,
            "ok": None if v is None else v.ok,
            "entries": None if v is None else v.entries,
            "head": None if v is None else v.head.hex(),
            "first_bad_seq": None if v is None else v.first_bad_seq,
            "problem": "" if v is None else v.problem,
            "checked_at": None if self.checked_at is None else self.checked_at.isoformat(),
            "seconds": round(self.seconds, 3),
            "running": self.running,
        }


class IntegrityMonitor:
    """Verifies the transfer log's hash chain now and then; keeps the last verdict."""

    def __init__(self, database: Path, interval_seconds: float) -> None:
        self._database = database
        self._interval = interval_seconds
        self._lock = asyncio.Lock()
        self.status = IntegrityStatus(None, None)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="console-integrity")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.verify()
            except GatewayError as exc:
                _log.error("transfer-log verification could not run: %s", exc.message)
            await asyncio.sleep(self._interval)

    async def verify(self) -> IntegrityStatus:
        """Verify now (a request while one runs waits for it and shares its verdict)."""
        if self._lock.locked():
            async with self._lock:
                return self.status
        async with self._lock:
            self.status = IntegrityStatus(
                self.status.verdict, self.status.checked_at, self.status.seconds, running=True
            )
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                verdict = await asyncio.to_thread(
                    lambda: verify_chain(iter_log_file(self._database))
                )
            finally:
                self.status = IntegrityStatus(
                    self.status.verdict, self.status.checked_at, self.status.seconds
                )
            self.status = IntegrityStatus(verdict, dt.datetime.now(dt.UTC), loop.time() - started)
            if not verdict.ok:
                _log.error(
                    "transfer log BROKEN at entry %s: %s", verdict.first_bad_seq, verdict.problem
                )
            return self.status


@dataclass(frozen=True, slots=True)
class PeerProbe:
    peer: str
    address: str
    serving: bool
    checked_at: dt.datetime
    error: str = ""


class PeerProber:
    """gRPC health checks of every partner, over the node's mutual-TLS credentials."""

    def __init__(
        self,
        credentials: grpc.ChannelCredentials,
        addresses: Callable[[], dict[str, str]],
        interval_seconds: float,
    ) -> None:
        self._credentials = credentials
        # A callable: the dispatcher's current route wins (tests re-route partners).
        self._addresses = addresses
        self._interval = interval_seconds
        self.results: dict[str, PeerProbe] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="console-peer-probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.gather(*(self.probe(p, a) for p, a in self._addresses().items()))
            await asyncio.sleep(self._interval)

    async def probe(self, peer: str, address: str) -> PeerProbe:
        error = ""
        serving = False
        try:
            async with grpc.aio.secure_channel(address, self._credentials) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                response = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
                serving = response.status == health_pb2.HealthCheckResponse.SERVING
                if not serving:
                    error = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        except grpc.aio.AioRpcError as exc:
            error = f"{exc.code().name}: {(exc.details() or '')[:200]}"
        result = PeerProbe(peer, address, serving, dt.datetime.now(dt.UTC), error)
        self.results[peer] = result
        return result


@dataclass(frozen=True, slots=True)
class CertificateStatus:
    name: str  # "tls" | "signing"
    subject: str
    not_after: dt.datetime
    not_before: dt.datetime

    def seconds_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds()

    def days_left(self, now: dt.datetime) -> int:
        return int(self.seconds_left(now) // 86400)

    def valid(self, now: dt.datetime) -> bool:
        return self.not_before <= now < self.not_after


def certificate_status(name: str, cert: x509.Certificate) -> CertificateStatus:
    return CertificateStatus(
        name=name,
        subject=cert.subject.rfc4514_string(),
        not_after=cert.not_valid_after_utc,
        not_before=cert.not_valid_before_utc,
    )
