"""What both engines' writers share: how many calls one commit takes, and how a call's
future learns its outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["BATCH_LIMIT", "settle", "take_batch"]

W = TypeVar("W")

# Calls one write transaction takes at most (group commit).
BATCH_LIMIT = 512


def settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """Hand a call its outcome, unless its caller has gone (the commit stands either way)."""
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def take_batch(
    first: W,
    get_nowait: Callable[[], W | None],
    empty: type[Exception],
    put_back: Callable[[None], Any],
) -> list[W]:
    """``first`` and whatever else is waiting, up to :data:`BATCH_LIMIT`. A ``None`` in the
    queue asks the writer to stop after this batch: it goes back for the loop to see."""
    batch = [first]
    while len(batch) < BATCH_LIMIT:
        try:
            more = get_nowait()
        except empty:
            break
        if more is None:
            put_back(None)
            break
        batch.append(more)
    return batch
