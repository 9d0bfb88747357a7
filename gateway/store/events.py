"""What the store's own operations append to the transfer log, decided once for both engines.

Most events come from the caller with the rows they describe. A few operations
find their rows inside the store's transaction (the dead-letter sweep, the local
system's acknowledgement); the events for those are built here, from the facts
the engine found, so both engines log the same entries. Pure: no I/O.
"""

from __future__ import annotations

from gateway.translog import Direction, EventKind, LogEvent

__all__ = ["MAX_ERROR", "dead_lettered", "delivered_to_local", "error_text"]

# How much of a delivery error the outbox keeps, and how much of it a dead letter logs.
MAX_ERROR = 2000
_LOGGED_ERROR = 500


def error_text(error: str) -> str:
    """The error as the outbox keeps it: cut, and without NUL (PostgreSQL text cannot hold
    one, and a peer's message might carry one)."""
    return error[:MAX_ERROR].replace("\x00", "\ufffd")


def dead_lettered(
    receiver: str, message_id: str, record_type: str, attempts: int, last_error: str
) -> LogEvent:
    """A pending message whose age clock ran past the dead-letter age."""
    return LogEvent(
        EventKind.DEAD_LETTERED,
        Direction.OUTBOUND,
        peer=receiver,
        message_id=message_id,
        record_type=record_type,
        detail={
            "attempts": attempts,
            "error": last_error[:_LOGGED_ERROR] or "never delivered",
            "reason": "older than the dead-letter age",
        },
    )


def delivered_to_local(sender: str, message_id: str, record_type: str) -> LogEvent:
    """The local system took an inbound message."""
    return LogEvent(
        EventKind.DELIVERED_TO_LOCAL,
        Direction.INBOUND,
        peer=sender,
        message_id=message_id,
        record_type=record_type,
    )
