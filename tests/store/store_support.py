"""Shared pieces of the store contract tests: rows, events and a harness per engine.

The PostgreSQL tests use the database named by ``CHUANYU_TEST_PG_DSN`` (default: the
local test cluster). They fail, never skip, when it cannot be reached.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from gateway.store.base import InboundRow, OutboundRow, OutboundState
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore
from gateway.translog import Direction, EventKind, LogEvent
from gateway.vault import Vault

PG_DSN = os.environ.get("CHUANYU_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
ME, PEER, OTHER = "500151", "510900", "510100"
EPOCH = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)

AnyStore = SqliteStore | PostgresStore


def envelope(message_id: str) -> bytes:
    # Starts like a serialised Envelope (field 1, length-delimited), with a readable secret.
    return b"\x0a\x20" + f"PLAINTEXT-PERSONAL-DATA {message_id} 李四".encode()


def outbound(
    message_id: str | None = None,
    *,
    receiver: str = PEER,
    record_type: str = "consumer_complaint",
    record_key: str = "TS-1",
    correlation_id: str = "",
    created_at: dt.datetime = EPOCH,
    next_attempt_at: dt.datetime = EPOCH,
    idempotency_key: str = "",
) -> OutboundRow:
    message_id = message_id or str(uuid.uuid4())
    return OutboundRow(
        message_id=message_id,
        receiver=receiver,
        record_type=record_type,
        record_key=record_key,
        correlation_id=correlation_id,
        envelope=envelope(message_id),
        created_at=created_at,
        state=OutboundState.PENDING,
        attempts=0,
        next_attempt_at=next_attempt_at,
        idempotency_key=idempotency_key,
    )


def inbound(
    message_id: str | None = None,
    *,
    sender: str = PEER,
    record_type: str = "consumer_complaint",
    record_key: str = "TS-1",
    received_at: dt.datetime = EPOCH,
) -> InboundRow:
    message_id = message_id or str(uuid.uuid4())
    body = envelope(message_id)
    return InboundRow(
        sender=sender,
        message_id=message_id,
        record_type=record_type,
        record_key=record_key,
        correlation_id="",
        envelope=body,
        header_sha256=hashlib.sha256(b"header" + body).digest(),
        payload_sha256=hashlib.sha256(body).digest(),
        received_at=received_at,
    )


def event(kind: EventKind, message_id: str = "", **detail: object) -> LogEvent:
    direction = Direction.INBOUND if kind is EventKind.RECEIVED else Direction.OUTBOUND
    return LogEvent(kind, direction, peer=PEER, message_id=message_id, detail=detail)


@dataclass
class Harness:
    """One engine under test: its store, and the ways a test reaches behind it."""

    engine: str
    store: AnyStore
    make_store: Callable[..., Awaitable[AnyStore]]
    raw_envelopes: Callable[[], Awaitable[list[bytes]]]
    hold_write_lock: Callable[[], contextlib.AbstractAsyncContextManager[None]]
    extra: list[AnyStore] = field(default_factory=list)

    async def replica(self, **options: object) -> AnyStore:
        """Another store on the same data (a second replica, for PostgreSQL)."""
        store = await self.make_store(**options)
        self.extra.append(store)
        return store


def vault(tmp_path: Path) -> Vault:
    key_file = tmp_path / "keys.json"
    if not key_file.exists():
        Vault.generate_key_file(key_file)
    return Vault.load(key_file)


@contextlib.asynccontextmanager
async def sqlite_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    path = tmp_path / "node.db"

    async def make(**options: object) -> AnyStore:
        store = SqliteStore(
            path,
            bureau=str(options.get("bureau", ME)),
            busy_timeout_ms=int(str(options.get("busy_timeout_ms", 5000))),
            vault=vault(tmp_path),
        )
        await store.open()
        return store

    async def raw() -> list[bytes]:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            rows = conn.execute("SELECT envelope FROM outbox UNION ALL SELECT envelope FROM inbox")
            return [bytes(r[0]) for r in rows]

    @contextlib.asynccontextmanager
    async def hold() -> AsyncIterator[None]:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()

    store = await make()
    harness = Harness("sqlite", store, make, raw, hold)
    try:
        yield harness
    finally:
        for s in [store, *harness.extra]:
            await s.close()


@contextlib.asynccontextmanager
async def postgres_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(PG_DSN, timeout=10)  # fails loudly without PostgreSQL

    async def make(**options: object) -> AnyStore:
        store = PostgresStore(
            PG_DSN,
            bureau=str(options.get("bureau", ME)),
            schema=schema,
            vault=vault(tmp_path),
            lock_timeout_ms=int(str(options.get("lock_timeout_ms", 5000))),
            lease_seconds=float(str(options.get("lease_seconds", 120.0))),
        )
        await store.open()
        return store

    async def raw() -> list[bytes]:
        rows = await admin.fetch(
            f"SELECT envelope FROM {schema}.outbox UNION ALL SELECT envelope FROM {schema}.inbox"
        )
        return [bytes(r["envelope"]) for r in rows]

    @contextlib.asynccontextmanager
    async def hold() -> AsyncIterator[None]:
        async with admin.transaction():
            await admin.execute(f"SELECT 1 FROM {schema}.log_head FOR UPDATE")
            yield

    harness: Harness | None = None
    try:
        store = await make()
        harness = Harness("postgresql", store, make, raw, hold)
        yield harness
    finally:
        if harness is not None:
            for s in [harness.store, *harness.extra]:
                await s.close()
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()
