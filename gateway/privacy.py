"""Personal information: how a field is marked, and how its value is masked.

A canonical-record field that holds personal information carries a
:class:`PersonalInfo` marker in its ``Annotated`` metadata. Anything that shows
a value to a person or writes it to a log calls :func:`mask` first, and shows it
through :func:`escape_controls`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "PIKind",
    "PersonalInfo",
    "escape_controls",
    "mask",
    "mask_id_number",
    "mask_name",
    "mask_phone",
]


class PIKind(enum.StrEnum):
    NAME = "name"
    PHONE = "phone"
    ID_NUMBER = "id_number"
    ADDRESS = "address"


@dataclass(frozen=True, slots=True)
class PersonalInfo:
    """Marks a field as personal information of the given kind."""

    kind: PIKind


def mask_name(value: str) -> str:
    """``李四`` → ``李*``; ``欧阳娜娜`` → ``欧***``."""
    if not value:
        return value
    return value[0] + "*" * (len(value) - 1)


def mask_phone(value: str) -> str:
    """``13800138000`` → ``138****8000``; landlines keep the area code and last four."""
    digits = sum(c.isdigit() for c in value)
    if digits <= 4:
        return "*" * len(value)
    keep_head = 3 if len(value) > 7 else 0
    head, tail = value[:keep_head], value[-4:]
    return head + "*" * (len(value) - keep_head - 4) + tail


def mask_id_number(value: str) -> str:
    """``11010519491231002X`` → ``110105********002X``: area code and last four stay."""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_address(value: str) -> str:
    """Keep the first six characters (province, city, district); hide the rest."""
    if len(value) <= 6:
        return value[:2] + "*" * max(0, len(value) - 2)
    return value[:6] + "*" * min(len(value) - 6, 8)


_MASKERS = {
    PIKind.NAME: mask_name,
    PIKind.PHONE: mask_phone,
    PIKind.ID_NUMBER: mask_id_number,
    PIKind.ADDRESS: mask_address,
}


def mask(kind: PIKind, value: str) -> str:
    """Mask ``value`` as personal information of ``kind``."""
    return _MASKERS[kind](value)


def escape_controls(text: str) -> str:
    """``text`` with every character a terminal or a log reader would not show as itself
    written as its Python escape (``\\x1b``, ``\\n``, ``\\x85``, ``\\u202e``).

    That is everything :meth:`str.isprintable` refuses: C0 controls (ESC, BEL, CR, LF,
    TAB, NUL), DEL and C1, format characters (the bidi overrides and isolates U+202A-202E
    and U+2066-2069, zero-width ones), line and paragraph separators, spaces other than
    U+0020, and unassigned, private and surrogate code points. A value from a peer or a
    local caller so cannot forge a line, hide or reorder text, or send a terminal escape
    sequence. The node's log and every command's terminal output go through this one
    function; its output is printable, so escaping twice changes nothing.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
