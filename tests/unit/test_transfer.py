"""The outbound lifecycle table: every row fed through ``decide``, and pairs not in it."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from gateway.config import RetrySettings
from gateway.errors import IllegalTransition
from gateway.transfer import (
    TRANSITIONS,
    DeadlineExceeded,
    Decision,
    Delivered,
    Failed,
    Move,
    OutboundState,
    Outcome,
    OverLimit,
    Redrive,
    Refused,
    ServerNotPartner,
    Transfer,
    Unreachable,
    backoff_delay,
    decide,
    outcome_kind,
)
from gateway.translog import Direction, EventKind

NOW = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
CREATED = NOW - dt.timedelta(minutes=5)
RETRY = RetrySettings(base_seconds=1.0, cap_seconds=8.0, max_attempts=5)
LINK_BACK = NOW + dt.timedelta(seconds=3)

OUTCOMES: dict[str, Outcome] = {
    "delivered": Delivered(b"receipt", NOW - dt.timedelta(seconds=1), "key-1", b"\x01\x02"),
    "refused_resealable": Refused(
        "FAILED_PRECONDITION", "ENVELOPE_STALE", "too old", may_reseal=True
    ),
    "refused": Refused("PERMISSION_DENIED", "AGREEMENT_NOT_IN_FORCE", "agreement ended"),
    "over_limit": OverLimit("RESOURCE_EXHAUSTED", "PEER_OVER_LIMIT", "slow down", 2.0),
    "unreachable": Unreachable("UNAVAILABLE", "connection refused", LINK_BACK),
    "server_not_partner": ServerNotPartner("Hostname Verification Check failed.", LINK_BACK),
    "deadline": DeadlineExceeded("no answer in 10 s", LINK_BACK),
    "failed": Failed("INTERNAL", "", "incident 42"),
    "redrive": Redrive("ops-zhang"),
}


def _transfer(state: OutboundState = OutboundState.PENDING, attempts: int = 2) -> Transfer:
    return Transfer(
        message_id="m-1",
        peer="510900",
        record_type="consumer_complaint",
        state=state,
        attempts=attempts,
        created_at=CREATED,
        last_error="UNAVAILABLE: connection refused",
    )


def _decide(state: OutboundState, kind: str, attempts: int = 2, rand: float = 0.5) -> Decision:
    return decide(_transfer(state, attempts), OUTCOMES[kind], now=NOW, retry=RETRY, rand=rand)


def test_every_outcome_has_a_column() -> None:
    assert {outcome_kind(o) for o in OUTCOMES.values()} == {k for _, k in TRANSITIONS}
    for kind, outcome in OUTCOMES.items():
        assert outcome_kind(outcome) == kind


def test_delivered() -> None:
    decision = _decide(OutboundState.PENDING, "delivered")
    assert (decision.state, decision.move, decision.verdict) == (
        OutboundState.DELIVERED,
        Move.DELIVER,
        "delivered",
    )
    (event,) = decision.events
    assert (event.kind, event.direction, event.peer, event.message_id) == (
        EventKind.SENT,
        Direction.OUTBOUND,
        "510900",
        "m-1",
    )
    assert event.detail == {
        "receipt_key_id": "key-1",
        "received_at": (NOW - dt.timedelta(seconds=1)).isoformat(),
        "header_sha256": "0102",
    }


def test_refused_but_resealable_goes_again_at_once() -> None:
    decision = _decide(OutboundState.PENDING, "refused_resealable")
    assert (decision.state, decision.move, decision.verdict) == (
        OutboundState.PENDING,
        Move.RESEAL,
        "retry",
    )
    assert decision.next_attempt_at == NOW
    assert decision.error == "FAILED_PRECONDITION: too old [ENVELOPE_STALE]"
    (event,) = decision.events
    assert event.kind is EventKind.RETRY_SCHEDULED
    assert event.detail == {"error": decision.error, "delay_seconds": 0}


def test_resealing_never_spends_the_last_attempt() -> None:
    decision = _decide(OutboundState.PENDING, "refused_resealable", attempts=RETRY.max_attempts)
    assert decision.state is OutboundState.PENDING


def test_refused_is_final() -> None:
    decision = _decide(OutboundState.PENDING, "refused", attempts=0)
    assert (decision.state, decision.verdict) == (OutboundState.REJECTED, "rejected")
    (event,) = decision.events
    assert event.kind is EventKind.REJECTED_BY_PEER
    assert event.detail == {"error": "PERMISSION_DENIED: agreement ended [AGREEMENT_NOT_IN_FORCE]"}


def test_over_limit_comes_back_when_the_partner_said_with_jitter() -> None:
    decision = _decide(OutboundState.PENDING, "over_limit", rand=0.5)
    assert decision.state is OutboundState.PENDING
    assert decision.next_attempt_at == NOW + dt.timedelta(seconds=2.0 * 1.25)
    (event,) = decision.events
    assert event.kind is EventKind.RETRY_SCHEDULED
    assert event.detail["attempt"] == 3 and event.detail["delay_ms"] == 2500


@pytest.mark.parametrize("kind", ["unreachable", "server_not_partner", "deadline"])
def test_a_failed_link_waits_for_the_circuit(kind: str) -> None:
    decision = _decide(OutboundState.PENDING, kind)
    assert (decision.state, decision.move) == (OutboundState.PENDING, Move.RETRY_WHEN_LINK_UP)
    assert decision.next_attempt_at == LINK_BACK
    assert decision.events[0].detail["delay_ms"] == 3000


def test_a_server_of_another_bureau_never_dead_letters_by_attempts() -> None:
    # Nothing was sent and the record is not at fault: only the age clock gives up.
    decision = _decide(OutboundState.PENDING, "server_not_partner", attempts=RETRY.max_attempts)
    assert (decision.state, decision.verdict) == (OutboundState.PENDING, "retry")
    assert decision.error.endswith("[TLS_SERVER_NOT_PARTNER]")
    (event,) = decision.events
    assert event.kind is EventKind.RETRY_SCHEDULED
    assert "TLS_SERVER_NOT_PARTNER" in str(event.detail["error"])


def test_a_circuit_already_closed_means_at_once() -> None:
    late = Unreachable("UNAVAILABLE", "reset", NOW - dt.timedelta(seconds=1))
    decision = decide(_transfer(), late, now=NOW, retry=RETRY)
    assert decision.next_attempt_at == NOW


def test_other_failures_back_off_exponentially() -> None:
    decision = _decide(OutboundState.PENDING, "failed", attempts=2, rand=0.0)
    # attempt 3: ceiling min(8, 1 * 2**2) = 4, equal jitter at 0 -> 2 s
    assert decision.next_attempt_at == NOW + dt.timedelta(seconds=2.0)
    assert decision.error == "INTERNAL: incident 42"


@pytest.mark.parametrize("kind", ["over_limit", "unreachable", "deadline", "failed"])
def test_the_last_attempt_dead_letters(kind: str) -> None:
    decision = _decide(OutboundState.PENDING, kind, attempts=RETRY.max_attempts - 1)
    assert (decision.state, decision.verdict) == (OutboundState.DEAD_LETTERED, "dead_lettered")
    (event,) = decision.events
    assert event.kind is EventKind.DEAD_LETTERED
    assert event.detail["attempts"] == RETRY.max_attempts
    assert event.detail["age_seconds"] == 300


def test_redrive_puts_a_dead_letter_back_due_at_once() -> None:
    decision = _decide(OutboundState.DEAD_LETTERED, "redrive")
    assert (decision.state, decision.move, decision.verdict) == (
        OutboundState.PENDING,
        Move.REDRIVE,
        "redriven",
    )
    assert decision.next_attempt_at == NOW and not decision.counts_attempt
    (event,) = decision.events
    assert event.kind is EventKind.REDRIVEN
    assert event.detail == {
        "operator": "ops-zhang",
        "previous_error": "UNAVAILABLE: connection refused",
    }


def test_every_row_of_the_table_is_decided_as_drawn() -> None:
    for (state, kind), transition in TRANSITIONS.items():
        decision = _decide(state, kind, attempts=0)
        assert decision.state is transition.target, (state, kind)
        assert decision.move is transition.move, (state, kind)
        assert decision.events, (state, kind)


PAIRS_NOT_IN_THE_TABLE = [
    (state, kind)
    for state, kind in itertools.product(OutboundState, OUTCOMES)
    if (state, kind) not in TRANSITIONS
]


@pytest.mark.parametrize(("state", "kind"), PAIRS_NOT_IN_THE_TABLE)
def test_a_pair_not_in_the_table_is_refused(state: OutboundState, kind: str) -> None:
    with pytest.raises(IllegalTransition) as caught:
        _decide(state, kind)
    assert state.value in caught.value.message


def test_only_pending_records_take_attempt_outcomes() -> None:
    assert {s for s, k in TRANSITIONS if k != "redrive"} == {OutboundState.PENDING}
    assert (OutboundState.DELIVERED, "redrive") in PAIRS_NOT_IN_THE_TABLE


@pytest.mark.parametrize(
    ("attempts", "rand", "expected"),
    [(0, 0.0, 0.5), (0, 1.0, 1.0), (3, 0.5, 6.0), (10, 0.0, 4.0), (10, 1.0, 8.0)],
)
def test_backoff_is_capped_exponential_with_equal_jitter(
    attempts: int, rand: float, expected: float
) -> None:
    assert backoff_delay(attempts, RETRY, rand=rand) == pytest.approx(expected)
