"""What the console and the command line read from a node's store, as protocols.

The store owns every statement against a node's database; callers above it (the
console, ``log tail/verify``, ``envelope export``, ``operators``, the demo) get
these narrow views, and both engines implement all of them:

- :class:`ConsoleReads`: the console's read models (overview counts, transfers with
  keyset pagination and search, a record's timeline, dead letters, the log's tail).
- :class:`OperatorRecords`: console operators and their sessions, as rows. Password
  hashing and session policy stay in the console; the store only keeps rows.
- :class:`OfflineReader`: the log and stored envelopes of a node that need not be
  running, for the command line and the demo.

The row types here are plain data and engine-neutral; times are ISO 8601 UTC text,
as stored, so keyset cursors compare as text in both engines.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.store.base import OutboundRow
from gateway.translog import LogEntry

__all__ = [
    "DIRECTIONS",
    "MAX_PAGE",
    "STATUSES",
    "ConsoleReads",
    "ExportedEnvelope",
    "InboundCount",
    "LogRow",
    "OfflineReader",
    "OperatorRecords",
    "OperatorRow",
    "OutboundCount",
    "PeerBacklog",
    "SessionRow",
    "StoredMessage",
    "TransferFilter",
    "TransferPage",
    "TransferRow",
    "decode_cursor",
    "encode_cursor",
]

DIRECTIONS = ("outbound", "inbound")
# Outbound states as the store keeps them; inbound: "received" until the local system
# takes it, then "delivered" (to local).
STATUSES = ("pending", "delivered", "rejected", "dead_lettered", "received")
MAX_PAGE = 200


# ---------------------------------------------------------------------------- transfers


@dataclass(frozen=True, slots=True)
class TransferFilter:
    direction: str = ""
    peer: str = ""
    record_type: str = ""
    status: str = ""
    since: str = ""  # ISO 8601 UTC, inclusive
    until: str = ""  # ISO 8601 UTC, exclusive
    q: str = ""  # message id, USCC, complaint number or referral number (exact)
    cursor: str = ""
    limit: int = 50


@dataclass(frozen=True, slots=True)
class TransferRow:
    direction: str
    message_id: str
    peer: str
    record_type: str
    record_key: str
    status: str
    at: str
    attempts: int
    last_error: str

    def as_json(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "message_id": self.message_id,
            "peer": self.peer,
            "record_type": self.record_type,
            "record_key": self.record_key,
            "status": self.status,
            "at": self.at,
            "attempts": self.attempts,
            "last_error": self.last_error,
        }


@dataclass(frozen=True, slots=True)
class TransferPage:
    rows: list[TransferRow]
    next_cursor: str = ""


def encode_cursor(at: str, message_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([at, message_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str] | None:
    """``(at, message_id)`` of a cursor this API handed out; ``ValueError`` otherwise."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, message_id = json.loads(raw)
    except (ValueError, binascii.Error, TypeError):
        raise ValueError("cursor is not one this API handed out") from None
    if not isinstance(at, str) or not isinstance(message_id, str):
        raise ValueError("cursor is not one this API handed out")
    return at, message_id


# ---------------------------------------------------------------------------- overview


@dataclass(frozen=True, slots=True)
class OutboundCount:
    state: str
    peer: str
    record_type: str
    count: int


@dataclass(frozen=True, slots=True)
class InboundCount:
    peer: str
    record_type: str
    received: int
    undelivered: int  # not yet taken by the local system


@dataclass(frozen=True, slots=True)
class PeerBacklog:
    pending: int
    dead_lettered: int
    oldest_pending: str | None  # ISO 8601 UTC created-at of the oldest pending message


# ---------------------------------------------------------------------------- the log


@dataclass(frozen=True, slots=True)
class LogRow:
    seq: int
    at: str
    kind: str
    direction: str
    peer: str
    message_id: str
    record_type: str
    detail: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "kind": self.kind,
            "direction": self.direction,
            "peer": self.peer,
            "message_id": self.message_id,
            "record_type": self.record_type,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message as the store keeps it: envelope decrypted, and its receipt if any
    (outbound: the partner's receipt for us; inbound: the one we issued)."""

    direction: str
    message_id: str
    peer: str
    record_type: str
    record_key: str
    status: str
    at: str
    attempts: int
    last_error: str
    envelope: bytes
    receipt: bytes


class ConsoleReads(Protocol):
    """Read models behind the console. Never blocks the exchange: engines run these on
    read connections of their own, beside the writer."""

    async def list_transfers(self, f: TransferFilter) -> TransferPage:
        """One page, newest first by ``(at, message_id)``; ``next_cursor`` empty on the last
        page. ``ValueError`` for a cursor this API did not hand out."""

    async def outbound_counts(self) -> list[OutboundCount]: ...

    async def inbound_counts(self) -> list[InboundCount]: ...

    async def backlog_by_peer(self) -> dict[str, PeerBacklog]: ...

    async def throughput(self, now: dt.datetime, hours: int = 24) -> list[tuple[str, int, int]]:
        """(hour start ``YYYY-MM-DDTHH:00`` UTC, sent, received), oldest first."""

    async def dead_letters(self, limit: int = 500) -> list[TransferRow]: ...

    async def log_after(self, after_seq: int = 0, limit: int = 200) -> list[LogRow]: ...

    async def log_latest(self, limit: int = 50) -> list[LogRow]:
        """The newest ``limit`` entries, oldest first."""

    async def message_timeline(self, message_id: str) -> list[LogRow]: ...

    async def stored_message(self, direction: str, message_id: str) -> StoredMessage | None: ...


# ---------------------------------------------------------------------------- operators


@dataclass(frozen=True, slots=True)
class OperatorRow:
    username: str
    role: str
    password_hash: str
    created_at: float  # seconds since the epoch
    updated_at: float


@dataclass(frozen=True, slots=True)
class SessionRow:
    token_sha256: bytes
    username: str
    csrf_token: str
    created_at: float
    expires_at: float


class OperatorRecords(Protocol):
    """Console operators and sessions, as rows (the console hashes and decides)."""

    async def add_operator(self, row: OperatorRow) -> bool:
        """False if the username is taken."""

    async def get_operator(self, username: str) -> OperatorRow | None: ...

    async def list_operators(self) -> list[OperatorRow]: ...

    async def update_operator(
        self,
        username: str,
        *,
        at: float,
        role: str | None = None,
        password_hash: str | None = None,
        end_sessions: bool = False,
    ) -> bool:
        """Change the given columns (and end the operator's sessions); False if unknown."""

    async def remove_operator(self, username: str) -> bool:
        """Remove the operator and its sessions; False if unknown."""

    async def create_session(self, row: SessionRow, *, expire_before: float) -> None:
        """Insert ``row`` and delete sessions that expired before ``expire_before``."""

    async def get_session(self, token_sha256: bytes) -> tuple[SessionRow, OperatorRow] | None: ...

    async def end_session(self, token_sha256: bytes) -> None: ...


# ---------------------------------------------------------------------------- offline


@dataclass(frozen=True, slots=True)
class ExportedEnvelope:
    direction: str  # "outbound" or "inbound"
    envelope: bytes  # decrypted, exactly as signed and sent
    receipt: bytes  # b"" if none is stored yet


class OfflineReader(Protocol):
    """A node's store read without the node running (synchronous, for the command line).

    Opened from a node configuration or a database location by
    :func:`gateway.store.open_offline`; a context manager.
    """

    location: str  # for messages: a file path or "schema NAME"

    def __enter__(self) -> OfflineReader: ...

    def __exit__(self, *exc: object) -> None: ...

    def iter_log(self, after_seq: int = 0) -> Iterator[LogEntry]: ...

    def envelope(self, message_id: str) -> ExportedEnvelope:
        """``NotFound`` if neither box holds ``message_id``."""

    def outbound_rows(self, message_ids: Sequence[str] = ()) -> list[OutboundRow]:
        """Outbox rows (all, or those named), envelopes decrypted."""
