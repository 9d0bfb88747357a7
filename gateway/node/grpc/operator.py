"""``OperatorService``: what operators' tools call (dead letters, reconciliation)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import grpc

from chuanyu.exchange.v1 import operator_service_pb2 as opb
from gateway.clock import to_timestamp, utc_now
from gateway.codec import record_type_to_proto, to_datetime
from gateway.node.grpc.calls import Context, unary
from gateway.node.reconcile import Reconciler
from gateway.store.base import OutboundState, Store

__all__ = ["OPERATOR_SERVICE", "operator_handler"]

OPERATOR_SERVICE = "chuanyu.exchange.v1.OperatorService"


def operator_handler(
    store: Store,
    redrive: Callable[[str, str], Awaitable[bool]],
    reconciler: Reconciler,
    default_peer: str,
    *,
    max_message_bytes: int,
) -> grpc.GenericRpcHandler:
    async def list_dead_letters(
        request: opb.ListDeadLettersRequest, context: Context
    ) -> opb.ListDeadLettersResponse:
        rows = await store.outbound_in_state(
            OutboundState.DEAD_LETTERED, min(request.limit or 1000, 10_000)
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
                    created_at=to_timestamp(r.created_at),
                )
                for r in rows
            ]
        )

    async def redrive_dead_letters(
        request: opb.RedriveDeadLettersRequest, context: Context
    ) -> opb.RedriveDeadLettersResponse:
        operator = request.operator or "(unnamed operator)"
        response = opb.RedriveDeadLettersResponse()
        for message_id in request.message_ids:
            if await redrive(message_id, operator):
                response.redriven.append(message_id)
            else:
                response.not_dead_lettered.append(message_id)
        return response

    async def reconcile_period(
        request: opb.ReconcilePeriodRequest, context: Context
    ) -> opb.ReconcilePeriodResponse:
        end = (
            to_datetime(request.period_end, field="period_end")
            if request.HasField("period_end")
            else utc_now()
        )
        start = (
            to_datetime(request.period_start, field="period_start")
            if request.HasField("period_start")
            else end - dt.timedelta(days=1)
        )
        return await reconciler.reconcile(request.peer or default_peer, start, end)

    return grpc.method_handlers_generic_handler(
        OPERATOR_SERVICE,
        {
            "ListDeadLetters": unary(
                opb.ListDeadLettersRequest, list_dead_letters, max_bytes=max_message_bytes
            ),
            "RedriveDeadLetters": unary(
                opb.RedriveDeadLettersRequest, redrive_dead_letters, max_bytes=max_message_bytes
            ),
            "ReconcilePeriod": unary(
                opb.ReconcilePeriodRequest, reconcile_period, max_bytes=max_message_bytes
            ),
        },
    )
