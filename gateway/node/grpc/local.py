"""``LocalService``: what the bureau's own systems call, on the loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from chuanyu.exchange.v1 import local_service_pb2 as lpb
from chuanyu.exchange.v1 import records_pb2 as rpb
from gateway.clock import to_timestamp
from gateway.codec import record_from_proto, record_type_from_proto, record_type_to_proto
from gateway.envelope import parse_envelope
from gateway.errors import GatewayError, NotFound
from gateway.node.grpc.calls import Context, server_stream, unary
from gateway.node.outbound import OutboundService, Refusal, SendOutcome, Submission
from gateway.node.signal import InboxSignal
from gateway.node.status import rejection_for
from gateway.records import record_key
from gateway.store.base import OutboundState, Store

__all__ = ["LOCAL_SERVICE", "local_handler"]

LOCAL_SERVICE = "chuanyu.exchange.v1.LocalService"

_STATES = {
    OutboundState.PENDING: lpb.MESSAGE_STATE_PENDING,
    OutboundState.DELIVERED: lpb.MESSAGE_STATE_DELIVERED,
    OutboundState.REJECTED: lpb.MESSAGE_STATE_REJECTED,
    OutboundState.DEAD_LETTERED: lpb.MESSAGE_STATE_DEAD_LETTERED,
}


def _sent(outcome: SendOutcome) -> lpb.SendResponse:
    return lpb.SendResponse(
        message_id=outcome.row.message_id,
        receiver=outcome.row.receiver,
        correlation_id=outcome.row.correlation_id,
        duplicate=outcome.duplicate,
    )


def _refusal(refusal: Refusal, index: int) -> lpb.RecordRefusal:
    return lpb.RecordRefusal(
        index=index,
        record_key=record_key(refusal.record),
        rejection=rejection_for(refusal.error),
    )


def local_handler(
    outbound: OutboundService,
    store: Store,
    signal: InboxSignal,
    *,
    max_message_bytes: int,
    poll_seconds: float = 2.0,
) -> grpc.GenericRpcHandler:
    async def send(request: lpb.SendRequest, context: Context) -> lpb.SendResponse:
        outcome = await outbound.send(
            record_from_proto(request.record),
            receiver=request.receiver,
            agreement_id=request.agreement_id,
            idempotency_key=request.idempotency_key,
        )
        return _sent(outcome)

    async def send_batch(request: lpb.SendBatchRequest, context: Context) -> lpb.SendBatchResponse:
        positions: list[int] = []
        items: list[Submission] = []
        undecodable: list[lpb.RecordRefusal] = []
        for index, sent in enumerate(request.records):
            try:
                record = record_from_proto(sent.record)
            except GatewayError as exc:
                undecodable.append(lpb.RecordRefusal(index=index, rejection=rejection_for(exc)))
                continue
            positions.append(index)
            items.append(Submission(record, sent.idempotency_key, sent.receiver, sent.agreement_id))
        if undecodable:
            # Nothing is queued; name every other refusal too, so one round fixes the file.
            _, refusals = await outbound.check(items)
            named = undecodable + [_refusal(r, positions[r.position]) for r in refusals]
            return lpb.SendBatchResponse(refusals=sorted(named, key=lambda r: r.index))
        result = await outbound.submit_batch(items)
        return lpb.SendBatchResponse(
            results=[_sent(o) for o in result.outcomes],
            refusals=[_refusal(r, r.position) for r in result.refusals],
        )

    async def receive(
        request: lpb.ReceiveRequest, context: Context
    ) -> AsyncIterator[lpb.ReceiveResponse]:
        types = [record_type_from_proto(t).value for t in request.record_types]
        after = 0
        while True:
            rows = await store.undelivered_inbound(after, 100, types)
            for row in rows:
                after = row.seq
                record = rpb.Record()
                record.ParseFromString(parse_envelope(row.envelope).payload)
                yield lpb.ReceiveResponse(
                    message_id=row.message_id,
                    sender=row.sender,
                    record_type=record_type_to_proto(row.record_type),
                    correlation_id=row.correlation_id,
                    received_at=to_timestamp(row.received_at),
                    record=record,
                )
            if not rows:
                await signal.wait(poll_seconds)

    async def acknowledge(
        request: lpb.AcknowledgeRequest, context: Context
    ) -> lpb.AcknowledgeResponse:
        count = await store.acknowledge_inbound(list(request.message_ids))
        return lpb.AcknowledgeResponse(acknowledged=count)

    async def get_message(
        request: lpb.GetMessageRequest, context: Context
    ) -> lpb.GetMessageResponse:
        row = await store.get_outbound(request.message_id)
        if row is None:
            raise NotFound(f"no outbound message {request.message_id[:64]!r}")
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

    return grpc.method_handlers_generic_handler(
        LOCAL_SERVICE,
        {
            "Send": unary(lpb.SendRequest, send, max_bytes=max_message_bytes),
            "SendBatch": unary(lpb.SendBatchRequest, send_batch, max_bytes=max_message_bytes),
            "Receive": server_stream(lpb.ReceiveRequest, receive, max_bytes=max_message_bytes),
            "Acknowledge": unary(lpb.AcknowledgeRequest, acknowledge, max_bytes=max_message_bytes),
            "GetMessage": unary(lpb.GetMessageRequest, get_message, max_bytes=max_message_bytes),
        },
    )
