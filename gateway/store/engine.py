"""What the shared operations and views need from an engine, and nothing more.

An engine runs statements written with ``?`` placeholders: reads beside its writer
(:meth:`Engine._rows`, :meth:`Engine._snapshot`) and writes as steps of its group
commit (:meth:`Engine._write`). How it connects, batches, locks and translates
its driver's errors is its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from gateway.store.at_rest import AtRest
from gateway.store.statements import Dialect
from gateway.store.writes import Step, Times

__all__ = ["Engine"]


class Engine:
    """What an engine provides to the shared operations and views: where it is, how it
    spells times and a few clauses, and three primitives that run statements."""

    bureau: str
    at_rest: AtRest
    _times: Times  # how it stores a time
    _dialect: Dialect  # how it spells a transfers query
    _order: str  # the outbox's insertion-order column
    _release: str  # what a row leaving the pending queue also sets

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _rows(self, statement: str, *params: Any) -> list[Any]:
        """Run a read (``?`` placeholders) beside the writer and return its rows."""
        raise NotImplementedError

    async def _snapshot(self, *reads: tuple[str, Sequence[Any]]) -> list[list[Any]]:
        """Run several reads in one snapshot of the database; the rows of each."""
        raise NotImplementedError

    async def _write(self, *steps: Step) -> list[int]:
        """Run ``steps`` in one savepoint of the writer's next commit; the row count of each
        step's first statement. Returns once the commit is durable."""
        raise NotImplementedError
