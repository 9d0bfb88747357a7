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
from gateway.console.errors import BadRequest

if TYPE_CHECKING:
    from gateway.console.context import PageContext

__all__ = ["TailPages"]


class TailPages:
    def __init__(self, console: PageContext) -> None:
        self.console = console
        self.reads = console.backend.reads

    async def events_api(self, request: web.Request) -> web.StreamResponse:
        try:
            limit = max(1, min(500, int(request.query.get("limit", "200"))))
            after = request.query.get("after")
            after_seq = None if after is None else int(after)
        except ValueError:
            raise BadRequest("after 和 limit 应为整数") from None
        if after_seq is None:
            rows = await self.reads.log_latest(min(limit, 50))
        else:
            rows = await self.reads.log_after(after_seq, limit)
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
        raw = request.headers.get("Last-Event-ID") or request.query.get("after", "")
        try:
            after = int(raw) if raw else None
        except ValueError:
            raise BadRequest("after 应为整数") from None
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
