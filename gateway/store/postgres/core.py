"""The PostgreSQL store's lifecycle and its writer: one batch, one transaction, one head lock."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from gateway.clock import iso_utc, utc_now
from gateway.errors import StoreUnavailable
from gateway.store.at_rest import AtRest
from gateway.store.engine import Engine
from gateway.store.jobs import settle, take_batch
from gateway.store.postgres.connection import (
    DRIVER_ERRORS,
    CallFailed,
    Chain,
    Work,
    translate,
    unavailable,
    updated,
)
from gateway.store.postgres.schema import default_schema, prepare, valid_schema_name
from gateway.store.statements import Dialect, numbered
from gateway.store.writes import Step, Times
from gateway.vault import Vault

if TYPE_CHECKING:
    from gateway.store.postgres.connection import Job
    from gateway.store.postgres.schema import Conn

__all__ = ["PostgresCore"]

T = TypeVar("T")


async def _run(conn: Conn, chain: Chain, step: Step) -> int:
    """One call's statements; the row count of the first."""
    statement, params = step.first if step.statements else ("", ())
    count = updated(await conn.execute(numbered(statement), *params)) if statement else 0
    rest, events = step.after(count)
    for more, values in rest:
        await conn.execute(numbered(more), *values)
    chain.append(events)
    return count


class PostgresCore(Engine):
    """One PostgreSQL schema: a pool for reads, a writer task that batches every write."""

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
        self._queue: asyncio.Queue[Work | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._failing = False
        self._last_error = ""

    _times = Times(text=lambda value: value, due=lambda value: value)
    _dialect = Dialect(placeholder=lambda n: f"${n}", time=dt.datetime.fromisoformat, hints=False)
    _order = "ord"
    _release = ", claimed_by = NULL, claimed_until = NULL"

    async def _rows(self, statement: str, *params: Any) -> list[Any]:
        async def read(conn: Conn) -> list[Any]:
            return list(await conn.fetch(numbered(statement), *params))

        return await self._read(read)

    async def _snapshot(self, *reads: tuple[str, Sequence[Any]]) -> list[list[Any]]:
        async def read(conn: Conn) -> list[list[Any]]:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return [list(await conn.fetch(numbered(s), *p)) for s, p in reads]

        return await self._read(read)

    async def _write(self, *steps: Step) -> list[int]:
        async def job(conn: Conn, chain: Chain) -> list[int]:
            return [await _run(conn, chain, step) for step in steps]

        result: list[int] = await self._submit(job)
        return result

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
                await prepare(conn, self.schema)
                await self._claim_identity(conn)
        except DRIVER_ERRORS as exc:
            await self._close_pool()
            raise unavailable(exc, f"cannot open PostgreSQL schema {self.schema}") from exc
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
            except DRIVER_ERRORS:
                pool.terminate()

    @property
    def available(self) -> bool:
        """False since the last commit failed, until one succeeds again."""
        return not self._failing

    @property
    def last_error(self) -> str:
        return self._last_error

    async def probe(self) -> None:
        """Commit a heartbeat: raises ``StoreUnavailable`` while the store cannot write."""

        async def job(conn: Conn, _: Chain) -> None:
            await conn.execute(
                "INSERT INTO node_identity VALUES ('heartbeat', $1) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                iso_utc(utc_now()),
            )

        await self._submit(job)

    async def _claim_identity(self, conn: Conn) -> None:
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
        self._queue.put_nowait(Work(fn, future))
        # Shield: a cancelled caller must not hide whether its commit happened.
        return await asyncio.shield(future)

    async def _write_loop(self) -> None:
        while True:
            work = await self._queue.get()
            if work is None:
                return
            queue = self._queue
            await self._commit_batch(
                take_batch(work, queue.get_nowait, asyncio.QueueEmpty, queue.put_nowait)
            )

    async def _commit_batch(self, batch: list[Work]) -> None:
        outcomes: list[tuple[Work, Any, BaseException | None]] = []
        try:
            try:
                # Optimistic: no savepoints, so a call costs one round trip, not three.
                outcomes = await self._run_batch(batch, isolate=False)
            except CallFailed:
                # Some call failed: run the batch again with a savepoint per call, so the
                # failure rolls back alone (calls only touch the database and the chain).
                outcomes = await self._run_batch(batch, isolate=True)
            self._note(None)
        except DRIVER_ERRORS as exc:
            self._note(exc)
            failure = translate(exc)
            outcomes = [(work, None, failure) for work in batch]
        except Exception as exc:
            outcomes = [(work, None, exc) for work in batch]
        for work, result, error in outcomes:
            settle(work.future, result, error)

    async def _run_batch(
        self, batch: list[Work], *, isolate: bool
    ) -> list[tuple[Work, Any, BaseException | None]]:
        """One transaction for the whole batch; raises ``CallFailed`` unless ``isolate``."""
        if self._pool is None:
            raise StoreUnavailable(f"the node store (schema {self.schema}) is closed")
        outcomes: list[tuple[Work, Any, BaseException | None]] = []
        async with self._pool.acquire() as conn, conn.transaction():
            # Every writer of every replica queues here before touching any row.
            head = await conn.fetchrow("SELECT seq, hash FROM log_head WHERE id = 1 FOR UPDATE")
            if head is None:
                raise StoreUnavailable(f"schema {self.schema} has no transfer-log head")
            chain = Chain(int(head["seq"]), bytes(head["hash"]))
            for work in batch:
                if not isolate:
                    try:
                        outcomes.append((work, await work.fn(conn, chain), None))
                    except Exception as exc:
                        if conn.is_closed():
                            raise
                        raise CallFailed from exc
                    continue
                mark = chain.mark()
                try:
                    async with conn.transaction():  # a savepoint per call
                        result = await work.fn(conn, chain)
                except Exception as exc:
                    if conn.is_closed():
                        raise
                    chain.reset(mark)
                    outcomes.append((work, None, translate(exc)))
                else:
                    outcomes.append((work, result, None))
            await chain.flush(conn)
        return outcomes

    async def _read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        if self._pool is None:
            raise StoreUnavailable(f"the node store (schema {self.schema}) is closed")
        try:
            async with self._pool.acquire() as conn:
                return await fn(conn)
        except DRIVER_ERRORS as exc:
            raise unavailable(exc, "node database cannot be read") from exc
