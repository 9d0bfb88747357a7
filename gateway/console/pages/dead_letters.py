"""Dead letters, and re-driving one back into its partner's queue."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from aiohttp import web

from gateway.console.auth import SESSION
from gateway.console.errors import NotDeadLettered
from gateway.console.query import path_text, query_text

if TYPE_CHECKING:
    from gateway.console.context import PageContext

__all__ = ["DeadLetterPages"]

_log = logging.getLogger("chuanyu.console")


class DeadLetterPages:
    def __init__(self, console: PageContext) -> None:
        self.console = console
        self.backend = console.backend

    async def dead_letters_api(self, request: web.Request) -> web.StreamResponse:
        rows = await self.backend.reads.dead_letters()
        return web.json_response({"items": [r.as_json() for r in rows]})

    async def dead_letters_page(self, request: web.Request) -> web.StreamResponse:
        redriven = query_text(request.query, "redriven")
        failed = query_text(request.query, "failed")
        rows = await self.backend.reads.dead_letters()
        return self.console.render(
            request,
            "dead_letters.html",
            {"title": "死信", "rows": rows, "redriven": redriven, "failed": failed},
        )

    async def _redrive(self, request: web.Request) -> tuple[str, bool]:
        message_id = path_text(request.match_info["message_id"], "报文编号")
        operator = request[SESSION].operator.username
        done = await self.backend.redrive(message_id, operator=operator)
        if done:
            _log.info("dead letter %s re-driven by %s", message_id, operator)
        return message_id, done

    async def redrive_api(self, request: web.Request) -> web.StreamResponse:
        message_id, done = await self._redrive(request)
        if not done:
            raise NotDeadLettered("该报文不在死信中")
        return web.json_response({"message_id": message_id, "redriven": True})

    async def redrive_page(self, request: web.Request) -> web.StreamResponse:
        message_id, done = await self._redrive(request)
        key = "redriven" if done else "failed"
        raise web.HTTPSeeOther(f"/dead-letters?{urlencode({key: message_id})}")
