"""Transfers: both directions, newest first, filtered, searched and keyset-paged."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from aiohttp import web

from gateway.clock import BEIJING
from gateway.console import labels
from gateway.console.errors import BadRequest
from gateway.console.routes import TRANSFER_QUERY
from gateway.store.reads import DIRECTIONS, STATUSES, TransferFilter, TransferPage

if TYPE_CHECKING:
    from gateway.console.context import PageContext

__all__ = ["TransferPages", "parse_time"]


def parse_time(value: str, name: str) -> str:
    """An ISO time from a form or query (no offset: Beijing) as the store's UTC text."""
    if not value:
        return ""
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}: not an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=BEIJING)
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")


def transfer_filter(request: web.Request) -> TransferFilter:
    query = request.query
    direction = query.get("direction", "")
    status = query.get("status", "")
    record_type = query.get("record_type", "")
    if direction and direction not in DIRECTIONS:
        raise BadRequest("direction 取值无效")
    if status and status not in STATUSES:
        raise BadRequest("status 取值无效")
    if record_type and record_type not in labels.RECORD_TYPE_LABELS:
        raise BadRequest("record_type 取值无效")
    try:
        limit = int(query.get("limit", "50"))
    except ValueError:
        raise BadRequest("limit 应为整数") from None
    return TransferFilter(
        direction=direction,
        peer=query.get("peer", "").strip(),
        record_type=record_type,
        status=status,
        since=parse_time(query.get("since", ""), "since"),
        until=parse_time(query.get("until", ""), "until"),
        q=query.get("q", "").strip(),
        cursor=query.get("cursor", ""),
        limit=limit,
    )


class TransferPages:
    def __init__(self, console: PageContext) -> None:
        self.console = console
        self.backend = console.backend

    async def _transfers(self, request: web.Request) -> TransferPage:
        f = transfer_filter(request)
        try:
            return await self.backend.reads.list_transfers(f)
        except ValueError as exc:  # a cursor this API did not hand out
            raise BadRequest(str(exc)) from None

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
