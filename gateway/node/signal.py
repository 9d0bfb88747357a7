"""Waking local receivers (streams, the inbound folder) when the inbox grows."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["InboxSignal"]


class InboxSignal:
    """Wakes local receive streams when the inbox grows."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
