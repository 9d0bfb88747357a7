"""One wrapper per call shape: where requests are parsed and errors become statuses.

Requests arrive as raw bytes and are parsed here, so a malformed message gets
``INVALID_ARGUMENT`` naming the message type instead of grpc's generic
deserialisation failure. Their size is checked here too, against
``[exchange] max_message_bytes``: the server's own receive limit is set a little
higher, so a request just over the limit is refused with ``MESSAGE_TOO_LARGE`` and
its ``ErrorInfo`` like any other refusal, not with grpc's bare status. Every
exception a handler raises becomes a status in :func:`abort_with`, the one place:
a gateway error through the table in :mod:`gateway.node.status`; anything else is
a bug, logged with an incident id and answered ``INTERNAL`` while the node keeps
serving (as grpclib's ``server.py``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from gateway.clock import utc_now
from gateway.errors import EnvelopeMalformed, GatewayError, MessageTooLarge
from gateway.node.status import internal_status, status_for
from gateway.pki import SigningCertificateVerifier, bureau_of_pem

__all__ = [
    "HARD_LIMIT_HEADROOM",
    "Context",
    "abort_with",
    "bidi_stream",
    "parse",
    "server_stream",
    "tls_peer_bureau",
    "unary",
]

_log = logging.getLogger("chuanyu.grpc")
Context = grpc.aio.ServicerContext[Any, Any]
Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


# How far over max_message_bytes the server still reads a request, to refuse it with
# details; beyond it grpc refuses the request itself (RESOURCE_EXHAUSTED, no details).
HARD_LIMIT_HEADROOM = 1024 * 1024


def check_size(data: bytes, max_bytes: int) -> bytes:
    if len(data) > max_bytes:
        raise MessageTooLarge(len(data), max_bytes)
    return data


async def _sized(requests: AsyncIterator[bytes], max_bytes: int) -> AsyncIterator[bytes]:
    async for data in requests:
        yield check_size(data, max_bytes)


def parse(data: bytes, message_type: type[Req]) -> Req:
    message = message_type()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise EnvelopeMalformed(
            f"request is not a valid {message_type.DESCRIPTOR.full_name}: {exc}"
        ) from exc
    return message


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


async def abort_with(context: Context, exc: Exception) -> NoReturn:
    """End the call with the status ``exc`` stands for."""
    if isinstance(exc, GatewayError):
        status = status_for(exc)
    else:
        incident = uuid.uuid4().hex[:12]
        _log.error("incident %s: unexpected error while serving a call", incident, exc_info=exc)
        status = internal_status(incident)
    await context.abort_with_status(status)
    raise AssertionError("abort_with_status returned")  # pragma: no cover


def unary(
    request_type: type[Req],
    handler: Callable[[Req, Context], Awaitable[Resp]],
    *,
    max_bytes: int,
) -> grpc.RpcMethodHandler[Any, Any]:
    """A request, a response."""

    async def call(data: bytes, context: Context) -> Resp:
        try:
            return await handler(parse(check_size(data, max_bytes), request_type), context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await abort_with(context, exc)

    return grpc.unary_unary_rpc_method_handler(
        call, request_deserializer=None, response_serializer=_serialize
    )


def _streaming(
    responses: Callable[[Any, Context], AsyncIterator[Resp]],
) -> Callable[[Any, Context], AsyncIterator[Resp]]:
    async def call(request: Any, context: Context) -> AsyncIterator[Resp]:
        try:
            async for response in responses(request, context):
                yield response
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await abort_with(context, exc)

    return call


def server_stream(
    request_type: type[Req],
    handler: Callable[[Req, Context], AsyncIterator[Resp]],
    *,
    max_bytes: int,
) -> grpc.RpcMethodHandler[Any, Any]:
    """A request, a stream of responses."""
    return grpc.unary_stream_rpc_method_handler(
        _streaming(
            lambda data, context: handler(parse(check_size(data, max_bytes), request_type), context)
        ),
        request_deserializer=None,
        response_serializer=_serialize,
    )


def bidi_stream(
    handler: Callable[[AsyncIterator[bytes], Context], AsyncIterator[Resp]],
    *,
    max_bytes: int,
) -> grpc.RpcMethodHandler[Any, Any]:
    """Streams both ways; requests stay bytes, so the handler answers each bad one.

    A request over the size limit ends the call, as grpc's own limit would.
    """
    return grpc.stream_stream_rpc_method_handler(
        _streaming(lambda requests, context: handler(_sized(requests, max_bytes), context)),
        request_deserializer=None,
        response_serializer=_serialize,
    )


@functools.lru_cache(maxsize=64)
def _bureau_of_pem(pem: bytes) -> str | None:
    return bureau_of_pem(pem)


def tls_peer_bureau(context: Context, verifier: SigningCertificateVerifier) -> str | None:
    """The bureau bound to the caller's TLS client certificate, once the CRL allows it.

    The handshake checked chain and validity; revocation is ours to check (gRPC has no
    CRL support), on every call, so a CRL reload takes effect at once.
    """
    pems = list(context.auth_context().get("x509_pem_cert") or ())
    if not pems:
        return None
    verifier.check_tls_peer(pems[0], now=utc_now())
    return _bureau_of_pem(pems[0])
