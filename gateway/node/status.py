"""The one place where gateway errors become gRPC statuses.

Each status carries ``google.rpc.ErrorInfo`` (the stable reason, domain
``chuanyu.exchange.v1``) and, for invalid records, ``google.rpc.BadRequest``
with one field violation per broken rule.
"""

from __future__ import annotations

import grpc
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from chuanyu.exchange.v1 import exchange_service_pb2 as xpb
from gateway.adapter import EncodeContextInvalid
from gateway.agreements import AgreementRefused
from gateway.errors import (
    CertificateRejected,
    ConfigInvalid,
    EnvelopeMalformed,
    EnvelopeStale,
    GatewayError,
    NotFound,
    Overloaded,
    PayloadDigestMismatch,
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

__all__ = ["ERROR_DOMAIN", "internal_status", "rejection_for", "status_code_for", "status_for"]

ERROR_DOMAIN = "chuanyu.exchange.v1"

_CODES: tuple[tuple[type[GatewayError], grpc.StatusCode], ...] = (
    (AgreementRefused, grpc.StatusCode.PERMISSION_DENIED),
    (RecordInvalid, grpc.StatusCode.INVALID_ARGUMENT),
    (EnvelopeMalformed, grpc.StatusCode.INVALID_ARGUMENT),
    (PayloadDigestMismatch, grpc.StatusCode.INVALID_ARGUMENT),
    (WrongReceiver, grpc.StatusCode.INVALID_ARGUMENT),
    (SignatureInvalid, grpc.StatusCode.UNAUTHENTICATED),
    (CertificateRejected, grpc.StatusCode.UNAUTHENTICATED),
    (SenderMismatch, grpc.StatusCode.PERMISSION_DENIED),
    (PeerNotPartner, grpc.StatusCode.PERMISSION_DENIED),
    (EnvelopeStale, grpc.StatusCode.FAILED_PRECONDITION),
    (UnknownCorrelation, grpc.StatusCode.FAILED_PRECONDITION),
    (UnknownPeer, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (StoreUnavailable, grpc.StatusCode.UNAVAILABLE),
    (PeerUnavailable, grpc.StatusCode.UNAVAILABLE),
    (Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    # At run time a configuration problem (an expired CRL) is ours and may clear: retry later.
    (ConfigInvalid, grpc.StatusCode.UNAVAILABLE),
    (EncodeContextInvalid, grpc.StatusCode.INVALID_ARGUMENT),
)


def status_code_for(error: GatewayError) -> grpc.StatusCode:
    for cls, code in _CODES:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.INTERNAL


def _details(error: GatewayError) -> list[AnyProto]:
    details: list[AnyProto] = []
    info = AnyProto()
    info.Pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN))
    details.append(info)
    if isinstance(error, Overloaded):
        retry = AnyProto()
        delay = Duration()
        delay.FromMilliseconds(max(1, round(error.retry_after * 1000)))
        retry.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        details.append(retry)
    if isinstance(error, RecordInvalid):
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=f"{v.message} [{v.rule}]", reason=v.rule
                )
                for v in error.violations
            ]
        )
        packed = AnyProto()
        packed.Pack(bad)
        details.append(packed)
    return details


def status_for(error: GatewayError) -> grpc.Status:
    code = status_code_for(error)
    status = status_pb2.Status(
        code=code.value[0], message=f"{error.message} [{error.reason}]", details=_details(error)
    )
    converted: grpc.Status = rpc_status.to_status(status)
    return converted


def internal_status(incident: str) -> grpc.Status:
    converted: grpc.Status = rpc_status.to_status(
        status_pb2.Status(
            code=code_pb2.INTERNAL,
            message=f"internal error; the node logged it as incident {incident}",
        )
    )
    return converted


def rejection_for(error: GatewayError) -> xpb.Rejection:
    """The bulk-stream form of the same status."""
    return xpb.Rejection(
        code=status_code_for(error).value[0],
        reason=error.reason,
        message=error.message,
        field_violations=[
            xpb.FieldViolation(field=v.field, rule=v.rule, description=v.message)
            for v in (error.violations if isinstance(error, RecordInvalid) else ())
        ],
    )
