"""``ExchangeService``: what partner nodes call, on the mutual-TLS port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from chuanyu.exchange.v1 import exchange_service_pb2 as xpb
from gateway.envelope import parse_header
from gateway.errors import GatewayError
from gateway.node.grpc.calls import Context, bidi_stream, parse, tls_peer_bureau, unary
from gateway.node.inbound import InboundService
from gateway.node.limits import PeerLimiter
from gateway.node.reconcile import Reconciler
from gateway.node.signal import InboxSignal
from gateway.node.status import rejection_for
from gateway.pki import SigningCertificateVerifier

__all__ = ["EXCHANGE_SERVICE", "exchange_handler"]

EXCHANGE_SERVICE = "chuanyu.exchange.v1.ExchangeService"

# What the reader hands the writer: an answer, a bug that ends the call, or the end.
_Result = xpb.SubmitStreamResponse | Exception | None


@dataclass(frozen=True)
class _Exchange:
    inbound: InboundService
    signal: InboxSignal
    verifier: SigningCertificateVerifier
    limiter: PeerLimiter
    reconciler: Reconciler
    stream_window: int

    async def reconcile(
        self, request: xpb.ReconcileRequest, context: Context
    ) -> xpb.ReconcileResponse:
        peer = tls_peer_bureau(context, self.verifier)
        self.limiter.admit(peer or "")
        try:
            return await self.reconciler.answer(request, tls_peer=peer)
        finally:
            self.limiter.release(peer or "")

    async def submit(self, request: xpb.SubmitRequest, context: Context) -> xpb.SubmitResponse:
        peer = tls_peer_bureau(context, self.verifier)
        self.limiter.admit(peer or "")
        try:
            receipt = await self.inbound.accept(request.envelope, tls_peer=peer)
        finally:
            self.limiter.release(peer or "")
        self.signal.notify()
        return xpb.SubmitResponse(receipt=receipt)

    def submit_stream(
        self, requests: AsyncIterator[bytes], context: Context
    ) -> AsyncIterator[xpb.SubmitStreamResponse]:
        peer = tls_peer_bureau(context, self.verifier)
        return _BulkStream(self, peer).answer(requests)


class _BulkStream:
    """One ``SubmitStream`` call: a reader that starts one step per envelope, and a writer
    that sends their answers as they finish, at most ``stream_window`` unsent at a time."""

    def __init__(self, exchange: _Exchange, peer: str | None) -> None:
        self._exchange = exchange
        self._peer = peer
        self._results: asyncio.Queue[_Result] = asyncio.Queue()
        self._window = asyncio.Semaphore(exchange.stream_window)

    async def answer(
        self, requests: AsyncIterator[bytes]
    ) -> AsyncIterator[xpb.SubmitStreamResponse]:
        # An idle stream still holds a task, a queue and HTTP/2 buffers: a peer holds
        # only so many, and each is given back when it ends, however it ends.
        limiter, peer = self._exchange.limiter, self._peer or ""
        limiter.open_stream(peer)
        reader = asyncio.create_task(self._read_all(requests))
        try:
            while (response := await self._results.get()) is not None:
                if isinstance(response, Exception):
                    raise response
                yield response
                # The window bounds answers not yet sent, not only work in progress:
                # a client that writes without reading cannot make us buffer without end.
                self._window.release()
            await reader
        finally:
            limiter.close_stream(peer)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read_all(self, requests: AsyncIterator[bytes]) -> None:
        # A bulk stream is never refused for load: it is slowed, envelope by envelope.
        tasks: set[asyncio.Task[None]] = set()
        try:
            sequence = 0
            async for data in requests:
                await self._window.acquire()
                await self._exchange.limiter.pace(self._peer or "")
                task = asyncio.create_task(self._one(sequence, data))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sequence += 1
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            await self._results.put(None)

    async def _one(self, sequence: int, data: bytes) -> None:
        inbound, signal = self._exchange.inbound, self._exchange.signal
        message_id = ""
        try:
            request = parse(data, xpb.SubmitStreamRequest)
            with contextlib.suppress(GatewayError):
                message_id = parse_header(request.envelope.header).message_id[:64]
            receipt = await inbound.accept(request.envelope, tls_peer=self._peer)
            signal.notify()
            response = xpb.SubmitStreamResponse(
                message_id=message_id, sequence=sequence, receipt=receipt
            )
        except GatewayError as exc:
            response = xpb.SubmitStreamResponse(
                message_id=message_id, sequence=sequence, rejection=rejection_for(exc)
            )
        except Exception as exc:
            # A bug: the call ends with the status every call gets for one.
            await self._results.put(exc)
            return
        await self._results.put(response)


def exchange_handler(
    inbound: InboundService,
    signal: InboxSignal,
    verifier: SigningCertificateVerifier,
    limiter: PeerLimiter,
    reconciler: Reconciler,
    *,
    stream_window: int,
    max_message_bytes: int,
) -> grpc.GenericRpcHandler:
    exchange = _Exchange(inbound, signal, verifier, limiter, reconciler, stream_window)
    return grpc.method_handlers_generic_handler(
        EXCHANGE_SERVICE,
        {
            "Submit": unary(xpb.SubmitRequest, exchange.submit, max_bytes=max_message_bytes),
            "SubmitStream": bidi_stream(exchange.submit_stream, max_bytes=max_message_bytes),
            "Reconcile": unary(
                xpb.ReconcileRequest, exchange.reconcile, max_bytes=max_message_bytes
            ),
        },
    )
