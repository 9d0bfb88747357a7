"""Partners only, on the partner port: one check per call or stream, before any work.

A ``grpc.aio.ServerInterceptor`` sees only the method name and metadata in
``intercept_service``, not the TLS peer; so it wraps the handler it is given, and
the wrapper reads the peer's certificate from the call's auth context when the
call starts, before a request of a stream is read. Every service on the port
goes through it: the exchange, ``grpc.health.v1`` and reflection.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc

from gateway.errors import GatewayError, PeerNotPartner
from gateway.node.grpc.calls import Context, abort_with, tls_peer_bureau
from gateway.node.limits import RejectionLog
from gateway.pki import SigningCertificateVerifier

__all__ = ["PartnersOnly"]

_log = logging.getLogger("chuanyu.grpc")
_Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class PartnersOnly(grpc.aio.ServerInterceptor):
    """Refuse every call whose TLS peer is not a configured partner."""

    def __init__(
        self,
        bureau: str,
        partners: frozenset[str],
        verifier: SigningCertificateVerifier,
        rejections: RejectionLog,
    ) -> None:
        self._bureau = bureau
        self._partners = partners
        self._verifier = verifier
        self._rejections = rejections

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return _guarded(handler, self._admit)

    async def _admit(self, context: Context) -> None:
        peer = ""
        try:
            peer = tls_peer_bureau(context, self._verifier) or ""
            if peer not in self._partners:
                raise PeerNotPartner(
                    f"TLS peer {peer or '(no bureau in certificate)'} is not a partner of "
                    f"bureau {self._bureau}"
                )
        except GatewayError as exc:
            try:
                await self._rejections.refused(peer, exc)
            except GatewayError as failure:
                _log.error("could not log a refused call: %s", failure)
            await abort_with(context, exc)


def _guarded(handler: _Handler, admit: Callable[[Context], Awaitable[None]]) -> _Handler:
    """``handler`` with ``admit`` awaited first, whatever its call shape."""
    if handler.request_streaming and handler.response_streaming:
        behaviour, make = handler.stream_stream, grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        behaviour, make = handler.stream_unary, grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        behaviour, make = handler.unary_stream, grpc.unary_stream_rpc_method_handler
    else:
        behaviour, make = handler.unary_unary, grpc.unary_unary_rpc_method_handler
    assert behaviour is not None
    inner: Callable[[Any, Context], Any] = behaviour  # type: ignore[assignment]

    async def respond(request: Any, context: Context) -> Any:
        await admit(context)
        result = inner(request, context)
        return await result if inspect.isawaitable(result) else result

    async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
        await admit(context)
        results = inner(request, context)
        if hasattr(results, "__aiter__"):
            async for result in results:
                yield result
        else:
            for result in results:
                yield result

    # A streaming handler that writes with context.write is a coroutine: it stays one.
    streams = handler.response_streaming and not inspect.iscoroutinefunction(inner)
    wrapped = stream if streams else respond
    return make(
        wrapped,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
