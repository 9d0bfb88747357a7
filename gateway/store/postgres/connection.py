"""The PostgreSQL engine's edge: driver errors translated, and the chain inside a batch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import asyncpg.exceptions

from gateway.errors import StoreUnavailable
from gateway.store.rows import ChainHead
from gateway.translog import LogEvent

if TYPE_CHECKING:
    from gateway.store.postgres.schema import Conn

    Job: TypeAlias = Callable[[Conn, "Chain"], Awaitable[Any]]

__all__ = ["DRIVER_ERRORS", "CallFailed", "Chain", "Work", "translate", "unavailable", "updated"]

# Driver, socket and timeout failures: the database is unreachable or refused to commit.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
)


def unavailable(exc: BaseException, what: str) -> StoreUnavailable:
    error = StoreUnavailable(f"{what}: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def translate(exc: BaseException) -> BaseException:
    if isinstance(exc, DRIVER_ERRORS):
        return unavailable(exc, "node database cannot commit")
    return exc


def updated(status: str) -> int:
    """Rows touched, from a command tag such as ``UPDATE 3`` or ``INSERT 0 1``."""
    return int(status.rsplit(" ", 1)[-1])


class Chain(ChainHead):
    """The chain head inside one write batch, and the entries the batch will insert.

    Only the writer task touches it, between locking ``log_head`` and committing.
    """

    def __init__(self, seq: int, head: bytes) -> None:
        super().__init__(seq, head)
        self.rows: list[tuple[Any, ...]] = []

    def mark(self) -> tuple[int, bytes, int]:
        return self.seq, self.head, len(self.rows)

    def reset(self, mark: tuple[int, bytes, int]) -> None:
        self.seq, self.head = mark[0], mark[1]
        del self.rows[mark[2] :]

    def append(self, events: Sequence[LogEvent]) -> None:
        self.rows.extend(self.extend(events))

    async def flush(self, conn: Conn) -> None:
        if not self.rows:
            return
        await conn.executemany(
            "INSERT INTO transfer_log VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)", self.rows
        )
        await conn.execute(
            "UPDATE log_head SET seq = $1, hash = $2 WHERE id = 1", self.seq, self.head
        )


class CallFailed(Exception):
    """A call in an optimistic batch failed: the batch runs again, a savepoint per call."""


@dataclass(slots=True)
class Work:
    fn: Job
    future: asyncio.Future[Any]
