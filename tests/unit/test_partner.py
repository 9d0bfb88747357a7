"""A partner's gRPC answers mapped to lifecycle outcomes, in the one place that does it."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from gateway.node.partner import CallStatus, classify
from gateway.transfer import DeadlineExceeded, Failed, OverLimit, Refused, Unreachable

RETRY_AT = dt.datetime(2026, 11, 30, 8, 0, 5, tzinfo=dt.UTC)
C = grpc.StatusCode


@pytest.mark.parametrize(
    "code",
    [
        C.INVALID_ARGUMENT,
        C.PERMISSION_DENIED,
        C.UNAUTHENTICATED,
        C.FAILED_PRECONDITION,
        C.NOT_FOUND,
        C.ALREADY_EXISTS,
        C.OUT_OF_RANGE,
        C.UNIMPLEMENTED,
    ],
)
def test_final_codes_are_refusals(code: grpc.StatusCode) -> None:
    outcome = classify(CallStatus(code, "no", "SOME_REASON"), retry_at=RETRY_AT)
    assert outcome == Refused(code.name, "SOME_REASON", "no", may_reseal=False)


def test_a_stale_envelope_is_a_refusal_a_new_signature_cures() -> None:
    status = CallStatus(C.FAILED_PRECONDITION, "too old", "ENVELOPE_STALE")
    outcome = classify(status, retry_at=RETRY_AT)
    assert isinstance(outcome, Refused) and outcome.may_reseal


@pytest.mark.parametrize("code", [C.UNAVAILABLE, C.CANCELLED])
def test_link_failures_wait_for_the_circuit(code: grpc.StatusCode) -> None:
    outcome = classify(CallStatus(code, "connection refused"), retry_at=RETRY_AT)
    assert outcome == Unreachable(code.name, "connection refused", RETRY_AT)


def test_a_deadline_is_its_own_outcome() -> None:
    outcome = classify(CallStatus(C.DEADLINE_EXCEEDED, "10 s"), retry_at=RETRY_AT)
    assert outcome == DeadlineExceeded("10 s", RETRY_AT)


def test_over_the_partners_limits_with_its_retry_delay() -> None:
    status = CallStatus(C.RESOURCE_EXHAUSTED, "slow down", "PEER_OVER_LIMIT", retry_after=1.5)
    outcome = classify(status, retry_at=RETRY_AT)
    assert outcome == OverLimit("RESOURCE_EXHAUSTED", "PEER_OVER_LIMIT", "slow down", 1.5)


@pytest.mark.parametrize("code", [C.RESOURCE_EXHAUSTED, C.INTERNAL, C.UNKNOWN, C.ABORTED])
def test_anything_else_backs_off(code: grpc.StatusCode) -> None:
    outcome = classify(CallStatus(code, "hm"), retry_at=RETRY_AT)
    assert outcome == Failed(code.name, "", "hm")
