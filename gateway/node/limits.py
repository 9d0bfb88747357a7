"""Per-partner admission limits: concurrent calls and a token-bucket rate.

Past a limit a unary call is refused at once with ``RESOURCE_EXHAUSTED`` and a
``google.rpc.RetryInfo`` delay instead of joining a queue that grows; a bulk
stream is slowed instead (it waits for tokens, and HTTP/2 flow control pushes
back on the sender). The clock is injectable so the arithmetic is testable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.errors import Overloaded

__all__ = ["PeerLimiter"]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    in_flight: int = 0


@dataclass(slots=True)
class PeerLimiter:
    max_concurrent: int
    rate: float  # calls (or stream envelopes) per second
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def _bucket(self, peer: str) -> _Bucket:
        bucket = self._buckets.get(peer)
        now = self.clock()
        if bucket is None:
            bucket = self._buckets[peer] = _Bucket(tokens=float(self.burst), updated=now)
        else:
            bucket.tokens = min(
                float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate
            )
            bucket.updated = now
        return bucket

    def admit(self, peer: str) -> None:
        """Take a call slot and a token, or raise :class:`Overloaded`."""
        bucket = self._bucket(peer)
        if bucket.in_flight >= self.max_concurrent:
            raise Overloaded(
                f"bureau {peer} has {bucket.in_flight} calls in flight; the limit is "
                f"{self.max_concurrent}",
                retry_after=0.1,
            )
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) / self.rate
            raise Overloaded(
                f"bureau {peer} is over {self.rate:g} calls per second", retry_after=wait
            )
        bucket.tokens -= 1.0
        bucket.in_flight += 1

    def release(self, peer: str) -> None:
        bucket = self._buckets.get(peer)
        if bucket is not None and bucket.in_flight > 0:
            bucket.in_flight -= 1

    async def pace(self, peer: str) -> None:
        """Wait for a token (bulk streams are slowed down, never refused)."""
        while True:
            bucket = self._bucket(peer)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            await asyncio.sleep((1.0 - bucket.tokens) / self.rate)
