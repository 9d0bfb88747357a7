"""Read-only queries behind the console, on connections of its own.

The store's single writer owns every write that touches the transfer log; the
console only reads, on its own read-only connections (WAL lets them run beside
the writer) in a small thread pool, so a slow page never holds up the exchange.

The transfers list is a union of the outbox (outbound) and the inbox (inbound),
newest first, paged by keyset ``(at, message_id)``: each page is an index range
scan whatever its depth. ``CONSOLE_INDEXES`` are the indexes that keep it so
(``bench/console_transfers.py`` measures them on a million log rows).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gateway.errors import StoreUnavailable

__all__ = [
    "CONSOLE_INDEXES",
    "DIRECTIONS",
    "STATUSES",
    "LogRow",
    "ReadPool",
    "StoredMessage",
    "TransferFilter",
    "TransferPage",
    "TransferRow",
    "dead_letters",
    "ensure_indexes",
    "inbound_counts",
    "list_transfers",
    "log_after",
    "log_latest",
    "message_timeline",
    "outbound_counts",
    "pending_by_peer",
    "stored_message",
    "throughput",
]

T = TypeVar("T")

DIRECTIONS = ("outbound", "inbound")
# Outbound states as the store keeps them; inbound: "received" until the local system
# takes it, then "delivered" (to local).
STATUSES = ("pending", "delivered", "rejected", "dead_lettered", "received")
MAX_PAGE = 200

CONSOLE_INDEXES = """
CREATE INDEX IF NOT EXISTS console_outbox_time ON outbox (created_at, message_id);
CREATE INDEX IF NOT EXISTS console_outbox_state
    ON outbox (state, receiver, record_type, created_at);
CREATE INDEX IF NOT EXISTS console_outbox_record_key ON outbox (record_key);
CREATE INDEX IF NOT EXISTS console_inbox_time ON inbox (received_at, message_id);
CREATE INDEX IF NOT EXISTS console_inbox_peer ON inbox (sender, record_type, delivered_at);
CREATE INDEX IF NOT EXISTS console_inbox_record_key ON inbox (record_key);
"""


def ensure_indexes(conn: sqlite3.Connection) -> None:
    """Create the console's indexes (idempotent; the first run on a big database takes a while)."""
    conn.executescript(CONSOLE_INDEXES)


class ReadPool:
    """A few threads, each with its own read-only connection to the node database."""

    def __init__(self, path: Path, workers: int = 3) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="console-read")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA busy_timeout=5000")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._connection())
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"console cannot read the node database: {exc}") from exc

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()


# ---------------------------------------------------------------------------
# Transfers


@dataclass(frozen=True, slots=True)
class TransferFilter:
    direction: str = ""
    peer: str = ""
    record_type: str = ""
    status: str = ""
    since: str = ""  # ISO 8601 UTC, inclusive
    until: str = ""  # ISO 8601 UTC, exclusive
    q: str = ""  # message id, USCC, complaint number or referral number (exact)
    cursor: str = ""
    limit: int = 50


@dataclass(frozen=True, slots=True)
class TransferRow:
    direction: str
    message_id: str
    peer: str
    record_type: str
    record_key: str
    status: str
    at: str
    attempts: int
    last_error: str

    def as_json(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "message_id": self.message_id,
            "peer": self.peer,
            "record_type": self.record_type,
            "record_key": self.record_key,
            "status": self.status,
            "at": self.at,
            "attempts": self.attempts,
            "last_error": self.last_error,
        }


@dataclass(frozen=True, slots=True)
class TransferPage:
    rows: list[TransferRow]
    next_cursor: str = ""


def encode_cursor(at: str, message_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([at, message_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, message_id = json.loads(raw)
    except (ValueError, binascii.Error, TypeError):
        raise ValueError("cursor is not one this API handed out") from None
    if not isinstance(at, str) or not isinstance(message_id, str):
        raise ValueError("cursor is not one this API handed out")
    return at, message_id


@dataclass
class _Query:
    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        self.where.append(clause)
        self.params.extend(params)

    def sql(self) -> str:
        return " AND ".join(self.where) if self.where else "1"


# States that hold few rows: a filter on one of them is selective, so its index wins. Every
# other filter is unselective (four record types, a handful of peers, almost every row
# delivered), and the best plan walks the time index newest first and filters as it goes;
# the unary ``+`` keeps SQLite from choosing an equality index and sorting the whole match.
_RARE_STATES = frozenset({"pending", "rejected", "dead_lettered"})


def _outbound_sql(f: TransferFilter, after: tuple[str, str] | None, limit: int) -> _Query | None:
    if f.direction not in ("", "outbound") or f.status == "received":
        return None
    q = _Query()
    hint = "" if f.status in _RARE_STATES or f.q else "+"
    if f.q:
        q.add("(message_id = ? OR record_key = ?)", f.q, f.q)
    if f.peer:
        q.add(f"{hint}receiver = ?", f.peer)
    if f.record_type:
        q.add(f"{hint}record_type = ?", f.record_type)
    if f.status:
        q.add(f"{hint}state = ?", f.status)
    if f.since:
        q.add("created_at >= ?", f.since)
    if f.until:
        q.add("created_at < ?", f.until)
    if after is not None:
        q.add("(created_at, message_id) < (?, ?)", *after)
    q.params.append(limit)
    return q


def _inbound_sql(f: TransferFilter, after: tuple[str, str] | None, limit: int) -> _Query | None:
    if f.direction not in ("", "inbound") or f.status not in ("", "received", "delivered"):
        return None
    q = _Query()
    if f.q:
        q.add("(message_id = ? OR record_key = ?)", f.q, f.q)
    if f.peer:
        q.add("+sender = ?", f.peer)
    if f.record_type:
        q.add("+record_type = ?", f.record_type)
    if f.status == "received":
        # Few rows wait for the local system: the inbox_undelivered index finds them.
        q.add("delivered_at IS NULL")
    elif f.status == "delivered":
        q.add("+delivered_at IS NOT NULL")
    if f.since:
        q.add("received_at >= ?", f.since)
    if f.until:
        q.add("received_at < ?", f.until)
    if after is not None:
        q.add("(received_at, message_id) < (?, ?)", *after)
    q.params.append(limit)
    return q


_OUTBOUND_SELECT = (
    "SELECT 'outbound', message_id, receiver, record_type, record_key, state, created_at, "
    "attempts, last_error FROM outbox WHERE {where} "
    "ORDER BY created_at DESC, message_id DESC LIMIT ?"
)
_INBOUND_SELECT = (
    "SELECT 'inbound', message_id, sender, record_type, record_key, "
    "CASE WHEN delivered_at IS NULL THEN 'received' ELSE 'delivered' END, received_at, 0, '' "
    "FROM inbox WHERE {where} ORDER BY received_at DESC, message_id DESC LIMIT ?"
)


def list_transfers(conn: sqlite3.Connection, f: TransferFilter) -> TransferPage:
    """One page, newest first; ``next_cursor`` is empty on the last page."""
    limit = max(1, min(MAX_PAGE, f.limit))
    after = decode_cursor(f.cursor)
    rows: list[TransferRow] = []
    for select, query in (
        (_OUTBOUND_SELECT, _outbound_sql(f, after, limit + 1)),
        (_INBOUND_SELECT, _inbound_sql(f, after, limit + 1)),
    ):
        if query is None:
            continue
        for r in conn.execute(select.format(where=query.sql()), query.params):
            rows.append(TransferRow(*r))
    # Each side is sorted and cut already; merging the two cuts gives the true page.
    rows.sort(key=lambda r: (r.at, r.message_id), reverse=True)
    page = rows[:limit]
    more = len(rows) > limit
    cursor = encode_cursor(page[-1].at, page[-1].message_id) if more and page else ""
    return TransferPage(page, cursor)


# ---------------------------------------------------------------------------
# Overview


def outbound_counts(conn: sqlite3.Connection) -> list[tuple[str, str, str, int]]:
    """(state, peer, record type, count), from the covering state index."""
    return [
        (str(r[0]), str(r[1]), str(r[2]), int(r[3]))
        for r in conn.execute(
            "SELECT state, receiver, record_type, count(*) FROM outbox GROUP BY 1, 2, 3"
        )
    ]


def inbound_counts(conn: sqlite3.Connection) -> list[tuple[str, str, int, int]]:
    """(peer, record type, received, not yet taken by the local system)."""
    return [
        (str(r[0]), str(r[1]), int(r[2]), int(r[3]))
        for r in conn.execute(
            "SELECT sender, record_type, count(*), sum(delivered_at IS NULL) FROM inbox "
            "GROUP BY 1, 2"
        )
    ]


def pending_by_peer(conn: sqlite3.Connection) -> dict[str, tuple[int, int, str | None]]:
    """peer → (pending, dead-lettered, oldest pending created-at)."""
    out: dict[str, tuple[int, int, str | None]] = {}
    for peer, count, oldest in conn.execute(
        "SELECT receiver, count(*), min(created_at) FROM outbox WHERE state = 'pending' "
        "GROUP BY receiver"
    ):
        out[peer] = (int(count), 0, oldest)
    for peer, count in conn.execute(
        "SELECT receiver, count(*) FROM outbox WHERE state = 'dead_lettered' GROUP BY receiver"
    ):
        pending, _, oldest = out.get(peer, (0, 0, None))
        out[peer] = (pending, int(count), oldest)
    return out


def _seq_at_or_after(conn: sqlite3.Connection, at: str, last: int) -> int:
    """First seq whose time is ≥ ``at`` by bisection on seq: the log is appended in time
    order, so this avoids an index on ``at`` (which the writer would pay for on every entry)."""
    lo, hi = 1, last + 1
    while lo < hi:
        mid = (lo + hi) // 2
        row = conn.execute("SELECT at FROM transfer_log WHERE seq = ?", (mid,)).fetchone()
        if row is None or row[0] < at:
            lo = mid + 1
        else:
            hi = mid
    return lo


def throughput(
    conn: sqlite3.Connection, now: dt.datetime, hours: int = 24
) -> list[tuple[str, int, int]]:
    """(hour start ISO, sent, received) for the last ``hours`` hours, oldest first."""
    start = (now - dt.timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    row = conn.execute("SELECT max(seq) FROM transfer_log").fetchone()
    last = int(row[0] or 0)
    buckets: dict[str, list[int]] = {}
    for i in range(hours):
        hour = start + dt.timedelta(hours=i)
        buckets[hour.isoformat(timespec="hours")[:13]] = [0, 0]
    if last:
        first = _seq_at_or_after(conn, start.isoformat(timespec="microseconds"), last)
        for hour, kind, count in conn.execute(
            "SELECT substr(at, 1, 13), kind, count(*) FROM transfer_log "
            "WHERE seq >= ? AND kind IN ('sent', 'received') GROUP BY 1, 2",
            (first,),
        ):
            bucket = buckets.get(hour)
            if bucket is not None:
                bucket[0 if kind == "sent" else 1] += int(count)
    return [(hour + ":00", sent, received) for hour, (sent, received) in buckets.items()]


def dead_letters(conn: sqlite3.Connection, limit: int = 500) -> list[TransferRow]:
    return [
        TransferRow(*r)
        for r in conn.execute(
            "SELECT 'outbound', message_id, receiver, record_type, record_key, state, created_at, "
            "attempts, last_error FROM outbox WHERE state = 'dead_lettered' "
            "ORDER BY created_at DESC LIMIT ?",
            (limit,),
        )
    ]


# ---------------------------------------------------------------------------
# Transfer log


@dataclass(frozen=True, slots=True)
class LogRow:
    seq: int
    at: str
    kind: str
    direction: str
    peer: str
    message_id: str
    record_type: str
    detail: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "kind": self.kind,
            "direction": self.direction,
            "peer": self.peer,
            "message_id": self.message_id,
            "record_type": self.record_type,
            "detail": self.detail,
        }


# Column lists are module constants and every value is a bound parameter (hence the S608 noqa).
_LOG_COLUMNS = "seq, at, kind, direction, peer, message_id, record_type, detail"


def _log_row(r: tuple[Any, ...]) -> LogRow:
    try:
        detail = json.loads(r[7])
    except ValueError:
        detail = {}
    return LogRow(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], detail)


def log_after(conn: sqlite3.Connection, after_seq: int = 0, limit: int = 200) -> list[LogRow]:
    return [
        _log_row(r)
        for r in conn.execute(
            f"SELECT {_LOG_COLUMNS} FROM transfer_log WHERE seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
            (after_seq, limit),
        )
    ]


def log_latest(conn: sqlite3.Connection, limit: int = 50) -> list[LogRow]:
    rows = conn.execute(
        f"SELECT {_LOG_COLUMNS} FROM transfer_log ORDER BY seq DESC LIMIT ?",  # noqa: S608
        (limit,),
    ).fetchall()
    return [_log_row(r) for r in reversed(rows)]


def message_timeline(conn: sqlite3.Connection, message_id: str) -> list[LogRow]:
    return [
        _log_row(r)
        for r in conn.execute(
            f"SELECT {_LOG_COLUMNS} FROM transfer_log WHERE message_id = ? ORDER BY seq",  # noqa: S608
            (message_id,),
        )
    ]


@dataclass(frozen=True, slots=True)
class StoredMessage:
    direction: str
    message_id: str
    peer: str
    record_type: str
    record_key: str
    status: str
    at: str
    attempts: int
    last_error: str
    envelope: bytes
    receipt: bytes


def stored_message(
    conn: sqlite3.Connection, direction: str, message_id: str, bureau: str
) -> StoredMessage | None:
    """The stored envelope and receipt of one message (``bureau``: this node)."""
    if direction == "outbound":
        row = conn.execute(
            "SELECT message_id, receiver, record_type, record_key, state, created_at, attempts, "
            "last_error, envelope FROM outbox WHERE message_id = ?",
            (message_id,),
        ).fetchone()
        issuer_column = 1
    elif direction == "inbound":
        row = conn.execute(
            "SELECT message_id, sender, record_type, record_key, "
            "CASE WHEN delivered_at IS NULL THEN 'received' ELSE 'delivered' END, received_at, "
            "0, '', envelope FROM inbox WHERE message_id = ? ORDER BY seq LIMIT 1",
            (message_id,),
        ).fetchone()
        issuer_column = -1
    else:
        return None
    if row is None:
        return None
    # Outbound: the peer's receipt for us; inbound: the one we issued.
    issuer = row[issuer_column] if issuer_column >= 0 else bureau
    receipt = conn.execute(
        "SELECT receipt FROM receipts WHERE issuer = ? AND message_id = ?", (issuer, message_id)
    ).fetchone()
    return StoredMessage(
        direction,
        str(row[0]),
        str(row[1]),
        str(row[2]),
        str(row[3]),
        str(row[4]),
        str(row[5]),
        int(row[6]),
        str(row[7]),
        bytes(row[8]),
        b"" if receipt is None else bytes(receipt[0]),
    )
