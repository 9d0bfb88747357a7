"""The one place where gateway errors become gRPC statuses.

Each status carries ``google.rpc.ErrorInfo`` (the stable reason, domain
``chuanyu.exchange.v1``) and, for invalid records, ``google.rpc.BadRequest``
with one field violation per broken rule.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from chuanyu.exchange.v1 import exchange_service_pb2 as xpb
from gateway.adapter import (
    AdapterBroken,
    AdapterNotFound,
    EncodeContextInvalid,
    LocalFileInvalid,
    LocalFormatError,
    RecordNotEncodable,
)
from gateway.agreements import AgreementFileInvalid, AgreementRefused
from gateway.errors import (
    CertificateRejected,
    ConfigInvalid,
    EnvelopeMalformed,
    EnvelopeStale,
    GatewayError,
    GatewayFault,
    IllegalTransition,
    MessageIdReused,
    MessageTooLarge,
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
    TlsServerNotPartner,
    UnknownCorrelation,
    UnknownPeer,
    WrongReceiver,
)
from gateway.retention import AnonymisationFailed
from gateway.vault import VaultError

__all__ = [
    "ERROR_DOMAIN",
    "STATUS_CODES",
    "internal_status",
    "rejection_for",
    "status_code_for",
    "status_for",
]

ERROR_DOMAIN = "chuanyu.exchange.v1"

_C = grpc.StatusCode

# Every gateway error class, roots included (a test walks the subclasses): an error is
# answered with the code of its nearest class here, so none surfaces as INTERNAL.
STATUS_CODES: Mapping[type[GatewayError], grpc.StatusCode] = {
    # Unclassified: not known to be the caller's fault, so ours, and worth a retry.
    GatewayError: _C.UNAVAILABLE,
    PeerError: _C.INVALID_ARGUMENT,
    RecordInvalid: _C.INVALID_ARGUMENT,
    LocalFormatError: _C.INVALID_ARGUMENT,
    LocalFileInvalid: _C.INVALID_ARGUMENT,
    RecordNotEncodable: _C.INVALID_ARGUMENT,
    EnvelopeMalformed: _C.INVALID_ARGUMENT,
    PayloadDigestMismatch: _C.INVALID_ARGUMENT,
    WrongReceiver: _C.INVALID_ARGUMENT,
    UnknownPeer: _C.INVALID_ARGUMENT,
    EncodeContextInvalid: _C.INVALID_ARGUMENT,
    SignatureInvalid: _C.UNAUTHENTICATED,
    CertificateRejected: _C.UNAUTHENTICATED,
    AgreementRefused: _C.PERMISSION_DENIED,
    SenderMismatch: _C.PERMISSION_DENIED,
    PeerNotPartner: _C.PERMISSION_DENIED,
    EnvelopeStale: _C.FAILED_PRECONDITION,
    UnknownCorrelation: _C.FAILED_PRECONDITION,
    IllegalTransition: _C.FAILED_PRECONDITION,
    NotFound: _C.NOT_FOUND,
    MessageIdReused: _C.ALREADY_EXISTS,
    AdapterNotFound: _C.NOT_FOUND,
    GatewayFault: _C.UNAVAILABLE,
    StoreUnavailable: _C.UNAVAILABLE,
    PeerUnavailable: _C.UNAVAILABLE,
    TlsServerNotPartner: _C.UNAVAILABLE,
    Overloaded: _C.RESOURCE_EXHAUSTED,
    MessageTooLarge: _C.RESOURCE_EXHAUSTED,
    # At run time a configuration problem (an expired CRL) is ours and may clear: retry later.
    ConfigInvalid: _C.UNAVAILABLE,
    AgreementFileInvalid: _C.UNAVAILABLE,
    AdapterBroken: _C.UNAVAILABLE,
    # Damaged data or a bug on our side: the caller may retry once it is fixed.
    AnonymisationFailed: _C.UNAVAILABLE,
    VaultError: _C.UNAVAILABLE,
}


def status_code_for(error: GatewayError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        code = STATUS_CODES.get(cls)
        if code is not None:
            return code
    raise AssertionError("GatewayError is in STATUS_CODES")  # pragma: no cover


def _details(error: GatewayError) -> list[AnyProto]:
    details: list[AnyProto] = []
    info = AnyProto()
    metadata: dict[str, str] = {}
    if isinstance(error, MessageTooLarge):
        metadata = {"max_message_bytes": str(error.limit), "message_bytes": str(error.size)}
    info.Pack(
        error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=metadata)
    )
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
