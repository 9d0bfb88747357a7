"""The transfer log: recent entries, entries after a sequence number, and a live tail as
server-sent events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.console.auth import SECURITY_HEADERS
from gateway.console.query import query_integer, sequence_number

if TYPE_CHECKING:
    from gateway.console.context import PageContext

__all__ = ["TailPages"]


class TailPages:
    def __init__(self, console: PageContext) -> None:
        self.console = console
        self.reads = console.backend.reads

    async def events_api(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        limit = query_integer(query, "limit", default=200, low=1, high=500)
        after = query.get("after")
        if after is None:
            rows = await self.reads.log_latest(min(limit, 50))
        else:
            rows = await self.reads.log_after(sequence_number(after, "after"), limit)
        return web.json_response({"items": [r.as_json() for r in rows]})

    async def tail_page(self, request: web.Request) -> web.StreamResponse:
        rows = await self.reads.log_latest(50)
        return self.console.render(
            request,
            "tail.html",
            {"title": "实时日志", "rows": rows, "last_seq": rows[-1].seq if rows else 0},
        )

    async def events_stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: each new transfer-log entry as ``event: entry``, id = seq."""
        resumed = request.headers.get("Last-Event-ID")
        if resumed:
            after: int | None = sequence_number(resumed, "Last-Event-ID")
        else:
            asked = request.query.get("after", "")
            after = sequence_number(asked, "after") if asked else None
        if after is None:
            latest = await self.reads.log_latest(1)
            after = latest[-1].seq if latest else 0
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
                **SECURITY_HEADERS,
            }
        )
        await response.prepare(request)
        await response.write(b"retry: 2000\n: connected\n\n")
        last_check = time.monotonic()
        closing = self.console.closing
        position = after
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            while not closing.is_set():
                rows = await self.reads.log_after(position)
                for row in rows:
                    data = json.dumps(row.as_json(), ensure_ascii=False)
                    await response.write(f"id: {row.seq}\nevent: entry\ndata: {data}\n\n".encode())
                    position = row.seq
                if time.monotonic() - last_check > 10:
                    # A session that ended (log-out, expiry, removed operator) ends the stream.
                    last_check = time.monotonic()
                    if await self.console.guard.session_of(request) is None:
                        break
                    await response.write(b": keep-alive\n\n")
                if not rows:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(closing.wait(), self.console.tail_poll)
        return response
