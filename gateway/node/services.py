"""gRPC handlers: thin adapters between the wire and the node's services.

Requests arrive as raw bytes and are parsed here, so a malformed message gets
``INVALID_ARGUMENT`` naming the message type instead of grpc's generic
deserialisation failure. Every gateway error becomes a status in one place
(:mod:`gateway.node.status`); anything else is a bug: logged with an incident
id and answered with ``INTERNAL`` while the node keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from chuanyu.exchange.v1 import exchange_service_pb2 as xpb
from chuanyu.exchange.v1 import local_service_pb2 as lpb
from chuanyu.exchange.v1 import operator_service_pb2 as opb
from chuanyu.exchange.v1 import records_pb2 as rpb
from gateway.codec import (
    record_from_proto,
    record_type_from_proto,
    record_type_to_proto,
    to_datetime,
)
from gateway.envelope import parse_envelope, parse_header
from gateway.errors import EnvelopeMalformed, GatewayError, NotFound
from gateway.node.inbound import InboundService
from gateway.node.limits import PeerLimiter
from gateway.node.outbound import OutboundService
from gateway.node.reconcile import Reconciler
from gateway.node.signal import InboxSignal
from gateway.node.status import internal_status, rejection_for, status_for
from gateway.pki import SigningCertificateVerifier, bureau_of_pem
from gateway.store.base import OutboundState, Store

__all__ = [
    "EXCHANGE_SERVICE",
    "LOCAL_SERVICE",
    "OPERATOR_SERVICE",
    "InboxSignal",
    "exchange_handler",
    "local_handler",
    "operator_handler",
]

EXCHANGE_SERVICE = "chuanyu.exchange.v1.ExchangeService"
LOCAL_SERVICE = "chuanyu.exchange.v1.LocalService"
OPERATOR_SERVICE = "chuanyu.exchange.v1.OperatorService"

_log = logging.getLogger("chuanyu.grpc")
M = TypeVar("M", bound=Message)
R = TypeVar("R")


def _parse(data: bytes, message_type: type[M]) -> M:
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


async def _guarded(context: grpc.aio.ServicerContext[Any, Any], work: Awaitable[R]) -> R:
    try:
        return await work
    except GatewayError as exc:
        status = status_for(exc)
    except (asyncio.CancelledError, grpc.aio.AbortError):
        raise
    except Exception:
        incident = uuid.uuid4().hex[:12]
        _log.exception("incident %s: unexpected error while serving a call", incident)
        status = internal_status(incident)
    await context.abort_with_status(status)
    raise AssertionError("abort_with_status returned")  # pragma: no cover


@functools.lru_cache(maxsize=64)
def _bureau_of_pem(pem: bytes) -> str | None:
    return bureau_of_pem(pem)


def tls_peer_bureau(
    context: grpc.aio.ServicerContext[Any, Any], verifier: SigningCertificateVerifier
) -> str | None:
    """The bureau bound to the caller's TLS client certificate, once the CRL allows it.

    The handshake checked chain and validity; revocation is ours to check (gRPC has no
    CRL support), on every call, so a CRL reload takes effect at once.
    """
    pems = list(context.auth_context().get("x509_pem_cert") or ())
    if not pems:
        return None
    verifier.check_tls_peer(pems[0], now=dt.datetime.now(dt.UTC))
    return _bureau_of_pem(pems[0])


# ---------------------------------------------------------------------------
# Node to node


def exchange_handler(
    inbound: InboundService,
    signal: InboxSignal,
    verifier: SigningCertificateVerifier,
    limiter: PeerLimiter,
    reconciler: Reconciler,
    *,
    stream_window: int,
) -> grpc.GenericRpcHandler:
    async def reconcile(
        request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> xpb.ReconcileResponse:
        async def work() -> xpb.ReconcileResponse:
            peer = tls_peer_bureau(context, verifier)
            limiter.admit(peer or "")
            try:
                parsed = _parse(request, xpb.ReconcileRequest)
                return await reconciler.answer(parsed, tls_peer=peer)
            finally:
                limiter.release(peer or "")

        return await _guarded(context, work())

    async def submit(
        request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> xpb.SubmitResponse:
        async def work() -> xpb.SubmitResponse:
            peer = tls_peer_bureau(context, verifier)
            limiter.admit(peer or "")
            try:
                parsed = _parse(request, xpb.SubmitRequest)
                receipt = await inbound.accept(parsed.envelope, tls_peer=peer)
            finally:
                limiter.release(peer or "")
            signal.notify()
            return xpb.SubmitResponse(receipt=receipt)

        return await _guarded(context, work())

    async def submit_stream(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[xpb.SubmitStreamResponse]:
        try:
            peer = tls_peer_bureau(context, verifier)
        except GatewayError as exc:
            await context.abort_with_status(status_for(exc))
            return
        # A bulk stream is never refused for load: it is slowed, envelope by envelope.
        results: asyncio.Queue[xpb.SubmitStreamResponse | None] = asyncio.Queue()
        window = asyncio.Semaphore(stream_window)

        async def one(sequence: int, data: bytes) -> None:
            message_id = ""
            try:
                request = _parse(data, xpb.SubmitStreamRequest)
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
            except Exception:
                incident = uuid.uuid4().hex[:12]
                _log.exception("incident %s: unexpected error in a bulk stream", incident)
                response = xpb.SubmitStreamResponse(
                    message_id=message_id,
                    sequence=sequence,
                    rejection=xpb.Rejection(
                        code=grpc.StatusCode.INTERNAL.value[0],
                        reason="INTERNAL",
                        message=f"internal error; logged as incident {incident}",
                    ),
                )
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
            "Submit": grpc.unary_unary_rpc_method_handler(
                submit, request_deserializer=None, response_serializer=_serialize
            ),
            "SubmitStream": grpc.stream_stream_rpc_method_handler(
                submit_stream, request_deserializer=None, response_serializer=_serialize
            ),
            "Reconcile": grpc.unary_unary_rpc_method_handler(
                reconcile, request_deserializer=None, response_serializer=_serialize
            ),
        },
    )


# ---------------------------------------------------------------------------
# Local systems


_STATES = {
    OutboundState.PENDING: lpb.MESSAGE_STATE_PENDING,
    OutboundState.DELIVERED: lpb.MESSAGE_STATE_DELIVERED,
    OutboundState.REJECTED: lpb.MESSAGE_STATE_REJECTED,
    OutboundState.DEAD_LETTERED: lpb.MESSAGE_STATE_DEAD_LETTERED,
}


def _timestamp(value: dt.datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(dt.UTC))
    return ts


def local_handler(
    outbound: OutboundService, store: Store, signal: InboxSignal, *, poll_seconds: float = 2.0
) -> grpc.GenericRpcHandler:
    async def send(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> lpb.SendResponse:
        async def work() -> lpb.SendResponse:
            parsed = _parse(request, lpb.SendRequest)
            record = record_from_proto(parsed.record)
            outcome = await outbound.send(
                record,
                receiver=parsed.receiver,
                agreement_id=parsed.agreement_id,
                idempotency_key=parsed.idempotency_key,
            )
            return lpb.SendResponse(
                message_id=outcome.row.message_id,
                receiver=outcome.row.receiver,
                correlation_id=outcome.row.correlation_id,
                duplicate=outcome.duplicate,
            )

        return await _guarded(context, work())

    async def receive(
        request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[lpb.ReceiveResponse]:
        try:
            parsed = _parse(request, lpb.ReceiveRequest)
            types = [record_type_from_proto(t).value for t in parsed.record_types]
        except GatewayError as exc:
            await context.abort_with_status(status_for(exc))
            return
        after = 0
        while True:
            rows = await store.undelivered_inbound(after, 100, types)
            for row in rows:
                after = row.seq
                envelope = parse_envelope(row.envelope)
                record = rpb.Record()
                record.ParseFromString(envelope.payload)
                yield lpb.ReceiveResponse(
                    message_id=row.message_id,
                    sender=row.sender,
                    record_type=record_type_to_proto(row.record_type),
                    correlation_id=row.correlation_id,
                    received_at=_timestamp(row.received_at),
                    record=record,
                )
            if not rows:
                await signal.wait(poll_seconds)

    async def acknowledge(
        request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> lpb.AcknowledgeResponse:
        async def work() -> lpb.AcknowledgeResponse:
            parsed = _parse(request, lpb.AcknowledgeRequest)
            count = await store.acknowledge_inbound(list(parsed.message_ids))
            return lpb.AcknowledgeResponse(acknowledged=count)

        return await _guarded(context, work())

    async def get_message(
        request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> lpb.GetMessageResponse:
        async def work() -> lpb.GetMessageResponse:
            parsed = _parse(request, lpb.GetMessageRequest)
            row = await store.get_outbound(parsed.message_id)
            if row is None:
                raise NotFound(f"no outbound message {parsed.message_id[:64]!r}")
            response = lpb.GetMessageResponse(
                message_id=row.message_id,
                receiver=row.receiver,
                record_type=record_type_to_proto(row.record_type),
                state=_STATES[row.state],
                attempts=row.attempts,
                last_error=row.last_error,
            )
            if row.receipt:
                response.receipt.ParseFromString(row.receipt)
            return response

        return await _guarded(context, work())

    return grpc.method_handlers_generic_handler(
        LOCAL_SERVICE,
        {
            "Send": grpc.unary_unary_rpc_method_handler(
                send, request_deserializer=None, response_serializer=_serialize
            ),
            "Receive": grpc.unary_stream_rpc_method_handler(
                receive, request_deserializer=None, response_serializer=_serialize
            ),
            "Acknowledge": grpc.unary_unary_rpc_method_handler(
                acknowledge, request_deserializer=None, response_serializer=_serialize
            ),
            "GetMessage": grpc.unary_unary_rpc_method_handler(
                get_message, request_deserializer=None, response_serializer=_serialize
            ),
        },
    )


# ---------------------------------------------------------------------------
# Operators' tools


def operator_handler(
    store: Store,
    redrive: Callable[[str, str], Awaitable[bool]],
    reconciler: Reconciler,
    default_peer: str,
) -> grpc.GenericRpcHandler:
    async def list_dead_letters(
        request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> opb.ListDeadLettersResponse:
        async def work() -> opb.ListDeadLettersResponse:
            parsed = _parse(request, opb.ListDeadLettersRequest)
            rows = await store.outbound_in_state(
                OutboundState.DEAD_LETTERED, min(parsed.limit or 1000, 10_000)
            )
            return opb.ListDeadLettersResponse(
                dead_letters=[
                    opb.DeadLetter(
                        message_id=r.message_id,
                        receiver=r.receiver,
                        record_type=record_type_to_proto(r.record_type),
                        record_key=r.record_key,
                        attempts=r.attempts,
                        last_error=r.last_error,
                        created_at=_timestamp(r.created_at),
                    )
                    for r in rows
                ]
            )

        return await _guarded(context, work())

    async def redrive_dead_letters(
        request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> opb.RedriveDeadLettersResponse:
        async def work() -> opb.RedriveDeadLettersResponse:
            parsed = _parse(request, opb.RedriveDeadLettersRequest)
            operator = parsed.operator or "(unnamed operator)"
            response = opb.RedriveDeadLettersResponse()
            for message_id in parsed.message_ids:
                if await redrive(message_id, operator):
                    response.redriven.append(message_id)
                else:
                    response.not_dead_lettered.append(message_id)
            return response

        return await _guarded(context, work())

    async def reconcile_period(
        request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> opb.ReconcilePeriodResponse:
        async def work() -> opb.ReconcilePeriodResponse:
            parsed = _parse(request, opb.ReconcilePeriodRequest)
            end = (
                to_datetime(parsed.period_end, field="period_end")
                if parsed.HasField("period_end")
                else dt.datetime.now(dt.UTC)
            )
            start = (
                to_datetime(parsed.period_start, field="period_start")
                if parsed.HasField("period_start")
                else end - dt.timedelta(days=1)
            )
            return await reconciler.reconcile(parsed.peer or default_peer, start, end)

        return await _guarded(context, work())

    return grpc.method_handlers_generic_handler(
        OPERATOR_SERVICE,
        {
            "ListDeadLetters": grpc.unary_unary_rpc_method_handler(
                list_dead_letters, request_deserializer=None, response_serializer=_serialize
            ),
            "RedriveDeadLetters": grpc.unary_unary_rpc_method_handler(
                redrive_dead_letters, request_deserializer=None, response_serializer=_serialize
            ),
            "ReconcilePeriod": grpc.unary_unary_rpc_method_handler(
                reconcile_period, request_deserializer=None, response_serializer=_serialize
            ),
        },
    )
