"""What both engines' writers share: how many calls one commit takes, and how a call's
future learns its outcome."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["BATCH_LIMIT", "settle"]

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
