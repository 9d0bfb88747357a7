"""One record: its envelope decoded and checked again, its receipt and its timeline;
personal information masked unless an officer asks to see it (and that is logged)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.console.auth import SESSION
from gateway.console.errors import NoSuchRecord
from gateway.console.query import path_text
from gateway.console.record_view import build_record_view
from gateway.store.reads import DIRECTIONS
from gateway.translog import Direction, EventKind, LogEvent

if TYPE_CHECKING:
    from gateway.console.context import PageContext

__all__ = ["RecordPages", "flatten_record"]

_log = logging.getLogger("chuanyu.console")


class RecordPages:
    def __init__(self, console: PageContext) -> None:
        self.console = console
        self.backend = console.backend

    async def _detail(self, request: web.Request, *, unmask: bool) -> dict[str, Any]:
        direction = request.match_info["direction"]
        message_id = path_text(request.match_info["message_id"], "报文编号")
        if direction not in DIRECTIONS:
            raise NoSuchRecord("没有这条记录")
        reads = self.backend.reads
        message = await reads.stored_message(direction, message_id)
        if message is None:
            raise NoSuchRecord("没有这条记录")
        timeline = await reads.message_timeline(message_id)
        issuer = message.peer if direction == "outbound" else self.backend.bureau
        view = await asyncio.to_thread(
            build_record_view,
            message.envelope,
            message.receipt,
            receipt_issuer=issuer,
            verifier=self.backend.verifier,
            unmask=unmask,
        )
        if unmask:
            operator = request[SESSION].operator.username
            # Logged before the data leaves: if the log cannot take it, nothing is shown.
            await self.backend.append_log(
                [
                    LogEvent(
                        EventKind.PERSONAL_DATA_VIEWED,
                        Direction(direction),
                        peer=message.peer,
                        message_id=message.message_id,
                        record_type=message.record_type,
                        detail={"operator": operator, "fields": view.personal_fields},
                    )
                ]
            )
            _log.info("personal data of %s shown to %s", message.message_id, operator)
            timeline = await reads.message_timeline(message_id)
        return {"message": message, "view": view, "timeline": timeline}

    @staticmethod
    def _json(data: dict[str, Any]) -> dict[str, Any]:
        message = data["message"]
        return {
            "direction": message.direction,
            "message_id": message.message_id,
            "peer": message.peer,
            "record_type": message.record_type,
            "record_key": message.record_key,
            "status": message.status,
            "at": message.at,
            "attempts": message.attempts,
            "last_error": message.last_error,
            **data["view"].as_json(),
            "timeline": [e.as_json() for e in data["timeline"]],
        }

    def _page(self, request: web.Request, data: dict[str, Any]) -> web.Response:
        view = data["view"]
        pi = set(view.personal_fields)
        context = {
            "title": "记录详情",
            "message": data["message"],
            "view": view,
            "record_rows": [
                {"path": path, "value": text, "pi": path in pi}
                for path, _, text in flatten_record(view.record)
            ],
            "timeline": data["timeline"],
        }
        return self.console.render(request, "detail.html", context)

    async def detail_api(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._json(await self._detail(request, unmask=False)))

    async def reveal_api(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._json(await self._detail(request, unmask=True)))

    async def detail_page(self, request: web.Request) -> web.StreamResponse:
        return self._page(request, await self._detail(request, unmask=False))

    async def reveal_page(self, request: web.Request) -> web.StreamResponse:
        return self._page(request, await self._detail(request, unmask=True))


def flatten_record(data: Any, prefix: str = "") -> list[tuple[str, str, str]]:
    """(path, label key, text) rows of a record, nested models flattened to dotted paths."""
    rows: list[tuple[str, str, str]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            rows.extend(flatten_record(value, f"{prefix}{key}."))
        return rows
    path = prefix.rstrip(".")
    if isinstance(data, list):
        if all(not isinstance(v, dict | list) for v in data):
            text = "；".join(str(v) for v in data)
            return [(path, path, text)]
        for i, value in enumerate(data):
            rows.extend(flatten_record(value, f"{path}.{i + 1}."))
        return rows
    if data is None:
        return []  # an optional field the record does not have
    return [(path, path, str(data))]
