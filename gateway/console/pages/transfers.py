"""Transfers: both directions, newest first, filtered, searched and keyset-paged."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from aiohttp import web

from gateway.console import labels
from gateway.console.errors import BadRequest
from gateway.console.query import query_cursor, query_integer, query_text, query_time
from gateway.console.routes import TRANSFER_QUERY
from gateway.store.reads import DIRECTIONS, MAX_PAGE, STATUSES, TransferFilter, TransferPage

if TYPE_CHECKING:
    from gateway.console.context import PageContext

__all__ = ["TransferPages", "transfer_filter"]


def transfer_filter(request: web.Request) -> TransferFilter:
    query = request.query
    direction = query.get("direction", "")
    status = query.get("status", "")
    record_type = query.get("record_type", "")
    if direction and direction not in DIRECTIONS:
        raise BadRequest("参数 direction 取值无效")
    if status and status not in STATUSES:
        raise BadRequest("参数 status 取值无效")
    if record_type and record_type not in labels.RECORD_TYPE_LABELS:
        raise BadRequest("参数 record_type 取值无效")
    return TransferFilter(
        direction=direction,
        peer=query_text(query, "peer", strip=True),
        record_type=record_type,
        status=status,
        since=query_time(query, "since"),
        until=query_time(query, "until"),
        q=query_text(query, "q", strip=True),
        cursor=query_cursor(query),
        limit=query_integer(query, "limit", default=50, low=1, high=MAX_PAGE),
    )


class TransferPages:
    def __init__(self, console: PageContext) -> None:
        self.console = console
        self.backend = console.backend

    async def _transfers(self, request: web.Request) -> TransferPage:
        return await self.backend.reads.list_transfers(transfer_filter(request))

    async def transfers_api(self, request: web.Request) -> web.StreamResponse:
        page = await self._transfers(request)
        return web.json_response(
            {"items": [r.as_json() for r in page.rows], "next_cursor": page.next_cursor or None}
        )

    async def transfers_page(self, request: web.Request) -> web.StreamResponse:
        page = await self._transfers(request)
        params = {k: v for k, v in request.query.items() if k != "cursor" and v}
        next_link = ""
        if page.next_cursor:
            next_link = "/transfers?" + urlencode({**params, "cursor": page.next_cursor})
        return self.console.render(
            request,
            "transfers.html",
            {
                "title": "传输记录",
                "rows": page.rows,
                "filters": {k: request.query.get(k, "") for k, _ in TRANSFER_QUERY},
                "peers": sorted(self.backend.partner_names()),
                "next_link": next_link,
                "first_link": "/transfers?" + urlencode(params)
                if "cursor" in request.query
                else "",
            },
        )
