"""Statements both engines run as they are, written once with ``?`` placeholders.

:func:`numbered` turns them into PostgreSQL's ``$1, $2, …``. What each engine has
of its own (SQLite's index hints, PostgreSQL's claims and leases) stays in the
engine. The console's read models are here too, with the pure parts that turn
their rows into pages: the keyset page over outbox ∪ inbox and the hourly
throughput buckets.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.clock import iso_utc
from gateway.store.reads import (
    MAX_PAGE,
    InboundCount,
    OperatorRow,
    OutboundCount,
    PeerBacklog,
    SessionRow,
    TransferFilter,
    TransferPage,
    decode_cursor,
    encode_cursor,
)
from gateway.store.rows import Row, to_iso, transfer_row

__all__ = [
    "BACKLOG_DEAD",
    "BACKLOG_PENDING",
    "DEAD_LETTERS",
    "ENVELOPE_INBOUND",
    "ENVELOPE_OUTBOUND",
    "INBOUND_COUNTS",
    "INBOUND_SELECT",
    "LOG_AFTER",
    "LOG_AT",
    "LOG_LAST",
    "LOG_LATEST",
    "OPERATOR_ADD",
    "OPERATOR_COLUMNS",
    "OPERATOR_GET",
    "OPERATOR_LIST",
    "OPERATOR_REMOVE",
    "OUTBOUND_COUNTS",
    "OUTBOUND_SELECT",
    "SESSIONS_END_FOR",
    "SESSIONS_EXPIRE",
    "SESSION_ADD",
    "SESSION_END",
    "SESSION_JOIN",
    "STORED_INBOUND",
    "STORED_OUTBOUND",
    "THROUGHPUT",
    "TIMELINE",
    "Dialect",
    "TransferQuery",
    "_common",
    "backlog",
    "inbound_counts",
    "inbound_query",
    "numbered",
    "operator_row",
    "operator_update",
    "outbound_counts",
    "outbound_query",
    "page",
    "session_row",
    "throughput_buckets",
    "throughput_rows",
    "transfer_queries",
]


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1 … $n`` (no statement here quotes a ``?``)."""
    parts = sql.split("?")
    out = [parts[0]]
    for n, part in enumerate(parts[1:], start=1):
        out.append(f"${n}{part}")
    return "".join(out)


# ---------------------------------------------------------------------------- transfers


@dataclass(frozen=True, slots=True)
class Dialect:
    """How an engine spells a transfers query."""

    placeholder: Callable[[int], str]  # the n-th parameter (from 1)
    time: Callable[[str], Any]  # an ISO text bound against a time column
    # SQLite only: the unary ``+`` that keeps its planner off an unselective equality index.
    hints: bool


@dataclass
class TransferQuery:
    dialect: Dialect
    limit: int
    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        """``clause`` with one ``?`` per parameter, spelled in the dialect."""
        parts = clause.split("?")
        text = parts[0]
        for value, part in zip(params, parts[1:], strict=True):
            self.params.append(value)
            text += self.dialect.placeholder(len(self.params)) + part
        self.where.append(text)

    def sql(self, select: str) -> str:
        self.params.append(self.limit)
        limit = self.dialect.placeholder(len(self.params))
        return select.format(where=" AND ".join(self.where) or "TRUE", limit=limit)


# States that hold few rows: a filter on one of them is selective, so its index wins. Every
# other filter is unselective (four record types, a handful of peers, almost every row
# delivered), and the best plan walks the time index newest first and filters as it goes;
# SQLite's unary ``+`` keeps it from choosing an equality index and sorting the whole match.
_RARE_STATES = frozenset({"pending", "rejected", "dead_lettered"})

OUTBOUND_SELECT = (
    "SELECT 'outbound', message_id, receiver, record_type, record_key, state, created_at, "
    "attempts, last_error FROM outbox WHERE {where} "
    "ORDER BY created_at DESC, message_id DESC LIMIT {limit}"
)
INBOUND_SELECT = (
    "SELECT 'inbound', message_id, sender, record_type, record_key, "
    "CASE WHEN delivered_at IS NULL THEN 'received' ELSE 'delivered' END, received_at, 0, '' "
    "FROM inbox WHERE {where} ORDER BY received_at DESC, message_id DESC LIMIT {limit}"
)


def _common(
    q: TransferQuery, f: TransferFilter, column: str, after: tuple[str, str] | None
) -> None:
    time = q.dialect.time
    if f.since:
        q.add(f"{column} >= ?", time(f.since))
    if f.until:
        q.add(f"{column} < ?", time(f.until))
    if after is not None:
        q.add(f"({column}, message_id) < (?, ?)", time(after[0]), after[1])


def _match(q: TransferQuery, f: TransferFilter, peer_column: str, hint: str) -> None:
    if f.q:
        q.add("(message_id = ? OR record_key = ?)", f.q, f.q)
    for column, value in ((peer_column, f.peer), ("record_type", f.record_type)):
        if value:
            q.add(f"{hint}{column} = ?", value)


def outbound_query(
    f: TransferFilter, after: tuple[str, str] | None, limit: int, dialect: Dialect
) -> TransferQuery | None:
    if f.direction not in ("", "outbound") or f.status == "received":
        return None
    q = TransferQuery(dialect, limit)
    hint = "+" if dialect.hints and not (f.status in _RARE_STATES or f.q) else ""
    _match(q, f, "receiver", hint)
    if f.status:
        q.add(f"{hint}state = ?", f.status)
    _common(q, f, "created_at", after)
    return q


def inbound_query(
    f: TransferFilter, after: tuple[str, str] | None, limit: int, dialect: Dialect
) -> TransferQuery | None:
    if f.direction not in ("", "inbound") or f.status not in ("", "received", "delivered"):
        return None
    q = TransferQuery(dialect, limit)
    hint = "+" if dialect.hints else ""
    _match(q, f, "sender", hint)
    if f.status == "received":
        # Few rows wait for the local system: the inbox_undelivered index finds them.
        q.add("delivered_at IS NULL")
    elif f.status == "delivered":
        q.add(f"{hint}delivered_at IS NOT NULL")
    _common(q, f, "received_at", after)
    return q


def transfer_queries(
    f: TransferFilter, dialect: Dialect
) -> tuple[int, list[tuple[str, list[Any]]]]:
    """The page size and the (sql, params) to run for ``f``; ``ValueError`` for a cursor
    this API did not hand out."""
    limit = max(1, min(MAX_PAGE, f.limit))
    after = decode_cursor(f.cursor)
    out = []
    for select, query in (
        (OUTBOUND_SELECT, outbound_query(f, after, limit + 1, dialect)),
        (INBOUND_SELECT, inbound_query(f, after, limit + 1, dialect)),
    ):
        if isinstance(query, TransferQuery):
            out.append((query.sql(select), query.params))
    return limit, out


def page(rows: Iterable[Row], limit: int) -> TransferPage:
    """Merge the two sides (each sorted and cut already, so the merge is the true page)."""
    merged = sorted((transfer_row(r) for r in rows), key=lambda r: (r.at, r.message_id))
    merged.reverse()
    head = merged[:limit]
    more = len(merged) > limit
    cursor = encode_cursor(head[-1].at, head[-1].message_id) if more and head else ""
    return TransferPage(head, cursor)


# ---------------------------------------------------------------------------- overview

OUTBOUND_COUNTS = (
    "SELECT state, receiver, record_type, count(*) FROM outbox GROUP BY state, receiver, "
    "record_type"
)
INBOUND_COUNTS = (
    "SELECT sender, record_type, count(*), "
    "sum(CASE WHEN delivered_at IS NULL THEN 1 ELSE 0 END) FROM inbox GROUP BY sender, record_type"
)
BACKLOG_PENDING = (
    "SELECT receiver, count(*), min(created_at) FROM outbox WHERE state = 'pending' "
    "GROUP BY receiver"
)
BACKLOG_DEAD = (
    "SELECT receiver, count(*), NULL FROM outbox WHERE state = 'dead_lettered' GROUP BY receiver"
)
DEAD_LETTERS = (
    "SELECT 'outbound', message_id, receiver, record_type, record_key, state, created_at, "
    "attempts, last_error FROM outbox WHERE state = 'dead_lettered' "
    "ORDER BY created_at DESC LIMIT ?"
)
STORED_OUTBOUND = (
    "SELECT 'outbound', o.message_id, o.receiver, o.record_type, o.record_key, o.state, "
    "o.created_at, o.attempts, o.last_error, o.envelope, r.receipt FROM outbox AS o "
    "LEFT JOIN receipts AS r ON r.issuer = o.receiver AND r.message_id = o.message_id "
    "WHERE o.message_id = ?"
)
# The receipt of an inbound message is the one this node (the first parameter) issued.
STORED_INBOUND = (
    "SELECT 'inbound', i.message_id, i.sender, i.record_type, i.record_key, "
    "CASE WHEN i.delivered_at IS NULL THEN 'received' ELSE 'delivered' END, i.received_at, 0, "
    "'', i.envelope, r.receipt FROM inbox AS i LEFT JOIN receipts AS r "
    "ON r.issuer = ? AND r.message_id = i.message_id WHERE i.message_id = ? "
    "ORDER BY i.seq LIMIT 1"
)


def outbound_counts(rows: Iterable[Row]) -> list[OutboundCount]:
    return [OutboundCount(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]


def inbound_counts(rows: Iterable[Row]) -> list[InboundCount]:
    return [InboundCount(str(r[0]), str(r[1]), int(r[2]), int(r[3] or 0)) for r in rows]


def backlog(pending: Iterable[Row], dead: Iterable[Row]) -> dict[str, PeerBacklog]:
    out: dict[str, PeerBacklog] = {}
    for peer, count, oldest in pending:
        out[peer] = PeerBacklog(int(count), 0, None if oldest is None else to_iso(oldest))
    for peer, count, _ in dead:
        known = out.get(peer, PeerBacklog(0, 0, None))
        out[peer] = PeerBacklog(known.pending, int(count), known.oldest_pending)
    return out


def throughput_buckets(now: dt.datetime, hours: int) -> tuple[str, dict[str, list[int]]]:
    """The ISO start of the window and one empty (sent, received) bucket per hour."""
    start = (now - dt.timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    buckets = {
        (start + dt.timedelta(hours=i)).isoformat(timespec="hours")[:13]: [0, 0]
        for i in range(hours)
    }
    return iso_utc(start), buckets


# Log entries from a seq on, counted per hour; the engine finds that seq by bisection on
# seq (the log is appended in time order), which spares an index on ``at`` that the writer
# would pay for on every entry.
THROUGHPUT = (
    "SELECT substr(at, 1, 13), kind, count(*) FROM transfer_log "
    "WHERE seq >= ? AND kind IN ('sent', 'received') GROUP BY substr(at, 1, 13), kind"
)
LOG_AT = "SELECT at FROM transfer_log WHERE seq = ?"
LOG_LAST = "SELECT max(seq) FROM transfer_log"


def throughput_rows(
    buckets: dict[str, list[int]], rows: Iterable[Row]
) -> list[tuple[str, int, int]]:
    for hour, kind, count in rows:
        bucket = buckets.get(hour)
        if bucket is not None:
            bucket[0 if kind == "sent" else 1] += int(count)
    return [(hour + ":00", sent, received) for hour, (sent, received) in buckets.items()]


# ---------------------------------------------------------------------------- the log

_CONSOLE_LOG = "seq, at, kind, direction, peer, message_id, record_type, detail"
LOG_AFTER = f"SELECT {_CONSOLE_LOG} FROM transfer_log WHERE seq > ? ORDER BY seq LIMIT ?"
LOG_LATEST = f"SELECT {_CONSOLE_LOG} FROM transfer_log ORDER BY seq DESC LIMIT ?"
TIMELINE = f"SELECT {_CONSOLE_LOG} FROM transfer_log WHERE message_id = ? ORDER BY seq"

# ---------------------------------------------------------------------------- offline

ENVELOPE_OUTBOUND = (
    "SELECT o.envelope, r.receipt, o.receiver FROM outbox AS o LEFT JOIN receipts AS r "
    "ON r.message_id = o.message_id AND r.direction = 'received' WHERE o.message_id = ?"
)
ENVELOPE_INBOUND = (
    "SELECT i.envelope, r.receipt, i.sender FROM inbox AS i LEFT JOIN receipts AS r "
    "ON r.message_id = i.message_id AND r.direction = 'issued' WHERE i.message_id = ? "
    "ORDER BY i.seq LIMIT 1"
)

# ---------------------------------------------------------------------------- operators

OPERATOR_COLUMNS = "username, role, password_hash, created_at, updated_at"
SESSION_JOIN = (
    "SELECT s.token_sha256, s.username, s.csrf_token, s.created_at, s.expires_at, "
    "o.username, o.role, o.password_hash, o.created_at, o.updated_at "
    "FROM console_sessions AS s JOIN console_operators AS o ON o.username = s.username "
    "WHERE s.token_sha256 = ?"
)
OPERATOR_ADD = (
    "INSERT INTO console_operators (username, role, password_hash, created_at, updated_at) "
    "VALUES (?,?,?,?,?) ON CONFLICT (username) DO NOTHING"
)
OPERATOR_GET = f"SELECT {OPERATOR_COLUMNS} FROM console_operators WHERE username = ?"
OPERATOR_LIST = f"SELECT {OPERATOR_COLUMNS} FROM console_operators ORDER BY username"
OPERATOR_REMOVE = "DELETE FROM console_operators WHERE username = ?"
SESSIONS_END_FOR = "DELETE FROM console_sessions WHERE username = ?"
SESSION_ADD = (
    "INSERT INTO console_sessions (token_sha256, username, csrf_token, created_at, expires_at) "
    "VALUES (?,?,?,?,?)"
)
SESSIONS_EXPIRE = "DELETE FROM console_sessions WHERE expires_at < ?"
SESSION_END = "DELETE FROM console_sessions WHERE token_sha256 = ?"


def operator_update(
    role: str | None, password_hash: str | None, at: float, username: str
) -> tuple[str, list[Any]]:
    """The UPDATE for the given columns (``updated_at`` always moves)."""
    sets: list[str] = []
    params: list[Any] = []
    if role is not None:
        sets.append("role = ?")
        params.append(role)
    if password_hash is not None:
        sets.append("password_hash = ?")
        params.append(password_hash)
    sets.append("updated_at = ?")
    params += [at, username]
    return f"UPDATE console_operators SET {', '.join(sets)} WHERE username = ?", params


def operator_row(r: Row) -> OperatorRow:
    return OperatorRow(str(r[0]), str(r[1]), str(r[2]), float(r[3]), float(r[4]))


def session_row(r: Row) -> tuple[SessionRow, OperatorRow]:
    session = SessionRow(bytes(r[0]), str(r[1]), str(r[2]), float(r[3]), float(r[4]))
    return session, operator_row(r[5:])
