"""``ExchangeService``: what partner nodes call, on the mutual-TLS port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

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


def exchange_handler(
    inbound: InboundService,
    signal: InboxSignal,
    verifier: SigningCertificateVerifier,
    limiter: PeerLimiter,
    reconciler: Reconciler,
    *,
    stream_window: int,
) -> grpc.GenericRpcHandler:
    async def reconcile(request: xpb.ReconcileRequest, context: Context) -> xpb.ReconcileResponse:
        peer = tls_peer_bureau(context, verifier)
        limiter.admit(peer or "")
        try:
            return await reconciler.answer(request, tls_peer=peer)
        finally:
            limiter.release(peer or "")

    async def submit(request: xpb.SubmitRequest, context: Context) -> xpb.SubmitResponse:
        peer = tls_peer_bureau(context, verifier)
        limiter.admit(peer or "")
        try:
            receipt = await inbound.accept(request.envelope, tls_peer=peer)
        finally:
            limiter.release(peer or "")
        signal.notify()
        return xpb.SubmitResponse(receipt=receipt)

    async def submit_stream(
        requests: AsyncIterator[bytes], context: Context
    ) -> AsyncIterator[xpb.SubmitStreamResponse]:
        peer = tls_peer_bureau(context, verifier)
        # A bulk stream is never refused for load: it is slowed, envelope by envelope.
        results: asyncio.Queue[xpb.SubmitStreamResponse | Exception | None] = asyncio.Queue()
        window = asyncio.Semaphore(stream_window)

        async def one(sequence: int, data: bytes) -> None:
            message_id = ""
            try:
                request = parse(data, xpb.SubmitStreamRequest)
                with contextlib.suppress(GatewayError):
                    message_id = parse_header(request.envelope.header).message_id[:64]
                receipt = await inbound.accept(request.envelope, tls_peer=peer)
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
                await results.put(exc)
                return
            await results.put(response)

        async def read_all() -> None:
            tasks: set[asyncio.Task[None]] = set()
            try:
                sequence = 0
                async for data in requests:
                    await window.acquire()
                    await limiter.pace(peer or "")
                    task = asyncio.create_task(one(sequence, data))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    sequence += 1
                if tasks:
                    await asyncio.gather(*tasks)
            finally:
                await results.put(None)

        reader = asyncio.create_task(read_all())
        try:
            while (response := await results.get()) is not None:
                if isinstance(response, Exception):
                    raise response
                yield response
                # The window bounds answers not yet sent, not only work in progress:
                # a client that writes without reading cannot make us buffer without end.
                window.release()
            await reader
        finally:
            reader.cancel()

    return grpc.method_handlers_generic_handler(
        EXCHANGE_SERVICE,
        {
            "Submit": unary(xpb.SubmitRequest, submit),
            "SubmitStream": bidi_stream(submit_stream),
            "Reconcile": unary(xpb.ReconcileRequest, reconcile),
        },
    )
