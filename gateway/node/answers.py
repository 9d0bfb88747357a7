"""What a partner's answer means: gRPC statuses become outcomes of the transfer table.

:func:`classify` is the one place where a partner's status (a unary call's
``AioRpcError``, or a rejection inside a bulk stream, both as a :class:`CallStatus`)
becomes an outcome of :mod:`gateway.transfer`, as httpx maps its transport's
exceptions at the edge. Pure but for grpc's status codes: no channel, no I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from chuanyu.exchange.v1 import envelope_pb2 as epb
from gateway.errors import TlsServerNotPartner
from gateway.transfer import (
    DeadlineExceeded,
    Failed,
    OverLimit,
    Refused,
    ServerNotPartner,
    Unreachable,
)

__all__ = [
    "TRANSPORT_CODES",
    "Answer",
    "CallStatus",
    "classify",
    "code_named",
    "from_error",
    "is_server_not_partner",
    "status_details",
]

# A peer answering with one of these will answer the same way next time.
_FINAL_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
# Refusals that a fresh signature cures.
_RESEALABLE_REASONS = frozenset({"ENVELOPE_STALE"})
# Refusals whose status code alone would mean "try again later", but whose reason will not
# change for the same envelope: sending it again cannot help.
_FINAL_REASONS = frozenset({"MESSAGE_TOO_LARGE"})
# The peer never answered: nothing is known about the envelope, only about the link.
TRANSPORT_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)
# How grpc core reports a server certificate that does not carry the name the channel
# verifies (the wording of current releases, and of older ones).
_NAME_MISMATCH_MARKS = ("Hostname Verification Check failed", "is not in peer certificate")
NOT_PARTNER = TlsServerNotPartner.reason

Answer = (
    epb.Receipt | Refused | OverLimit | Unreachable | ServerNotPartner | DeadlineExceeded | Failed
)


@dataclass(frozen=True, slots=True)
class CallStatus:
    """A gRPC status as a partner sent it, before it means anything."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    retry_after: float | None = None  # google.rpc.RetryInfo, if the partner sent one


def status_details(metadata: Any) -> tuple[str, float | None]:
    """The ``ErrorInfo`` reason and ``RetryInfo`` delay a gateway put into its status."""
    reason, retry_after = "", None
    for key, value in metadata or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except DecodeError:
            break
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            retry = error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                reason = str(info.reason)
            elif detail.Unpack(retry):
                retry_after = retry.retry_delay.ToMilliseconds() / 1000
    return reason, retry_after


def from_error(exc: grpc.aio.AioRpcError) -> CallStatus:
    reason, retry_after = status_details(exc.trailing_metadata())
    return CallStatus(exc.code(), exc.details() or "", reason, retry_after)


def code_named(value: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN


def is_server_not_partner(status: CallStatus) -> bool:
    """Whether the handshake refused the server's certificate for its name: the
    server at the partner's address is not the partner bureau."""
    return status.code is grpc.StatusCode.UNAVAILABLE and any(
        mark in status.message for mark in _NAME_MISMATCH_MARKS
    )


def classify(status: CallStatus, *, retry_at: dt.datetime) -> Answer:
    """What a partner's status means for the envelope it answers; ``retry_at`` is when
    the circuit lets the next call through (for failures of the link)."""
    name = status.code.name
    if is_server_not_partner(status):
        return ServerNotPartner(status.message, retry_at)
    if status.reason in _RESEALABLE_REASONS:
        return Refused(name, status.reason, status.message, may_reseal=True)
    if status.code in _FINAL_CODES or status.reason in _FINAL_REASONS:
        return Refused(name, status.reason, status.message)
    if status.code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(status.message, retry_at)
    if status.code in TRANSPORT_CODES:
        return Unreachable(name, status.message, retry_at)
    if status.retry_after is not None:
        return OverLimit(name, status.reason, status.message, status.retry_after)
    return Failed(name, status.reason, status.message)
