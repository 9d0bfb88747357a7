"""Values a request brings in its query string, path and headers, checked before use.

Every value a page or API reads goes through one of these; what it cannot take is a
:class:`~gateway.console.errors.BadRequest` (400) whose message names the parameter in
Chinese, never a 500 from deeper down: an integer past the store's 64-bit columns, a
time that leaves years 1-9999 once turned into UTC, a control character that would end
up in a query, a log line or a page.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from gateway.clock import BEIJING
from gateway.console.errors import BadRequest
from gateway.privacy import escape_controls
from gateway.store.reads import decode_cursor

__all__ = [
    "MAX_SEQUENCE",
    "path_text",
    "query_cursor",
    "query_integer",
    "query_text",
    "query_time",
    "sequence_number",
]

MAX_SEQUENCE = 2**63 - 1  # the transfer log's seq is a 64-bit integer in both engines

# ASCII digits only: int() also takes " 5", "+5", "5_0" and other scripts' digits.
_DIGITS = re.compile(r"[0-9]{1,19}")


def _has_controls(text: str) -> bool:
    return escape_controls(text) != text


def query_text(query: Mapping[str, str], name: str, *, strip: bool = False) -> str:
    """``name``'s value ("" when absent), without control characters; ``strip`` drops
    surrounding white space first (pasted search terms)."""
    value = query.get(name, "")
    if strip:
        value = value.strip()
    if _has_controls(value):
        raise BadRequest(f"参数 {name} 含有控制字符")
    return value


def path_text(value: str, label: str) -> str:
    """A value from the route's path (a message id), without control characters."""
    if _has_controls(value):
        raise BadRequest(f"{label}含有控制字符")
    return value


_FOREIGN_CURSOR = "参数 cursor 不是本接口给出的翻页位置"


def query_cursor(query: Mapping[str, str]) -> str:
    """A keyset cursor this API handed out ("" for the first page); one made up to carry a
    NUL or an escape into the store's query is refused like any other foreign cursor."""
    cursor = query.get("cursor", "")
    try:
        position = decode_cursor(cursor)
    except ValueError:
        raise BadRequest(_FOREIGN_CURSOR) from None
    if position is not None and any(_has_controls(p) for p in position):
        raise BadRequest(_FOREIGN_CURSOR)
    return cursor


def _integer(raw: str, name: str, low: int, high: int) -> int:
    if _DIGITS.fullmatch(raw) is None or not low <= int(raw) <= high:
        raise BadRequest(f"参数 {name} 应为 {low} 到 {high} 之间的整数")
    return int(raw)


def query_integer(query: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    """``name`` as an integer in ``[low, high]``; ``default`` when absent."""
    raw = query.get(name)
    return default if raw is None else _integer(raw, name, low, high)


def sequence_number(raw: str, name: str) -> int:
    """A transfer-log sequence number (``after``, ``Last-Event-ID``)."""
    return _integer(raw, name, 0, MAX_SEQUENCE)


def query_time(query: Mapping[str, str], name: str) -> str:
    """An ISO 8601 time (no offset: Beijing) as the store's UTC text; "" when absent."""
    value = query.get(name, "")
    if not value:
        return ""
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"参数 {name} 不是有效的时间（ISO 8601，如 2026-01-31T08:30）") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=BEIJING)
    try:
        return when.astimezone(dt.UTC).isoformat(timespec="microseconds")
    except OverflowError:
        raise BadRequest(f"参数 {name} 超出可用的时间范围") from None
