"""The console's read views and operator rows over a node's SQLite file (interim).

These implement :class:`~gateway.store.reads.ConsoleReads` and
:class:`~gateway.store.reads.OperatorRecords` for the SQLite engine until the store
provides both for every engine; then this module goes. The composition root
(:mod:`gateway.app`) builds them; nothing else in the console imports this module.

The transfers list is a union of the outbox (outbound) and the inbox (inbound),
newest first, paged by keyset ``(at, message_id)``: each page is an index range
scan whatever its depth. ``CONSOLE_INDEXES`` keep it so
(``bench/console_transfers.py`` measures them on a million log rows).
"""

from __future__ import annotations

import asyncio
import dataclasses
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
from gateway.store.at_rest import AtRest
from gateway.store.reads import (
    MAX_PAGE,
    InboundCount,
    LogRow,
    OperatorRow,
    OutboundCount,
    PeerBacklog,
    SessionRow,
    StoredMessage,
    TransferFilter,
    TransferPage,
    TransferRow,
    decode_cursor,
    encode_cursor,
)

__all__ = ["CONSOLE_INDEXES", "SqliteConsoleReads", "SqliteOperatorRecords", "ensure_indexes"]

T = TypeVar("T")

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


def outbound_counts(conn: sqlite3.Connection) -> list[OutboundCount]:
    """From the covering state index."""
    return [
        OutboundCount(str(r[0]), str(r[1]), str(r[2]), int(r[3]))
        for r in conn.execute(
            "SELECT state, receiver, record_type, count(*) FROM outbox GROUP BY 1, 2, 3"
        )
    ]


def inbound_counts(conn: sqlite3.Connection) -> list[InboundCount]:
    return [
        InboundCount(str(r[0]), str(r[1]), int(r[2]), int(r[3]))
        for r in conn.execute(
            "SELECT sender, record_type, count(*), sum(delivered_at IS NULL) FROM inbox "
            "GROUP BY 1, 2"
        )
    ]


def backlog_by_peer(conn: sqlite3.Connection) -> dict[str, PeerBacklog]:
    out: dict[str, PeerBacklog] = {}
    for peer, count, oldest in conn.execute(
        "SELECT receiver, count(*), min(created_at) FROM outbox WHERE state = 'pending' "
        "GROUP BY receiver"
    ):
        out[peer] = PeerBacklog(int(count), 0, oldest)
    for peer, count in conn.execute(
        "SELECT receiver, count(*) FROM outbox WHERE state = 'dead_lettered' GROUP BY receiver"
    ):
        before = out.get(peer, PeerBacklog(0, 0, None))
        out[peer] = PeerBacklog(before.pending, int(count), before.oldest_pending)
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


class SqliteConsoleReads:
    """:class:`~gateway.store.reads.ConsoleReads` over a node's SQLite file."""

    def __init__(self, path: Path, at_rest: AtRest, bureau: str) -> None:
        self._pool = ReadPool(path)
        self._at_rest = at_rest
        self._bureau = bureau

    def close(self) -> None:
        self._pool.close()

    async def list_transfers(self, f: TransferFilter) -> TransferPage:
        decode_cursor(f.cursor)  # a bad cursor is the caller's ValueError, not a read error
        return await self._pool.run(lambda conn: list_transfers(conn, f))

    async def outbound_counts(self) -> list[OutboundCount]:
        return await self._pool.run(outbound_counts)

    async def inbound_counts(self) -> list[InboundCount]:
        return await self._pool.run(inbound_counts)

    async def backlog_by_peer(self) -> dict[str, PeerBacklog]:
        return await self._pool.run(backlog_by_peer)

    async def throughput(self, now: dt.datetime, hours: int = 24) -> list[tuple[str, int, int]]:
        return await self._pool.run(lambda conn: throughput(conn, now, hours))

    async def dead_letters(self, limit: int = 500) -> list[TransferRow]:
        return await self._pool.run(lambda conn: dead_letters(conn, limit))

    async def log_after(self, after_seq: int = 0, limit: int = 200) -> list[LogRow]:
        return await self._pool.run(lambda conn: log_after(conn, after_seq, limit))

    async def log_latest(self, limit: int = 50) -> list[LogRow]:
        return await self._pool.run(lambda conn: log_latest(conn, limit))

    async def message_timeline(self, message_id: str) -> list[LogRow]:
        return await self._pool.run(lambda conn: message_timeline(conn, message_id))

    async def stored_message(self, direction: str, message_id: str) -> StoredMessage | None:
        stored = await self._pool.run(
            lambda conn: stored_message(conn, direction, message_id, self._bureau)
        )
        if stored is None:
            return None
        envelope = (
            self._at_rest.open_outbound(message_id, stored.envelope)
            if direction == "outbound"
            else self._at_rest.open_inbound(stored.peer, message_id, stored.envelope)
        )
        return dataclasses.replace(stored, envelope=envelope)


_OPERATOR_SCHEMA = """
CREATE TABLE IF NOT EXISTS console_operators (
    username      TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS console_sessions (
    token_sha256 BLOB PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES console_operators (username) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   REAL NOT NULL,
    expires_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_user ON console_sessions (username);
"""


class SqliteOperatorRecords:
    """:class:`~gateway.store.reads.OperatorRecords` in a node's SQLite file."""

    def __init__(self, path: Path, *, console_indexes: bool = False) -> None:
        self.path = path
        self._console_indexes = console_indexes  # only on a node's own, complete database
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def open(self) -> None:
        """Create the tables if needed (and the console's read indexes, if asked)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(_OPERATOR_SCHEMA)
            if self._console_indexes:
                conn.executescript(CONSOLE_INDEXES)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open operator accounts in {self.path}: {exc}") from exc
        self._conn = conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _execute_all(self, statements: list[tuple[str, tuple[Any, ...]]]) -> list[list[Any]]:
        if self._conn is None:
            self.open()
        assert self._conn is not None
        with self._lock:
            try:
                return [self._conn.execute(sql, p).fetchall() for sql, p in statements]
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"operator accounts: {exc}") from exc

    async def _run(self, *statements: tuple[str, tuple[Any, ...]]) -> list[list[Any]]:
        return await asyncio.to_thread(self._execute_all, list(statements))

    async def add_operator(self, row: OperatorRow) -> bool:
        sql = "INSERT OR IGNORE INTO console_operators VALUES (?,?,?,?,?)"
        params = (row.username, row.role, row.password_hash, row.created_at, row.updated_at)
        (_, changes) = await self._run((sql, params), ("SELECT changes()", ()))
        return bool(changes[0][0])

    async def get_operator(self, username: str) -> OperatorRow | None:
        (rows,) = await self._run(
            (f"SELECT {_OPERATOR} FROM console_operators WHERE username = ?", (username,))  # noqa: S608
        )
        return OperatorRow(*rows[0]) if rows else None

    async def list_operators(self) -> list[OperatorRow]:
        (rows,) = await self._run(
            (f"SELECT {_OPERATOR} FROM console_operators ORDER BY username", ())  # noqa: S608
        )
        return [OperatorRow(*r) for r in rows]

    async def update_operator(
        self,
        username: str,
        *,
        at: float,
        role: str | None = None,
        password_hash: str | None = None,
        end_sessions: bool = False,
    ) -> bool:
        if await self.get_operator(username) is None:
            return False
        statements: list[tuple[str, tuple[Any, ...]]] = []
        if role is not None:
            statements.append(
                (
                    "UPDATE console_operators SET role = ?, updated_at = ? WHERE username = ?",
                    (role, at, username),
                )
            )
        if password_hash is not None:
            statements.append(
                (
                    "UPDATE console_operators SET password_hash = ?, updated_at = ? "
                    "WHERE username = ?",
                    (password_hash, at, username),
                )
            )
        if end_sessions:
            statements.append(("DELETE FROM console_sessions WHERE username = ?", (username,)))
        await self._run(*statements)
        return True

    async def remove_operator(self, username: str) -> bool:
        if await self.get_operator(username) is None:
            return False
        await self._run(
            ("DELETE FROM console_sessions WHERE username = ?", (username,)),
            ("DELETE FROM console_operators WHERE username = ?", (username,)),
        )
        return True

    async def create_session(self, row: SessionRow, *, expire_before: float) -> None:
        await self._run(
            ("DELETE FROM console_sessions WHERE expires_at < ?", (expire_before,)),
            (
                "INSERT INTO console_sessions VALUES (?,?,?,?,?)",
                (row.token_sha256, row.username, row.csrf_token, row.created_at, row.expires_at),
            ),
        )

    async def get_session(self, token_sha256: bytes) -> tuple[SessionRow, OperatorRow] | None:
        (rows,) = await self._run(
            (
                "SELECT s.token_sha256, s.username, s.csrf_token, s.created_at, s.expires_at, "
                "o.role, o.password_hash, o.created_at, o.updated_at "
                "FROM console_sessions AS s JOIN console_operators AS o USING (username) "
                "WHERE s.token_sha256 = ?",
                (token_sha256,),
            )
        )
        if not rows:
            return None
        r = rows[0]
        return SessionRow(bytes(r[0]), r[1], r[2], r[3], r[4]), OperatorRow(r[1], *r[5:])

    async def end_session(self, token_sha256: bytes) -> None:
        await self._run(("DELETE FROM console_sessions WHERE token_sha256 = ?", (token_sha256,)))


_OPERATOR = "username, role, password_hash, created_at, updated_at"
