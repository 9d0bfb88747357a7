"""Gateway errors → gRPC statuses and stream rejections, in exactly one place."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from gateway.errors import (
    CertificateRejected,
    ConfigInvalid,
    EnvelopeMalformed,
    EnvelopeStale,
    FieldViolation,
    GatewayError,
    GatewayFault,
    IllegalTransition,
    NotFound,
    Overloaded,
    PayloadDigestMismatch,
    PeerError,
    PeerNotPartner,
    PeerUnavailable,
    RecordInvalid,
    SenderMismatch,
    SignatureInvalid,
    StoreUnavailable,
    UnknownCorrelation,
    UnknownPeer,
    WrongReceiver,
)
from gateway.node.status import (
    ERROR_DOMAIN,
    internal_status,
    rejection_for,
    status_code_for,
    status_for,
)
from gateway.records import parse_record

CODES: list[tuple[type[GatewayError], grpc.StatusCode, str]] = [
    (EnvelopeMalformed, grpc.StatusCode.INVALID_ARGUMENT, "ENVELOPE_MALFORMED"),
    (PayloadDigestMismatch, grpc.StatusCode.INVALID_ARGUMENT, "PAYLOAD_DIGEST_MISMATCH"),
    (WrongReceiver, grpc.StatusCode.INVALID_ARGUMENT, "WRONG_RECEIVER"),
    (UnknownPeer, grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_PEER"),
    (SignatureInvalid, grpc.StatusCode.UNAUTHENTICATED, "SIGNATURE_INVALID"),
    (CertificateRejected, grpc.StatusCode.UNAUTHENTICATED, "CERTIFICATE_REJECTED"),
    (SenderMismatch, grpc.StatusCode.PERMISSION_DENIED, "SENDER_MISMATCH"),
    (PeerNotPartner, grpc.StatusCode.PERMISSION_DENIED, "PEER_NOT_PARTNER"),
    (EnvelopeStale, grpc.StatusCode.FAILED_PRECONDITION, "ENVELOPE_STALE"),
    (UnknownCorrelation, grpc.StatusCode.FAILED_PRECONDITION, "UNKNOWN_CORRELATION"),
    (NotFound, grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    (StoreUnavailable, grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE"),
    (PeerUnavailable, grpc.StatusCode.UNAVAILABLE, "PEER_UNAVAILABLE"),
    (ConfigInvalid, grpc.StatusCode.UNAVAILABLE, "CONFIG_INVALID"),
    (IllegalTransition, grpc.StatusCode.FAILED_PRECONDITION, "ILLEGAL_TRANSITION"),
    # The roots are mapped too: a gateway error never surfaces as INTERNAL.
    (GatewayError, grpc.StatusCode.UNAVAILABLE, "GATEWAY_ERROR"),
    (PeerError, grpc.StatusCode.INVALID_ARGUMENT, "GATEWAY_ERROR"),
    (GatewayFault, grpc.StatusCode.UNAVAILABLE, "GATEWAY_ERROR"),
]

VIOLATIONS = [
    FieldViolation("respondent.uscc", "uscc.check_char", "GB 32100 check character is 'E'"),
    FieldViolation("complainant.phone", "text.blank", "must not be empty or blank"),
]


def _decode(status: grpc.Status) -> status_pb2.Status:
    (key, value), *rest = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    assert not rest
    decoded = status_pb2.Status()
    decoded.ParseFromString(value)
    return decoded


def _error_info(decoded: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    assert decoded.details[0].Unpack(info)
    return info


@pytest.mark.parametrize(("cls", "code", "reason"), CODES, ids=[c[0].__name__ for c in CODES])
def test_status_code_and_reason(
    cls: type[GatewayError], code: grpc.StatusCode, reason: str
) -> None:
    error = cls("something went wrong")
    assert error.reason == reason
    assert status_code_for(error) is code
    status = status_for(error)
    assert status.code is code
    assert status.details == f"something went wrong [{reason}]"
    decoded = _decode(status)
    assert decoded.code == code.value[0]
    assert decoded.message == status.details
    assert len(decoded.details) == 1
    info = _error_info(decoded)
    assert (info.reason, info.domain) == (reason, ERROR_DOMAIN)


def test_record_invalid_is_invalid_argument() -> None:
    assert status_code_for(RecordInvalid(VIOLATIONS)) is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (SenderMismatch("tls", reason="TLS_PEER_NOT_SENDER"), "TLS_PEER_NOT_SENDER"),
        (EnvelopeStale("future", reason="ENVELOPE_FROM_FUTURE"), "ENVELOPE_FROM_FUTURE"),
        (CertificateRejected("x", reason="CERTIFICATE_EXPIRED"), "CERTIFICATE_EXPIRED"),
    ],
)
def test_specific_reason_travels_in_error_info(error: GatewayError, reason: str) -> None:
    status = status_for(error)
    assert _error_info(_decode(status)).reason == reason
    assert status.details.endswith(f"[{reason}]")
    assert rejection_for(error).reason == reason


def test_record_invalid_carries_bad_request_field_violations() -> None:
    status = status_for(RecordInvalid(VIOLATIONS, context="complaint"))
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    decoded = _decode(status)
    assert len(decoded.details) == 2
    assert _error_info(decoded).reason == "RECORD_INVALID"
    bad = error_details_pb2.BadRequest()
    assert decoded.details[1].Unpack(bad)
    assert [(v.field, v.reason, v.description) for v in bad.field_violations] == [
        ("respondent.uscc", "uscc.check_char", "GB 32100 check character is 'E' [uscc.check_char]"),
        ("complainant.phone", "text.blank", "must not be empty or blank [text.blank]"),
    ]


def test_record_status_never_shows_pi_unmasked() -> None:
    with pytest.raises(RecordInvalid) as caught:
        parse_record(
            {
                "record_type": "feedback",
                "original_number": "TL-1",
                "original_type": "consumer_complaint",
                "status": "complaint_closed",
                "handled_at": "2024-05-22T10:00:00+08:00",
                "officer": "赵六\x00",
            }
        )
    status = status_for(caught.value)
    decoded = _decode(status)
    bad = error_details_pb2.BadRequest()
    decoded.details[1].Unpack(bad)
    assert "赵六" not in status.details
    assert "赵**" in status.details
    assert [v.field for v in bad.field_violations] == ["officer"]
    assert "赵六" not in bad.field_violations[0].description
    assert "赵六".encode() not in status.trailing_metadata[0][1]


def test_internal_status_names_only_the_incident() -> None:
    status = internal_status("inc-42")
    assert status.code is grpc.StatusCode.INTERNAL
    assert "inc-42" in status.details
    decoded = _decode(status)
    assert decoded.code == code_pb2.INTERNAL
    assert list(decoded.details) == []


def test_rejection_mirrors_the_unary_status() -> None:
    error = RecordInvalid(VIOLATIONS, context="complaint")
    rejection = rejection_for(error)
    assert rejection.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert rejection.reason == "RECORD_INVALID"
    assert rejection.message == error.message
    assert [(v.field, v.rule, v.description) for v in rejection.field_violations] == [
        (v.field, v.rule, v.message) for v in VIOLATIONS
    ]


@pytest.mark.parametrize(("cls", "code", "reason"), CODES, ids=[c[0].__name__ for c in CODES])
def test_rejection_for_other_errors(
    cls: type[GatewayError], code: grpc.StatusCode, reason: str
) -> None:
    rejection = rejection_for(cls("nope"))
    assert (rejection.code, rejection.reason, rejection.message) == (code.value[0], reason, "nope")
    assert list(rejection.field_violations) == []


def test_overload_carries_retry_info() -> None:
    status = status_for(Overloaded("bureau 510900 is over 10 calls per second", retry_after=1.25))
    assert status.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    decoded = _decode(status)
    delays = []
    for detail in decoded.details:
        retry = error_details_pb2.RetryInfo()
        if detail.Unpack(retry):
            delays.append(retry.retry_delay.ToMilliseconds())
    assert delays == [1250]
