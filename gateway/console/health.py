"""What the console shows of the node's health: log integrity and certificates.

The hash chain is verified (it reads every entry) on a timer and on demand, and the
verdict is cached: pages show the cached verdict and when it was reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from cryptography import x509

from gateway.clock import utc_now
from gateway.errors import GatewayError
from gateway.translog import ChainVerdict

__all__ = [
    "CertificateStatus",
    "IntegrityMonitor",
    "IntegrityStatus",
    "certificate_status",
    "certificate_statuses",
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

    def __init__(
        self, verify: Callable[[], Awaitable[ChainVerdict]], interval_seconds: float
    ) -> None:
        self._verify = verify
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
                verdict = await self._verify()
            finally:
                self.status = IntegrityStatus(
                    self.status.verdict, self.status.checked_at, self.status.seconds
                )
            self.status = IntegrityStatus(verdict, utc_now(), loop.time() - started)
            if not verdict.ok:
                _log.error(
                    "transfer log BROKEN at entry %s: %s", verdict.first_bad_seq, verdict.problem
                )
            return self.status


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


def certificate_statuses(certificates: Mapping[str, x509.Certificate]) -> list[CertificateStatus]:
    return [certificate_status(name, cert) for name, cert in certificates.items()]
