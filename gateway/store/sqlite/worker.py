"""The SQLite engine's threads: one writer with group commit, one reader beside it.

Every mutation is a job for the single writer thread. The writer takes all jobs
waiting in its queue, runs each inside its own savepoint of one transaction, and
commits once: many concurrent calls share one fsync (PERFORMANCE.md measures a
commit per await at 1.8k rows/s and group commit at 57k). A job that fails rolls
back to its savepoint without touching its neighbours. Reads run on a second
thread with its own connection, which WAL lets proceed beside the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import StoreUnavailable
from gateway.store.jobs import settle, take_batch
from gateway.store.rows import ChainHead
from gateway.store.sqlite.schema import connect, prepare
from gateway.translog import GENESIS_HASH, LogEvent

__all__ = ["Job", "LogAppender", "Worker", "translate"]


class LogAppender(ChainHead):
    """Keeps the chain head in memory; only the writer thread touches it."""

    def __init__(self) -> None:
        super().__init__(0, GENESIS_HASH)

    def load(self, conn: sqlite3.Connection) -> None:
        row = conn.execute(
            "SELECT seq, hash FROM transfer_log ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is not None:
            self.seq, self.head = int(row[0]), bytes(row[1])

    def append(self, conn: sqlite3.Connection, events: Sequence[LogEvent]) -> None:
        rows = self.extend(events)
        conn.executemany("INSERT INTO transfer_log VALUES (?,?,?,?,?,?,?,?,?,?)", rows)


Job = Callable[[sqlite3.Connection, LogAppender], Any]


@dataclass(slots=True)
class _Work:
    fn: Job
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


def translate(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.Error):
        error = StoreUnavailable(f"node database cannot commit: {exc}")
        error.__cause__ = exc
        return error
    return exc


class Worker:
    """A thread that owns one connection and runs jobs from a queue."""

    def __init__(self, name: str, path: Path, *, writer: bool, busy_timeout_ms: int) -> None:
        self._path = path
        self._writer = writer
        self._busy_timeout_ms = busy_timeout_ms
        # Set by the writer thread after every commit attempt; read by the node's health.
        self.failing = False
        self.last_error = ""
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.log = LogAppender()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise translate(self._startup_error)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    async def submit(self, fn: Job) -> Any:
        if not self._thread.is_alive():
            raise StoreUnavailable(f"the node database {self._path} is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Work(fn, loop, future))
        # Shield: a cancelled caller must not hide whether its commit happened.
        return await asyncio.shield(future)

    def _run(self) -> None:
        try:
            conn = connect(self._path, busy_timeout_ms=self._busy_timeout_ms)
            if self._writer:
                prepare(conn)
                self.log.load(conn)
        except BaseException as exc:  # reported to start()
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                work = self._queue.get()
                if work is None:
                    return
                if self._writer:
                    batch = take_batch(work, self._queue.get_nowait, queue.Empty, self._queue.put)
                    self._commit_batch(conn, batch)
                else:
                    self._read(conn, work)
        finally:
            conn.close()

    def _read(self, conn: sqlite3.Connection, work: _Work) -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = work.fn(conn, self.log)
        except BaseException as exc:
            error = translate(exc)
        work.loop.call_soon_threadsafe(settle, work.future, result, error)

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[_Work]) -> None:
        start_seq, start_head = self.log.seq, self.log.head
        outcomes: list[tuple[_Work, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for work in batch:
                seq, head = self.log.seq, self.log.head
                conn.execute("SAVEPOINT job")
                try:
                    result = work.fn(conn, self.log)
                except BaseException as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    self.log.seq, self.log.head = seq, head
                    outcomes.append((work, None, translate(exc)))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((work, result, None))
            conn.execute("COMMIT")
            self.failing, self.last_error = False, ""
        except sqlite3.Error as exc:
            self.failing, self.last_error = True, str(exc)
            if conn.in_transaction:
                # The original error is the one to report.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            self.log.seq, self.log.head = start_seq, start_head
            failure = translate(exc)
            outcomes = [(work, None, failure) for work in batch]
        for work, result, error in outcomes:
            work.loop.call_soon_threadsafe(settle, work.future, result, error)
