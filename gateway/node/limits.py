"""Per-partner admission limits (concurrent calls and streams, a token-bucket rate), and
refusals counted instead of logged one by one.

Past a limit a unary call is refused at once with ``RESOURCE_EXHAUSTED`` and a
``google.rpc.RetryInfo`` delay instead of joining a queue that grows; a bulk
stream is slowed instead (it waits for tokens, and HTTP/2 flow control pushes
back on the sender), but one stream more than a peer may hold open is refused.
The clock is injectable so the arithmetic is testable.

:class:`RejectionTally` is the pure part of refusal logging: the first refusal of a
(peer, reason) in an interval is logged in full, the rest only counted, and
:class:`RejectionLog` writes both to the transfer log and the node log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.errors import GatewayError, Overloaded
from gateway.store.base import Store
from gateway.translog import Direction, EventKind, LogEvent

__all__ = ["PeerLimiter", "RejectionLog", "RejectionSummary", "RejectionTally"]

_log = logging.getLogger("chuanyu.inbound")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    in_flight: int = 0
    streams: int = 0


@dataclass(slots=True)
class PeerLimiter:
    max_concurrent: int
    rate: float  # calls (or stream envelopes) per second
    burst: int
    max_streams: int = 16
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

    def open_stream(self, peer: str) -> None:
        """Take a stream slot, or raise :class:`Overloaded`: idle streams cost memory."""
        bucket = self._bucket(peer)
        if bucket.streams >= self.max_streams:
            raise Overloaded(
                f"bureau {peer} has {bucket.streams} streams open; the limit is {self.max_streams}",
                retry_after=1.0,
            )
        bucket.streams += 1

    def close_stream(self, peer: str) -> None:
        bucket = self._buckets.get(peer)
        if bucket is not None and bucket.streams > 0:
            bucket.streams -= 1

    def streams(self, peer: str) -> int:
        """How many streams ``peer`` holds open now."""
        bucket = self._buckets.get(peer)
        return 0 if bucket is None else bucket.streams


@dataclass(frozen=True, slots=True)
class RejectionSummary:
    """Refusals of one peer for one reason after the first one of an interval."""

    peer: str
    reason: str
    count: int
    seconds: float  # from the logged refusal to the end of counting
    last_error: str


@dataclass(slots=True)
class _Window:
    opened: float
    count: int = 0
    last_error: str = ""


@dataclass(slots=True)
class RejectionTally:
    """Which refusals to log in full and how many to count. Pure: time is passed in."""

    interval: float
    _windows: dict[tuple[str, str], _Window] = field(default_factory=dict)

    def note(self, peer: str, reason: str, error: str, now: float) -> bool:
        """True if this refusal opens an interval for (peer, reason): log it in full."""
        window = self._windows.get((peer, reason))
        if window is None:
            self._windows[(peer, reason)] = _Window(opened=now)
            return True
        window.count += 1
        window.last_error = error
        return False

    def due(self, now: float) -> list[RejectionSummary]:
        """Close the intervals that have ended; a summary for each that counted any."""
        ended = [k for k, w in self._windows.items() if now - w.opened >= self.interval]
        return self._close(ended, now)

    def close_all(self, now: float) -> list[RejectionSummary]:
        return self._close(list(self._windows), now)

    def _close(self, keys: list[tuple[str, str]], now: float) -> list[RejectionSummary]:
        summaries = []
        for peer, reason in keys:
            window = self._windows.pop((peer, reason))
            if window.count:
                summaries.append(
                    RejectionSummary(
                        peer, reason, window.count, now - window.opened, window.last_error
                    )
                )
        return summaries


class RejectionLog:
    """Refusals of inbound calls and envelopes, into the transfer log and the node log.

    A flood of one peer's refusals for one reason costs at most two transfer-log
    entries an interval: the first refusal, and the count of the rest.
    """

    def __init__(
        self, store: Store, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._tally = RejectionTally(interval)
        self._clock = clock

    async def refused(
        self, peer: str, error: GatewayError, *, message_id: str = "", record_type: str = ""
    ) -> None:
        if not self._tally.note(peer, error.reason, error.message[:500], self._clock()):
            return
        _log.warning(
            "refused %s from %s: %s [%s]",
            message_id or "a call",
            peer or "(no bureau in certificate)",
            error.message,
            error.reason,
        )
        await self._store.append_log(
            [
                LogEvent(
                    EventKind.REJECTED,
                    Direction.INBOUND,
                    peer=peer,
                    message_id=message_id,
                    record_type=record_type,
                    detail={"reason": error.reason, "error": error.message[:500]},
                )
            ]
        )

    async def run(self) -> None:
        """Write the counts of ended intervals, until cancelled."""
        while True:
            await asyncio.sleep(min(self._tally.interval / 4, 5.0))
            await self._write(self._tally.due(self._clock()))

    async def flush(self) -> None:
        """Write every count so far (at shutdown, before the store closes)."""
        await self._write(self._tally.close_all(self._clock()))

    async def _write(self, summaries: list[RejectionSummary]) -> None:
        if not summaries:
            return
        for item in summaries:
            _log.warning(
                "refused %d more from %s [%s] in %.0f s; the last: %s",
                item.count,
                item.peer or "(no bureau in certificate)",
                item.reason,
                item.seconds,
                item.last_error,
            )
        events = [
            LogEvent(
                EventKind.REJECTED,
                Direction.INBOUND,
                peer=item.peer,
                detail={
                    "reason": item.reason,
                    "count": item.count,
                    "seconds": round(item.seconds, 3),
                    "error": item.last_error,
                },
            )
            for item in summaries
        ]
        try:
            await self._store.append_log(events)
        except GatewayError as exc:
            # The node log above keeps the counts; the chain must not stop the node.
            _log.error("could not log %d refusal counts: %s", len(events), exc)
