"""A partner's gRPC answers mapped to lifecycle outcomes, in the one place that does it."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from gateway.config import ExchangeSettings, PartnerConfig, RetrySettings
from gateway.node.partner import CallStatus, PartnerClient, classify, is_server_not_partner
from gateway.transfer import (
    DeadlineExceeded,
    Failed,
    OverLimit,
    Refused,
    ServerNotPartner,
    Unreachable,
)

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


def test_an_envelope_over_the_partners_size_limit_is_refused_not_retried() -> None:
    # RESOURCE_EXHAUSTED alone would be retried; this reason says the same bytes never fit.
    status = CallStatus(C.RESOURCE_EXHAUSTED, "5 MiB over 4 MiB", "MESSAGE_TOO_LARGE")
    outcome = classify(status, retry_at=RETRY_AT)
    assert outcome == Refused("RESOURCE_EXHAUSTED", "MESSAGE_TOO_LARGE", "5 MiB over 4 MiB")
    assert isinstance(classify(CallStatus(C.RESOURCE_EXHAUSTED, "busy"), retry_at=RETRY_AT), Failed)


def test_a_stale_envelope_is_a_refusal_a_new_signature_cures() -> None:
    status = CallStatus(C.FAILED_PRECONDITION, "too old", "ENVELOPE_STALE")
    outcome = classify(status, retry_at=RETRY_AT)
    assert isinstance(outcome, Refused) and outcome.may_reseal


@pytest.mark.parametrize("code", [C.UNAVAILABLE, C.CANCELLED])
def test_link_failures_wait_for_the_circuit(code: grpc.StatusCode) -> None:
    outcome = classify(CallStatus(code, "connection refused"), retry_at=RETRY_AT)
    assert outcome == Unreachable(code.name, "connection refused", RETRY_AT)


@pytest.mark.parametrize(
    "message",
    [
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:4: Custom "
        "verification check failed with error: UNAUTHENTICATED: Hostname Verification Check "
        "failed.",
        "Peer name 510900.bureau.chuanyu.internal is not in peer certificate",
    ],
)
def test_a_certificate_for_another_name_is_a_server_not_partner(message: str) -> None:
    status = CallStatus(C.UNAVAILABLE, message)
    assert is_server_not_partner(status)
    assert classify(status, retry_at=RETRY_AT) == ServerNotPartner(message, RETRY_AT)


def test_other_handshake_failures_are_unreachable() -> None:
    message = "ipv4:127.0.0.1:4: Handshake failed: CERTIFICATE_VERIFY_FAILED"
    assert not is_server_not_partner(CallStatus(C.UNAVAILABLE, message))
    # The marks mean a name mismatch only when the link failed.
    assert not is_server_not_partner(CallStatus(C.INTERNAL, "Hostname Verification Check failed"))


async def test_every_partner_channel_verifies_the_bureau_name() -> None:
    client = PartnerClient(
        PartnerConfig(bureau="510900", address="127.0.0.1:1"),
        grpc.local_channel_credentials(),
        exchange=ExchangeSettings(),
        retry=RetrySettings(),
        channel_options=[("grpc.ssl_target_name_override", "localhost"), ("grpc.x", 1)],
    )
    # Whatever the caller asked for, the partner's own name is the one verified.
    assert client._options == [
        ("grpc.x", 1),
        ("grpc.ssl_target_name_override", "510900.bureau.chuanyu.internal"),
    ]
    await client.close()


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
