"""PostgreSQL engine (asyncpg): one schema per node, shared by any number of replicas.

The semantics are the SQLite engine's, method by method; what differs is that
several processes may write the same schema at once.

* **One chain, many writers.** Every write runs in a batch: a writer task takes
  all calls waiting in its queue, runs each in its own savepoint of one
  transaction, and commits once (group commit, as in the SQLite engine). The
  batch starts by locking the one row of ``log_head`` (``SELECT … FOR UPDATE``),
  so batches of all replicas are serialised: each reads the head, chains its
  entries with :mod:`gateway.translog` (the same canonical bytes as SQLite, so
  ``verify_chain`` holds for both engines), inserts them and moves the head in
  the transaction that holds the rows they describe. Taking the lock first, before
  any row is touched, keeps writers from deadlocking on each other.
* **Claims.** ``due_outbound`` hands rows to one replica at a time: it locks the
  due rows with ``FOR UPDATE SKIP LOCKED`` and stamps them with a lease
  (``claimed_by``, ``claimed_until``, on the database clock). Another replica skips
  a row while its lease runs; a replica that crashed releases its rows when the
  lease expires. Delivering, failing, dead-lettering or re-driving a row ends its
  claim. A replica is handed its own claimed rows again, as SQLite would.

Driver and socket errors never leave this module: they become
:class:`~gateway.errors.StoreUnavailable` (``raise … from exc``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import asyncpg
import asyncpg.exceptions
import asyncpg.pool

from gateway.checkpoint import PeriodAccount
from gateway.errors import StoreUnavailable
from gateway.store.at_rest import AtRest
from gateway.store.base import (
    InboundAcceptance,
    InboundRow,
    OutboundRow,
    OutboundState,
    StoredPayload,
)
from gateway.translog import (
    GENESIS_HASH,
    Direction,
    EventKind,
    LogEntry,
    LogEvent,
    canonical_detail,
    canonical_entry_bytes,
    entry_hash,
)
from gateway.vault import Vault

__all__ = ["PostgresStore", "default_schema", "iter_log_postgres", "valid_schema_name"]

T = TypeVar("T")
if TYPE_CHECKING:  # the driver's classes are generic in its stubs only
    _Conn: TypeAlias = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
    Job: TypeAlias = Callable[[_Conn, "_Chain"], Awaitable[Any]]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_BATCH_LIMIT = 512
_LOG_CHUNK = 5000

# Driver, socket and timeout failures: the database is unreachable or refused to commit.
_DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
)

# Text columns that order or page results compare bytewise ("C"), as SQLite does.
_DDL = f"""
CREATE TABLE IF NOT EXISTS outbox (
    ord             BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    message_id      TEXT COLLATE "C" PRIMARY KEY,
    receiver        TEXT NOT NULL,
    record_type     TEXT NOT NULL,
    record_key      TEXT NOT NULL,
    correlation_id  TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    envelope        BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    delivered_at    TIMESTAMPTZ,
    purged_at       TIMESTAMPTZ,
    -- The receiver's clock, from its signed receipt: both sides count periods by it.
    receipt_received_at TIMESTAMPTZ,
    -- The replica that holds the row for delivery, and until when (database clock).
    claimed_by      TEXT,
    claimed_until   TIMESTAMPTZ,
    -- Where the dead-letter age counts from: creation, or the last re-drive.
    age_from        TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (receiver, state, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_key ON outbox (record_type, record_key);
CREATE INDEX IF NOT EXISTS outbox_correlation ON outbox (correlation_id, state, ord);
CREATE INDEX IF NOT EXISTS outbox_receipt_time ON outbox (receiver, receipt_received_at);

CREATE TABLE IF NOT EXISTS inbox (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sender         TEXT COLLATE "C" NOT NULL,
    message_id     TEXT COLLATE "C" NOT NULL,
    record_type    TEXT NOT NULL,
    record_key     TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    envelope       BYTEA NOT NULL,
    header_sha256  BYTEA NOT NULL,
    payload_sha256 BYTEA NOT NULL,
    received_at    TIMESTAMPTZ NOT NULL,
    delivered_at   TIMESTAMPTZ,
    purged_at      TIMESTAMPTZ,
    UNIQUE (sender, message_id)
);
CREATE INDEX IF NOT EXISTS inbox_undelivered ON inbox (delivered_at, seq);
CREATE INDEX IF NOT EXISTS inbox_key ON inbox (record_type, record_key);
CREATE INDEX IF NOT EXISTS inbox_message ON inbox (message_id);
CREATE INDEX IF NOT EXISTS inbox_received ON inbox (sender, received_at);

CREATE TABLE IF NOT EXISTS receipts (
    issuer      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    direction   TEXT NOT NULL,  -- 'issued' by this node, or 'received' from a peer
    receipt     BYTEA NOT NULL,
    stored_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (issuer, message_id)
);

CREATE TABLE IF NOT EXISTS transfer_log (
    seq         BIGINT PRIMARY KEY,
    at          TEXT NOT NULL,  -- the exact ISO text that was hashed
    kind        TEXT NOT NULL,
    direction   TEXT NOT NULL,
    peer        TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    record_type TEXT NOT NULL,
    detail      TEXT NOT NULL,
    prev_hash   BYTEA NOT NULL,
    hash        BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS transfer_log_message ON transfer_log (message_id);

-- The chain head: one row, locked by every writing transaction of every replica.
CREATE TABLE IF NOT EXISTS log_head (
    id   SMALLINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash BYTEA NOT NULL
);
INSERT INTO log_head VALUES (1, 0, '\\x{GENESIS_HASH.hex()}') ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS node_identity (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_OUTBOX_FIELDS = (
    "message_id",
    "receiver",
    "record_type",
    "record_key",
    "correlation_id",
    "idempotency_key",
    "envelope",
    "created_at",
    "state",
    "attempts",
    "next_attempt_at",
    "last_error",
)
_OUTBOX_COLUMNS = ", ".join(_OUTBOX_FIELDS)
_O_COLUMNS = ", ".join(f"o.{name}" for name in _OUTBOX_FIELDS)
_INBOX_COLUMNS = (
    "seq, sender, message_id, record_type, record_key, correlation_id, envelope, header_sha256, "
    "payload_sha256, received_at, delivered_at"
)

_PENDING = OutboundState.PENDING.value

# Feedback never overtakes earlier feedback on the same record: a message waits while an
# older one with the same correlation id is still pending (whoever holds its claim).
_CLAIM = f"""
WITH due AS (
    SELECT o.message_id FROM outbox AS o
    WHERE o.receiver = $1 AND o.state = $2 AND o.next_attempt_at <= $3
      AND (o.claimed_until IS NULL OR o.claimed_until <= clock_timestamp() OR o.claimed_by = $5)
      AND NOT EXISTS (
          SELECT 1 FROM outbox AS earlier
          WHERE earlier.correlation_id = o.correlation_id AND o.correlation_id <> ''
            AND earlier.state = o.state AND earlier.ord < o.ord)
    ORDER BY o.next_attempt_at, o.ord
    LIMIT $4
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox AS o
SET claimed_by = $5, claimed_until = clock_timestamp() + make_interval(secs => $6)
FROM due WHERE o.message_id = due.message_id
RETURNING {_O_COLUMNS}, o.ord
"""


def default_schema(bureau: str) -> str:
    """The schema a node uses when the configuration names none."""
    return f"chuanyu_{bureau}".lower()


def valid_schema_name(name: str) -> bool:
    """Lower-case letters, digits and underscores, not starting with a digit, ≤ 63 bytes."""
    return _SCHEMA_NAME.fullmatch(name) is not None


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _migrate(conn: _Conn) -> None:
    """Bring a schema made by an earlier version up to the current one."""
    found = await conn.fetchval(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'outbox' AND column_name = 'age_from'"
    )
    if found is None:
        await conn.execute("ALTER TABLE outbox ADD COLUMN age_from TIMESTAMPTZ")
        await conn.execute("UPDATE outbox SET age_from = created_at")


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL; an error message from a peer might.
    return value.replace("\x00", "\ufffd")


def _unavailable(exc: BaseException, what: str) -> StoreUnavailable:
    error = StoreUnavailable(f"{what}: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, _DRIVER_ERRORS):
        return _unavailable(exc, "node database cannot commit")
    return exc


class _Chain:
    """The chain head inside one write batch, and the entries the batch will insert.

    Only the writer task touches it, between locking ``log_head`` and committing.
    """

    def __init__(self, seq: int, head: bytes) -> None:
        self.seq = seq
        self.head = head
        self.rows: list[tuple[Any, ...]] = []

    def mark(self) -> tuple[int, bytes, int]:
        return self.seq, self.head, len(self.rows)

    def reset(self, mark: tuple[int, bytes, int]) -> None:
        self.seq, self.head = mark[0], mark[1]
        del self.rows[mark[2] :]

    def append(self, events: Sequence[LogEvent]) -> None:
        for event in events:
            seq = self.seq + 1
            at = _iso(_now())
            detail = canonical_detail(event.detail)
            canonical = canonical_entry_bytes(
                seq=seq,
                at=at,
                kind=event.kind.value,
                direction=event.direction.value,
                peer=event.peer,
                message_id=event.message_id,
                record_type=event.record_type,
                detail=detail,
            )
            digest = entry_hash(self.head, canonical)
            self.rows.append(
                (
                    seq,
                    at,
                    event.kind.value,
                    event.direction.value,
                    event.peer,
                    event.message_id,
                    event.record_type,
                    detail,
                    self.head,
                    digest,
                )
            )
            self.seq, self.head = seq, digest

    async def flush(self, conn: _Conn) -> None:
        if not self.rows:
            return
        await conn.executemany(
            "INSERT INTO transfer_log VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)", self.rows
        )
        await conn.execute(
            "UPDATE log_head SET seq = $1, hash = $2 WHERE id = 1", self.seq, self.head
        )


class _CallFailed(Exception):
    """A call in an optimistic batch failed: the batch runs again, a savepoint per call."""


@dataclass(slots=True)
class _Work:
    fn: Job
    future: asyncio.Future[Any]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _outbound(row: asyncpg.Record, at_rest: AtRest, receipt: bytes = b"") -> OutboundRow:
    return OutboundRow(
        message_id=row["message_id"],
        receiver=row["receiver"],
        record_type=row["record_type"],
        record_key=row["record_key"],
        correlation_id=row["correlation_id"],
        idempotency_key=row["idempotency_key"] or "",
        envelope=at_rest.open_outbound(row["message_id"], bytes(row["envelope"])),
        created_at=row["created_at"],
        state=OutboundState(row["state"]),
        attempts=int(row["attempts"]),
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        receipt=receipt,
    )


def _inbound(row: asyncpg.Record, at_rest: AtRest, receipt: bytes = b"") -> InboundRow:
    return InboundRow(
        seq=int(row["seq"]),
        sender=row["sender"],
        message_id=row["message_id"],
        record_type=row["record_type"],
        record_key=row["record_key"],
        correlation_id=row["correlation_id"],
        envelope=at_rest.open_inbound(row["sender"], row["message_id"], bytes(row["envelope"])),
        header_sha256=bytes(row["header_sha256"]),
        payload_sha256=bytes(row["payload_sha256"]),
        received_at=row["received_at"],
        delivered_at=row["delivered_at"],
        receipt=receipt,
    )


def _log_entry(row: asyncpg.Record) -> LogEntry:
    return LogEntry(
        seq=int(row["seq"]),
        at=row["at"],
        kind=row["kind"],
        direction=row["direction"],
        peer=row["peer"],
        message_id=row["message_id"],
        record_type=row["record_type"],
        detail=row["detail"],
        prev_hash=bytes(row["prev_hash"]),
        hash=bytes(row["hash"]),
    )


async def _receipt(conn: _Conn, issuer: str, message_id: str) -> bytes:
    value = await conn.fetchval(
        "SELECT receipt FROM receipts WHERE issuer = $1 AND message_id = $2", issuer, message_id
    )
    return b"" if value is None else bytes(value)


def _updated(status: str) -> int:
    """Rows touched, from a command tag such as ``UPDATE 3`` or ``INSERT 0 1``."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresStore:
    """The :class:`~gateway.store.Store` on one PostgreSQL schema, safe for several replicas."""

    def __init__(
        self,
        dsn: str,
        *,
        bureau: str,
        schema: str | None = None,
        vault: Vault | None = None,
        lock_timeout_ms: int = 5000,
        lease_seconds: float = 120.0,
        pool_size: int = 8,
        replica_id: str | None = None,
    ) -> None:
        self.dsn = dsn
        self.bureau = bureau
        self.schema = schema or default_schema(bureau)
        if not valid_schema_name(self.schema):
            raise StoreUnavailable(
                f"schema name {self.schema!r}: use lower-case letters, digits and underscores",
                reason="CONFIG_INVALID",
            )
        self.at_rest = AtRest(vault)
        self.lock_timeout_ms = lock_timeout_ms
        self.lease_seconds = lease_seconds
        self.replica_id = (
            replica_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        )
        self._pool_size = pool_size
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._queue: asyncio.Queue[_Work | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._failing = False
        self._last_error = ""

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self._pool_size,
                command_timeout=60,
                server_settings={
                    "search_path": self.schema,
                    "lock_timeout": str(self.lock_timeout_ms),
                    "application_name": f"chuanyu-gateway {self.bureau}",
                },
            )
            async with self._pool.acquire() as conn, conn.transaction():
                # Replicas starting together must not race on CREATE … IF NOT EXISTS.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1))", f"chuanyu-schema:{self.schema}"
                )
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                await conn.execute(_DDL)
                await _migrate(conn)
                await self._claim_identity(conn)
        except _DRIVER_ERRORS as exc:
            await self._close_pool()
            raise _unavailable(exc, f"cannot open PostgreSQL schema {self.schema}") from exc
        except BaseException:
            await self._close_pool()
            raise
        self._queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop(), name=f"store-writer-{self.schema}")

    async def close(self) -> None:
        if self._writer is not None:
            self._queue.put_nowait(None)
            await self._writer
            self._writer = None
        await self._close_pool()

    async def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10)
            except _DRIVER_ERRORS:
                pool.terminate()

    async def __aenter__(self) -> PostgresStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def available(self) -> bool:
        """False since the last commit failed, until one succeeds again."""
        return not self._failing

    @property
    def last_error(self) -> str:
        return self._last_error

    async def probe(self) -> None:
        """Commit a heartbeat: raises ``StoreUnavailable`` while the store cannot write."""

        async def job(conn: _Conn, _: _Chain) -> None:
            await conn.execute(
                "INSERT INTO node_identity VALUES ('heartbeat', $1) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                _iso(_now()),
            )

        await self._submit(job)

    async def _claim_identity(self, conn: _Conn) -> None:
        # One schema belongs to one bureau: refuse to open another node's data.
        await conn.execute(
            "INSERT INTO node_identity VALUES ('bureau', $1) ON CONFLICT DO NOTHING", self.bureau
        )
        owner = await conn.fetchval("SELECT value FROM node_identity WHERE key = 'bureau'")
        if owner != self.bureau:
            raise StoreUnavailable(
                f"schema {self.schema} belongs to bureau {owner}, not {self.bureau}",
                reason="STORE_WRONG_NODE",
            )

    # -- the writer --------------------------------------------------------------

    def _note(self, error: BaseException | None) -> None:
        if error is None:
            self._failing, self._last_error = False, ""
        else:
            self._failing, self._last_error = True, f"{type(error).__name__}: {error}"

    async def _submit(self, fn: Job) -> Any:
        if self._writer is None or self._writer.done():
            raise StoreUnavailable(f"the node store (schema {self.schema}) is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Work(fn, future))
        # Shield: a cancelled caller must not hide whether its commit happened.
        return await asyncio.shield(future)

    async def _write_loop(self) -> None:
        while True:
            work = await self._queue.get()
            if work is None:
                return
            batch = [work]
            while len(batch) < _BATCH_LIMIT:
                try:
                    more = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if more is None:
                    self._queue.put_nowait(None)
                    break
                batch.append(more)
            await self._commit_batch(batch)

    async def _commit_batch(self, batch: list[_Work]) -> None:
        outcomes: list[tuple[_Work, Any, BaseException | None]] = []
        try:
            try:
                # Optimistic: no savepoints, so a call costs one round trip, not three.
                outcomes = await self._run_batch(batch, isolate=False)
            except _CallFailed:
                # Some call failed: run the batch again with a savepoint per call, so the
                # failure rolls back alone (calls only touch the database and the chain).
                outcomes = await self._run_batch(batch, isolate=True)
            self._note(None)
        except _DRIVER_ERRORS as exc:
            self._note(exc)
            failure = _translate(exc)
            outcomes = [(work, None, failure) for work in batch]
        except Exception as exc:
            outcomes = [(work, None, exc) for work in batch]
        for work, result, error in outcomes:
            _settle(work.future, result, error)

    async def _run_batch(
        self, batch: list[_Work], *, isolate: bool
    ) -> list[tuple[_Work, Any, BaseException | None]]:
        """One transaction for the whole batch; raises ``_CallFailed`` unless ``isolate``."""
        if self._pool is None:
            raise StoreUnavailable(f"the node store (schema {self.schema}) is closed")
        outcomes: list[tuple[_Work, Any, BaseException | None]] = []
        async with self._pool.acquire() as conn, conn.transaction():
            # Every writer of every replica queues here before touching any row.
            head = await conn.fetchrow("SELECT seq, hash FROM log_head WHERE id = 1 FOR UPDATE")
            if head is None:
                raise StoreUnavailable(f"schema {self.schema} has no transfer-log head")
            chain = _Chain(int(head["seq"]), bytes(head["hash"]))
            for work in batch:
                if not isolate:
                    try:
                        outcomes.append((work, await work.fn(conn, chain), None))
                    except Exception as exc:
                        if conn.is_closed():
                            raise
                        raise _CallFailed from exc
                    continue
                mark = chain.mark()
                try:
                    async with conn.transaction():  # a savepoint per call
                        result = await work.fn(conn, chain)
                except Exception as exc:
                    if conn.is_closed():
                        raise
                    chain.reset(mark)
                    outcomes.append((work, None, _translate(exc)))
                else:
                    outcomes.append((work, result, None))
            await chain.flush(conn)
        return outcomes

    async def _read(self, fn: Callable[[_Conn], Awaitable[T]]) -> T:
        if self._pool is None:
            raise StoreUnavailable(f"the node store (schema {self.schema}) is closed")
        try:
            async with self._pool.acquire() as conn:
                return await fn(conn)
        except _DRIVER_ERRORS as exc:
            raise _unavailable(exc, "node database cannot be read") from exc

    # -- outbound ------------------------------------------------------------

    async def _insert_outbound(
        self, conn: _Conn, chain: _Chain, row: OutboundRow, events: Sequence[LogEvent]
    ) -> tuple[OutboundRow, bool]:
        if row.idempotency_key:
            existing = await conn.fetchrow(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE idempotency_key = $1",
                row.idempotency_key,
            )
            if existing is not None:
                return _outbound(existing, self.at_rest), False
        await conn.execute(
            f"INSERT INTO outbox ({_OUTBOX_COLUMNS}, age_from) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$8)",
            row.message_id,
            row.receiver,
            row.record_type,
            row.record_key,
            row.correlation_id,
            row.idempotency_key or None,
            self.at_rest.seal_outbound(row.message_id, row.envelope),
            row.created_at,
            row.state.value,
            row.attempts,
            row.next_attempt_at,
            _text(row.last_error),
        )
        chain.append(events)
        return row, True

    async def enqueue_outbound(
        self, row: OutboundRow, events: Sequence[LogEvent]
    ) -> tuple[OutboundRow, bool]:
        async def job(conn: _Conn, chain: _Chain) -> tuple[OutboundRow, bool]:
            return await self._insert_outbound(conn, chain, row, events)

        result: tuple[OutboundRow, bool] = await self._submit(job)
        return result

    async def enqueue_outbound_batch(
        self, items: Sequence[tuple[OutboundRow, Sequence[LogEvent]]]
    ) -> list[tuple[OutboundRow, bool]]:
        # One job runs in one savepoint: a failing row rolls back the rows before it too.
        async def job(conn: _Conn, chain: _Chain) -> list[tuple[OutboundRow, bool]]:
            return [await self._insert_outbound(conn, chain, row, ev) for row, ev in items]

        result: list[tuple[OutboundRow, bool]] = await self._submit(job)
        return result

    async def due_outbound(self, receiver: str, now: dt.datetime, limit: int) -> list[OutboundRow]:
        """Claim up to ``limit`` due rows for this replica (a lease of ``lease_seconds``)."""
        if self._pool is None:
            raise StoreUnavailable(f"the node store (schema {self.schema}) is closed")
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    _CLAIM, receiver, _PENDING, now, limit, self.replica_id, self.lease_seconds
                )
        except _DRIVER_ERRORS as exc:
            self._note(exc)
            raise _unavailable(exc, "node database cannot claim due messages") from exc
        # Availability comes back with a committed write batch (probe), not with a claim.
        rows = sorted(rows, key=lambda r: (r["next_attempt_at"], r["ord"]))
        return [_outbound(r, self.at_rest) for r in rows]

    async def next_due_at(self, receiver: str) -> dt.datetime | None:
        async def read(conn: _Conn) -> dt.datetime | None:
            # A row another replica holds is due, for us, when its lease ends.
            value: dt.datetime | None = await conn.fetchval(
                "SELECT MIN(CASE WHEN claimed_by IS DISTINCT FROM $3 "
                "AND claimed_until > clock_timestamp() "
                "THEN GREATEST(next_attempt_at, claimed_until) ELSE next_attempt_at END) "
                "FROM outbox WHERE receiver = $1 AND state = $2",
                receiver,
                _PENDING,
                self.replica_id,
            )
            return value

        return await self._read(read)

    async def get_outbound(self, message_id: str) -> OutboundRow | None:
        async def read(conn: _Conn) -> OutboundRow | None:
            row = await conn.fetchrow(
                f"SELECT {_O_COLUMNS}, r.receipt FROM outbox AS o LEFT JOIN receipts AS r "
                "ON r.issuer = o.receiver AND r.message_id = o.message_id "
                "WHERE o.message_id = $1",
                message_id,
            )
            if row is None:
                return None
            receipt = row["receipt"]
            return _outbound(row, self.at_rest, b"" if receipt is None else bytes(receipt))

        return await self._read(read)

    async def find_outbound_by_key(
        self, record_type: str, record_key: str, receiver: str
    ) -> OutboundRow | None:
        async def read(conn: _Conn) -> OutboundRow | None:
            row = await conn.fetchrow(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE record_type = $1 "
                "AND record_key = $2 AND receiver = $3 ORDER BY ord DESC LIMIT 1",
                record_type,
                record_key,
                receiver,
            )
            return None if row is None else _outbound(row, self.at_rest)

        return await self._read(read)

    async def mark_delivered(
        self,
        message_id: str,
        receipt: bytes,
        events: Sequence[LogEvent],
        *,
        received_at: dt.datetime,
    ) -> None:
        async def job(conn: _Conn, chain: _Chain) -> None:
            row = await conn.fetchrow(
                "SELECT receiver, state FROM outbox WHERE message_id = $1", message_id
            )
            if row is None or row["state"] == OutboundState.DELIVERED.value:
                return
            now = _now()
            await conn.execute(
                "UPDATE outbox SET state = $1, delivered_at = $2, attempts = attempts + 1, "
                "last_error = '', receipt_received_at = $3, claimed_by = NULL, "
                "claimed_until = NULL WHERE message_id = $4",
                OutboundState.DELIVERED.value,
                now,
                received_at,
                message_id,
            )
            await conn.execute(
                "INSERT INTO receipts VALUES ($1,$2,'received',$3,$4) "
                "ON CONFLICT (issuer, message_id) DO UPDATE SET direction = EXCLUDED.direction, "
                "receipt = EXCLUDED.receipt, stored_at = EXCLUDED.stored_at",
                row["receiver"],
                message_id,
                receipt,
                now,
            )
            chain.append(events)

        await self._submit(job)

    async def mark_failed_attempt(
        self,
        message_id: str,
        *,
        error: str,
        next_attempt_at: dt.datetime,
        final_state: OutboundState | None,
        events: Sequence[LogEvent],
    ) -> None:
        async def job(conn: _Conn, chain: _Chain) -> None:
            status = await conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $1, "
                "next_attempt_at = $2, state = $3, claimed_by = NULL, claimed_until = NULL "
                "WHERE message_id = $4 AND state = $5",
                _text(error[:2000]),
                next_attempt_at,
                (final_state or OutboundState.PENDING).value,
                message_id,
                _PENDING,
            )
            if _updated(status):
                chain.append(events)

        await self._submit(job)

    async def redrive(
        self, message_id: str, events: Sequence[LogEvent], *, now: dt.datetime | None = None
    ) -> bool:
        at = now or _now()

        async def job(conn: _Conn, chain: _Chain) -> bool:
            status = await conn.execute(
                "UPDATE outbox SET state = $1, next_attempt_at = $2, attempts = 0, age_from = $2, "
                "claimed_by = NULL, claimed_until = NULL WHERE message_id = $3 AND state = $4",
                _PENDING,
                at,
                message_id,
                OutboundState.DEAD_LETTERED.value,
            )
            if _updated(status):
                chain.append(events)
            return bool(_updated(status))

        result: bool = await self._submit(job)
        return result

    async def dead_letter_expired(self, receiver: str, created_before: dt.datetime) -> list[str]:
        async def job(conn: _Conn, chain: _Chain) -> list[str]:
            rows = await conn.fetch(
                "UPDATE outbox SET state = $1, claimed_by = NULL, claimed_until = NULL "
                "WHERE receiver = $2 AND state = $3 AND age_from < $4 "
                "RETURNING ord, message_id, record_type, attempts, last_error",
                OutboundState.DEAD_LETTERED.value,
                receiver,
                _PENDING,
                created_before,
            )
            rows = sorted(rows, key=lambda r: r["ord"])
            for r in rows:
                chain.append(
                    [
                        LogEvent(
                            EventKind.DEAD_LETTERED,
                            Direction.OUTBOUND,
                            peer=receiver,
                            message_id=r["message_id"],
                            record_type=r["record_type"],
                            detail={
                                "attempts": r["attempts"],
                                "error": r["last_error"][:500] or "never delivered",
                                "reason": "older than the dead-letter age",
                            },
                        )
                    ]
                )
            return [r["message_id"] for r in rows]

        result: list[str] = await self._submit(job)
        return result

    async def outbound_in_state(self, state: OutboundState, limit: int) -> list[OutboundRow]:
        async def read(conn: _Conn) -> list[OutboundRow]:
            rows = await conn.fetch(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE state = $1 ORDER BY ord LIMIT $2",
                state.value,
                limit,
            )
            return [_outbound(r, self.at_rest) for r in rows]

        return await self._read(read)

    async def replace_envelope(
        self, message_id: str, envelope: bytes, events: Sequence[LogEvent]
    ) -> None:
        async def job(conn: _Conn, chain: _Chain) -> None:
            await conn.execute(
                "UPDATE outbox SET envelope = $1 WHERE message_id = $2",
                self.at_rest.seal_outbound(message_id, envelope),
                message_id,
            )
            chain.append(events)

        await self._submit(job)

    # -- inbound -------------------------------------------------------------

    async def accept_inbound(
        self, row: InboundRow, events: Sequence[LogEvent], duplicate_events: Sequence[LogEvent]
    ) -> InboundAcceptance:
        async def job(conn: _Conn, chain: _Chain) -> InboundAcceptance:
            existing = await conn.fetchrow(
                f"SELECT {_INBOX_COLUMNS} FROM inbox WHERE sender = $1 AND message_id = $2",
                row.sender,
                row.message_id,
            )
            if existing is not None:
                chain.append(duplicate_events)
                receipt = await _receipt(conn, self.bureau, row.message_id)
                return InboundAcceptance(_inbound(existing, self.at_rest, receipt), created=False)
            # Inserted under the head lock: seq grows in commit order across replicas,
            # so a reader paging by seq never skips a row that commits later.
            seq = await conn.fetchval(
                "INSERT INTO inbox (sender, message_id, record_type, record_key, correlation_id, "
                "envelope, header_sha256, payload_sha256, received_at) "
                "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING seq",
                row.sender,
                row.message_id,
                row.record_type,
                row.record_key,
                row.correlation_id,
                self.at_rest.seal_inbound(row.sender, row.message_id, row.envelope),
                row.header_sha256,
                row.payload_sha256,
                row.received_at,
            )
            chain.append(events)
            return InboundAcceptance(replace(row, seq=int(seq)), created=True)

        result: InboundAcceptance = await self._submit(job)
        return result

    async def store_issued_receipt(
        self, sender: str, message_id: str, receipt: bytes, events: Sequence[LogEvent]
    ) -> None:
        async def job(conn: _Conn, chain: _Chain) -> None:
            status = await conn.execute(
                "INSERT INTO receipts VALUES ($1,$2,'issued',$3,$4) ON CONFLICT DO NOTHING",
                self.bureau,
                message_id,
                receipt,
                _now(),
            )
            if _updated(status):
                chain.append(events)

        await self._submit(job)

    async def undelivered_inbound(
        self, after_seq: int, limit: int, record_types: Sequence[str] = ()
    ) -> list[InboundRow]:
        async def read(conn: _Conn) -> list[InboundRow]:
            if record_types:
                rows = await conn.fetch(
                    f"SELECT {_INBOX_COLUMNS} FROM inbox WHERE delivered_at IS NULL AND seq > $1 "
                    "AND record_type = ANY($3::text[]) ORDER BY seq LIMIT $2",
                    after_seq,
                    limit,
                    list(record_types),
                )
            else:
                rows = await conn.fetch(
                    f"SELECT {_INBOX_COLUMNS} FROM inbox WHERE delivered_at IS NULL AND seq > $1 "
                    "ORDER BY seq LIMIT $2",
                    after_seq,
                    limit,
                )
            return [_inbound(r, self.at_rest) for r in rows]

        return await self._read(read)

    async def acknowledge_inbound(self, message_ids: Sequence[str]) -> int:
        async def job(conn: _Conn, chain: _Chain) -> int:
            if not message_ids:
                return 0
            # One undelivered row per id (the earliest), as the SQLite engine does.
            rows = await conn.fetch(
                "WITH wanted AS (SELECT DISTINCT ON (i.message_id) i.sender, i.message_id "
                "FROM inbox AS i WHERE i.message_id = ANY($2::text[]) AND i.delivered_at IS NULL "
                "ORDER BY i.message_id, i.seq) "
                "UPDATE inbox SET delivered_at = $1 FROM wanted "
                "WHERE inbox.sender = wanted.sender AND inbox.message_id = wanted.message_id "
                "RETURNING inbox.sender, inbox.message_id, inbox.record_type",
                _now(),
                list(message_ids),
            )
            position = {m: i for i, m in reversed(list(enumerate(message_ids)))}
            for r in sorted(rows, key=lambda r: position[r["message_id"]]):
                chain.append(
                    [
                        LogEvent(
                            EventKind.DELIVERED_TO_LOCAL,
                            Direction.INBOUND,
                            peer=r["sender"],
                            message_id=r["message_id"],
                            record_type=r["record_type"],
                        )
                    ]
                )
            return len(rows)

        result: int = await self._submit(job)
        return result

    async def find_inbound_by_key(self, record_type: str, record_key: str) -> InboundRow | None:
        async def read(conn: _Conn) -> InboundRow | None:
            row = await conn.fetchrow(
                f"SELECT {_INBOX_COLUMNS} FROM inbox WHERE record_type = $1 AND record_key = $2 "
                "ORDER BY seq DESC LIMIT 1",
                record_type,
                record_key,
            )
            return None if row is None else _inbound(row, self.at_rest)

        return await self._read(read)

    async def get_inbound(self, sender: str, message_id: str) -> InboundRow | None:
        async def read(conn: _Conn) -> InboundRow | None:
            row = await conn.fetchrow(
                f"SELECT {_INBOX_COLUMNS} FROM inbox WHERE sender = $1 AND message_id = $2",
                sender,
                message_id,
            )
            return None if row is None else _inbound(row, self.at_rest)

        return await self._read(read)

    # -- reconciliation ----------------------------------------------------------

    async def period_account(
        self, peer: str, start: dt.datetime, end: dt.datetime
    ) -> PeriodAccount:
        async def read(conn: _Conn) -> PeriodAccount:
            # One snapshot for the three reads, so the head matches the ids.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                sent: dict[str, set[str]] = {}
                for r in await conn.fetch(
                    "SELECT message_id, record_type FROM outbox WHERE receiver = $1 "
                    "AND receipt_received_at >= $2 AND receipt_received_at < $3",
                    peer,
                    start,
                    end,
                ):
                    sent.setdefault(r["record_type"], set()).add(r["message_id"])
                received: dict[str, set[str]] = {}
                for r in await conn.fetch(
                    "SELECT message_id, record_type FROM inbox WHERE sender = $1 "
                    "AND received_at >= $2 AND received_at < $3",
                    peer,
                    start,
                    end,
                ):
                    received.setdefault(r["record_type"], set()).add(r["message_id"])
                head = await conn.fetchrow("SELECT seq, hash FROM log_head WHERE id = 1")
            return PeriodAccount(
                sent={k: frozenset(v) for k, v in sent.items()},
                received={k: frozenset(v) for k, v in received.items()},
                log_seq=int(head["seq"]) if head else 0,
                log_head=bytes(head["hash"]) if head else GENESIS_HASH,
            )

        return await self._read(read)

    # -- retention -------------------------------------------------------------

    async def unpurged_payloads(
        self, stored_before: dt.datetime, after: tuple[str, str, str], limit: int
    ) -> list[StoredPayload]:
        async def read(conn: _Conn) -> list[StoredPayload]:
            rows = await conn.fetch(
                "SELECT direction, sender, message_id, stored_at, envelope FROM ("
                "SELECT 'inbound' AS direction, sender, message_id, received_at AS stored_at, "
                "envelope FROM inbox WHERE purged_at IS NULL AND received_at < $1 "
                "UNION ALL SELECT 'outbound', $2::text, message_id, created_at, envelope "
                "FROM outbox WHERE purged_at IS NULL AND created_at < $1) AS stored "
                'WHERE (direction COLLATE "C", sender COLLATE "C", message_id COLLATE "C") '
                "> ($3::text, $4::text, $5::text) "
                'ORDER BY direction COLLATE "C", sender COLLATE "C", message_id COLLATE "C" '
                "LIMIT $6",
                stored_before,
                self.bureau,
                after[0],
                after[1],
                after[2],
                limit,
            )
            out = []
            for r in rows:
                direction, sender, message_id = r["direction"], r["sender"], r["message_id"]
                blob = bytes(r["envelope"])
                envelope = (
                    self.at_rest.open_inbound(sender, message_id, blob)
                    if direction == "inbound"
                    else self.at_rest.open_outbound(message_id, blob)
                )
                out.append(StoredPayload(direction, sender, message_id, r["stored_at"], envelope))
            return out

        return await self._read(read)

    async def purge_payload(
        self, item: StoredPayload, envelope: bytes, events: Sequence[LogEvent]
    ) -> None:
        async def job(conn: _Conn, chain: _Chain) -> None:
            if item.direction == "inbound":
                await conn.execute(
                    "UPDATE inbox SET envelope = $1, purged_at = $2 "
                    "WHERE sender = $3 AND message_id = $4",
                    self.at_rest.seal_inbound(item.sender, item.message_id, envelope),
                    _now(),
                    item.sender,
                    item.message_id,
                )
            else:
                await conn.execute(
                    "UPDATE outbox SET envelope = $1, purged_at = $2 WHERE message_id = $3",
                    self.at_rest.seal_outbound(item.message_id, envelope),
                    _now(),
                    item.message_id,
                )
            chain.append(events)

        await self._submit(job)

    # -- transfer log --------------------------------------------------------

    async def append_log(self, events: Sequence[LogEvent]) -> None:
        async def job(_: _Conn, chain: _Chain) -> None:
            chain.append(events)

        await self._submit(job)

    async def read_log(self, after_seq: int, limit: int) -> list[LogEntry]:
        async def read(conn: _Conn) -> list[LogEntry]:
            rows = await conn.fetch(
                "SELECT * FROM transfer_log WHERE seq > $1 ORDER BY seq LIMIT $2", after_seq, limit
            )
            return [_log_entry(r) for r in rows]

        return await self._read(read)


def iter_log_postgres(dsn: str, schema: str, after_seq: int = 0) -> Iterator[LogEntry]:
    """Read a node's transfer log from PostgreSQL without the node running.

    Synchronous (for the command line and worker threads): it runs its own event
    loop, so do not call it from a thread that already runs one.
    """
    if not valid_schema_name(schema):
        raise StoreUnavailable(f"schema name {schema!r} is not valid")
    try:
        with asyncio.Runner() as runner:
            conn = runner.run(_connect_log_reader(dsn, schema))
            try:
                while True:
                    rows = runner.run(
                        conn.fetch(
                            f'SELECT * FROM "{schema}".transfer_log WHERE seq > $1 '
                            "ORDER BY seq LIMIT $2",
                            after_seq,
                            _LOG_CHUNK,
                        )
                    )
                    for row in rows:
                        entry = _log_entry(row)
                        after_seq = entry.seq
                        yield entry
                    if len(rows) < _LOG_CHUNK:
                        return
            finally:
                runner.run(conn.close())
    except _DRIVER_ERRORS as exc:
        raise _unavailable(exc, f"cannot read the transfer log in schema {schema}") from exc


async def _connect_log_reader(dsn: str, schema: str) -> asyncpg.Connection[asyncpg.Record]:
    conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(dsn, timeout=30)
    try:
        found = await conn.fetchval("SELECT to_regclass($1)", f'"{schema}".transfer_log')
    except BaseException:
        await conn.close()
        raise
    if found is None:
        await conn.close()
        raise StoreUnavailable(f"no node schema {schema} in this database")
    return conn
