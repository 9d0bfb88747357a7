"""The outbound transfer lifecycle as a table: what each outcome does to a queued record.

::

    PENDING ──Delivered─────────────────▶ DELIVERED
       │ ├──Refused (may reseal)────────▶ PENDING   re-signed, due at once
       │ ├──Refused─────────────────────▶ REJECTED
       │ ├──OverLimit / Unreachable /
       │ │  DeadlineExceeded / Failed ──▶ PENDING   due later (see below), or
       │ │                              ▶ DEAD_LETTERED once the attempts are spent
       │ ├──ServerNotPartner────────────▶ PENDING   when the circuit allows (no attempt spent)
       │ └──(age clock past the limit: the store's expiry sweep) ──▶ DEAD_LETTERED
    DEAD_LETTERED ──Redrive─────────────▶ PENDING   due at once, attempts and age clock reset

:data:`TRANSITIONS` is the whole machine; :func:`decide` applies one row of it and
returns the new state, the transfer-log events and the next attempt time. A pair
not in the table is refused with :class:`~gateway.errors.IllegalTransition`, as
h2's connection state machine refuses an event in the wrong state.

When a retry is due:

* ``Unreachable`` / ``DeadlineExceeded``: the link failed, not the record; it goes
  again when the partner's circuit lets the next probe through (``retry_at``);
* ``ServerNotPartner``: the server at the partner's address is another bureau; nothing
  was sent, and neither the record nor the partner is at fault, so no attempt is spent:
  the record waits behind the circuit until the route is fixed, or the age limit;
* ``OverLimit``: the partner said when (``google.rpc.RetryInfo``), plus jitter;
* ``Failed``: capped exponential backoff with jitter (:func:`backoff_delay`).

The age limit is not an attempt outcome: a record waiting behind a closed circuit
is never tried, so the store's sweep dead-letters by the age clock, which starts at
creation and restarts at every re-drive.

Pure: no grpc, no asyncio, no store. Callers turn the wire into outcomes
(:mod:`gateway.node.partner`) and the decision into store calls.
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config import RetrySettings
from gateway.errors import IllegalTransition, TlsServerNotPartner
from gateway.translog import Direction, EventKind, LogEvent

__all__ = [
    "TRANSITIONS",
    "DeadlineExceeded",
    "Decision",
    "Delivered",
    "Failed",
    "Move",
    "OutboundState",
    "Outcome",
    "OverLimit",
    "Redrive",
    "Refused",
    "ServerNotPartner",
    "Transfer",
    "Transition",
    "Unreachable",
    "backoff_delay",
    "decide",
    "outbound_event",
    "outcome_kind",
]

_random = secrets.SystemRandom()


class OutboundState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True, slots=True)
class Transfer:
    """The facts about one queued record that a decision needs."""

    message_id: str
    peer: str
    record_type: str
    state: OutboundState
    attempts: int  # attempts made before this outcome
    created_at: dt.datetime
    last_error: str = ""


# -- outcomes ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivered:
    """The partner's receipt arrived and verified."""

    receipt: bytes
    received_at: dt.datetime  # the partner's clock, from the signed receipt
    key_id: str
    header_sha256: bytes


@dataclass(frozen=True, slots=True)
class Refused:
    """The partner answered no; unchanged, it will say no again, unless resealing helps
    (it found the envelope too old)."""

    code: str
    reason: str
    message: str
    may_reseal: bool = False


@dataclass(frozen=True, slots=True)
class OverLimit:
    """The partner is over its call limits and said when to come back."""

    code: str
    reason: str
    message: str
    retry_after: float


@dataclass(frozen=True, slots=True)
class Unreachable:
    """The call never reached an answer (connection refused, reset, cancelled)."""

    code: str
    message: str
    retry_at: dt.datetime  # when the partner's circuit lets the next probe through


@dataclass(frozen=True, slots=True)
class ServerNotPartner:
    """The TLS handshake found a server whose certificate names another bureau."""

    message: str
    retry_at: dt.datetime


@dataclass(frozen=True, slots=True)
class DeadlineExceeded:
    """The call's deadline passed with no answer."""

    message: str
    retry_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Failed:
    """Any other failed attempt: an error nobody classified, a receipt that did not
    verify, no answer for this envelope in a stream."""

    code: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Redrive:
    """An operator puts a dead letter back in the queue."""

    operator: str


Outcome = (
    Delivered
    | Refused
    | OverLimit
    | Unreachable
    | ServerNotPartner
    | DeadlineExceeded
    | Failed
    | Redrive
)


def _error(outcome: Outcome) -> str:
    match outcome:
        case Refused() | OverLimit() | Failed():
            error = f"{outcome.code or 'UNKNOWN'}: {outcome.message}"
            if outcome.reason and f"[{outcome.reason}]" not in error:
                error += f" [{outcome.reason}]"
            return error
        case Unreachable():
            return f"{outcome.code}: {outcome.message}"
        case ServerNotPartner():
            return f"UNAVAILABLE: {outcome.message} [{TlsServerNotPartner.reason}]"
        case DeadlineExceeded():
            return f"DEADLINE_EXCEEDED: {outcome.message}"
        case _:
            return ""


# -- the table -------------------------------------------------------------------


class Move(enum.Enum):
    """What a transition does, beyond setting the new state."""

    DELIVER = "delivered"
    RESEAL = "reseal"  # re-sign and go again at once
    REJECT = "rejected"
    RETRY_WHEN_LINK_UP = "retry_link"
    RETRY_AFTER_PEER_DELAY = "retry_peer_delay"
    RETRY_WITH_BACKOFF = "retry_backoff"
    REDRIVE = "redriven"


@dataclass(frozen=True, slots=True)
class Transition:
    target: OutboundState
    move: Move
    # A retry gives up (dead-letters) once the attempts are spent.
    spends_attempt: bool = False


_P, _D = OutboundState.PENDING, OutboundState.DEAD_LETTERED

TRANSITIONS: Mapping[tuple[OutboundState, str], Transition] = {
    (_P, "delivered"): Transition(OutboundState.DELIVERED, Move.DELIVER),
    (_P, "refused_resealable"): Transition(_P, Move.RESEAL),
    (_P, "refused"): Transition(OutboundState.REJECTED, Move.REJECT),
    (_P, "over_limit"): Transition(_P, Move.RETRY_AFTER_PEER_DELAY, spends_attempt=True),
    (_P, "unreachable"): Transition(_P, Move.RETRY_WHEN_LINK_UP, spends_attempt=True),
    (_P, "server_not_partner"): Transition(_P, Move.RETRY_WHEN_LINK_UP),
    (_P, "deadline"): Transition(_P, Move.RETRY_WHEN_LINK_UP, spends_attempt=True),
    (_P, "failed"): Transition(_P, Move.RETRY_WITH_BACKOFF, spends_attempt=True),
    (_D, "redrive"): Transition(_P, Move.REDRIVE),
}


def outcome_kind(outcome: Outcome) -> str:
    """The outcome's column in :data:`TRANSITIONS`."""
    match outcome:
        case Delivered():
            return "delivered"
        case Refused(may_reseal=True):
            return "refused_resealable"
        case Refused():
            return "refused"
        case OverLimit():
            return "over_limit"
        case Unreachable():
            return "unreachable"
        case ServerNotPartner():
            return "server_not_partner"
        case DeadlineExceeded():
            return "deadline"
        case Failed():
            return "failed"
        case Redrive():
            return "redrive"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to write: the new state, its events, when the record is next due."""

    state: OutboundState
    move: Move
    events: tuple[LogEvent, ...]
    next_attempt_at: dt.datetime
    error: str = ""  # the record's last error after this outcome
    counts_attempt: bool = True  # False for a re-drive: no attempt was made

    @property
    def verdict(self) -> str:
        """The attempt's outcome as hooks and metrics name it."""
        if self.move is Move.DELIVER:
            return "delivered"
        if self.move is Move.REDRIVE:
            return "redriven"
        if self.state is OutboundState.PENDING:
            return "retry"
        return self.state.value


def backoff_delay(attempts: int, retry: RetrySettings, *, rand: float | None = None) -> float:
    """Seconds before attempt ``attempts + 1``: capped exponential with equal jitter."""
    ceiling = min(retry.cap_seconds, retry.base_seconds * 2.0 ** min(attempts, 32))
    r: float = _random.random() if rand is None else rand
    return ceiling / 2 + r * ceiling / 2


def outbound_event(transfer: Transfer, kind: EventKind, **detail: str | int) -> LogEvent:
    return LogEvent(
        kind,
        Direction.OUTBOUND,
        peer=transfer.peer,
        message_id=transfer.message_id,
        record_type=transfer.record_type,
        detail=detail,
    )


def decide(
    transfer: Transfer,
    outcome: Outcome,
    *,
    now: dt.datetime,
    retry: RetrySettings,
    rand: float | None = None,
) -> Decision:
    """Apply the row of :data:`TRANSITIONS` for ``(transfer.state, outcome)``.

    ``rand`` (in [0, 1)) fixes the jitter, for tests; by default it is random.
    """
    kind = outcome_kind(outcome)
    transition = TRANSITIONS.get((transfer.state, kind))
    if transition is None:
        raise IllegalTransition(
            f"message {transfer.message_id} is {transfer.state.value}: "
            f"a {kind.replace('_', ' ')} outcome does not apply"
        )
    error = _error(outcome)
    match transition.move, outcome:
        case Move.DELIVER, Delivered():
            event = outbound_event(
                transfer,
                EventKind.SENT,
                receipt_key_id=outcome.key_id,
                received_at=outcome.received_at.isoformat(),
                header_sha256=outcome.header_sha256.hex(),
            )
            return Decision(transition.target, Move.DELIVER, (event,), now)
        case Move.REDRIVE, Redrive():
            event = outbound_event(
                transfer,
                EventKind.REDRIVEN,
                operator=outcome.operator,
                previous_error=transfer.last_error[:300],
            )
            return Decision(
                transition.target,
                Move.REDRIVE,
                (event,),
                now,
                error=transfer.last_error,
                counts_attempt=False,
            )
        case Move.RESEAL, _:
            event = outbound_event(
                transfer, EventKind.RETRY_SCHEDULED, error=error[:500], delay_seconds=0
            )
            return Decision(transition.target, Move.RESEAL, (event,), now, error)
        case Move.REJECT, _:
            event = outbound_event(transfer, EventKind.REJECTED_BY_PEER, error=error[:500])
            return Decision(transition.target, Move.REJECT, (event,), now, error)
    attempt = transfer.attempts + 1
    if transition.spends_attempt and attempt >= retry.max_attempts:
        event = outbound_event(
            transfer,
            EventKind.DEAD_LETTERED,
            error=error[:500],
            attempts=attempt,
            age_seconds=round((now - transfer.created_at).total_seconds()),
        )
        return Decision(OutboundState.DEAD_LETTERED, transition.move, (event,), now, error)
    delay = _delay(transition.move, outcome, transfer, now=now, retry=retry, rand=rand)
    event = outbound_event(
        transfer,
        EventKind.RETRY_SCHEDULED,
        error=error[:500],
        attempt=attempt,
        delay_ms=round(delay * 1000),
    )
    return Decision(
        transition.target, transition.move, (event,), now + dt.timedelta(seconds=delay), error
    )


def _delay(
    move: Move,
    outcome: Outcome,
    transfer: Transfer,
    *,
    now: dt.datetime,
    retry: RetrySettings,
    rand: float | None,
) -> float:
    match move, outcome:
        case Move.RETRY_WHEN_LINK_UP, Unreachable() | ServerNotPartner() | DeadlineExceeded():
            return max(0.0, (outcome.retry_at - now).total_seconds())
        case Move.RETRY_AFTER_PEER_DELAY, OverLimit():
            r: float = _random.random() if rand is None else rand
            return outcome.retry_after * (1 + r / 2)
    return backoff_delay(transfer.attempts, retry, rand=rand)
