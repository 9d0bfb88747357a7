"""Two real nodes over mutual-TLS gRPC on loopback: every record type, both ways, with feedback."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from exchange_support import (
    COMPLAINT,
    REFERRAL,
    REGISTRATION,
    SUINING,
    TONGLIANG,
    NodePair,
    feedback_for,
    reason_of,
    receive,
    record,
    send_local,
    wait_delivered,
)

from chuanyu.exchange.v1 import envelope_pb2 as epb
from chuanyu.exchange.v1 import local_service_pb2 as lpb
from chuanyu.exchange.v1 import local_service_pb2_grpc as lgrpc
from gateway.codec import record_from_proto
from gateway.envelope import parse_envelope, parse_header, verify_receipt
from gateway.pki import SigningCertificateVerifier, load_certificate
from gateway.records import Record
from gateway.store.sqlite import iter_log_file
from gateway.translog import verify_chain

pytestmark = pytest.mark.e2e


async def _exchange(
    pair: NodePair,
    sender: lgrpc.LocalServiceAsyncStub,
    receiver: lgrpc.LocalServiceAsyncStub,
    sender_bureau: str,
    receiver_bureau: str,
    records: list[Record],
) -> dict[str, Record]:
    sent: dict[str, Record] = {}
    for rec in records:
        sent[await send_local(sender, rec)] = rec
    verifier = SigningCertificateVerifier([load_certificate(pair.tongliang.config.tls.ca)])
    for message_id in sent:
        state = await wait_delivered(sender, message_id)
        assert state.receiver == receiver_bureau
        payload_sha256 = (
            state.receipt.body and epb.ReceiptBody.FromString(state.receipt.body).payload_sha256
        )
        verified = verify_receipt(
            state.receipt,
            issuer=receiver_bureau,
            message_id=message_id,
            payload_sha256=payload_sha256,
            verifier=verifier,
            now=dt.datetime.now(dt.UTC),
        )
        assert verified.body.sender == sender_bureau
    inbound = await receive(receiver, len(sent))
    assert {item.message_id for item in inbound} == set(sent)
    for item in inbound:
        assert item.sender == sender_bureau
        assert record_from_proto(item.record) == sent[item.message_id]
    ack = await receiver.Acknowledge(lpb.AcknowledgeRequest(message_ids=list(sent)))
    assert ack.acknowledged == len(sent)
    return sent


async def test_every_record_type_both_ways_with_feedback(
    pair: NodePair,
    tongliang_local: lgrpc.LocalServiceAsyncStub,
    suining_local: lgrpc.LocalServiceAsyncStub,
) -> None:
    from_tongliang = [
        record(REGISTRATION),
        record(COMPLAINT),
        record(REFERRAL, referral_number="铜市监移〔2026〕3号"),
    ]
    from_suining = [
        record(REGISTRATION, uscc="92510903MA6AB7Q52D", address_division="510903"),
        record(COMPLAINT, complaint_number="TS5109002026112800002"),
        record(REFERRAL),
    ]
    await _exchange(pair, tongliang_local, suining_local, TONGLIANG, SUINING, from_tongliang)
    await _exchange(pair, suining_local, tongliang_local, SUINING, TONGLIANG, from_suining)

    # Feedback flows back to whoever sent the record, correlated to its message id.
    feedback = [
        feedback_for(from_tongliang[1], "complaint_accepted"),
        feedback_for(from_tongliang[2], "referral_filed"),
    ]
    answered = await _exchange(pair, suining_local, tongliang_local, SUINING, TONGLIANG, feedback)
    for message_id in answered:
        row = await pair.suining.store.get_outbound(message_id)
        assert row is not None and row.correlation_id
        original = await pair.tongliang.store.get_outbound(row.correlation_id)
        assert original is not None and original.receiver == SUINING

    # Both transfer logs verify after the whole exchange.
    for node in (pair.tongliang, pair.suining):
        verdict = verify_chain(iter_log_file(node.config.node.database))
        assert verdict.ok, verdict
        assert verdict.entries > 10


async def test_repeated_idempotency_key_sends_once(
    pair: NodePair, tongliang_local: lgrpc.LocalServiceAsyncStub
) -> None:
    from gateway.codec import record_to_proto

    request = lpb.SendRequest(
        record=record_to_proto(record(COMPLAINT)), idempotency_key="TL-batch-7#3"
    )
    first = await tongliang_local.Send(request)
    second = await tongliang_local.Send(request)
    assert not first.duplicate and second.duplicate
    assert first.message_id == second.message_id
    await wait_delivered(tongliang_local, first.message_id)


async def test_feedback_for_unknown_record_is_refused_at_the_sender(
    tongliang_local: lgrpc.LocalServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await send_local(
            tongliang_local,
            feedback_for(record(COMPLAINT, complaint_number="TS-NEVER"), "complaint_accepted"),
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "TS-NEVER" in (caught.value.details() or "")


def _violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            return {v.field: v.reason for v in bad.field_violations}
    return {}


async def test_invalid_record_from_local_system_names_field_and_rule(
    tongliang_local: lgrpc.LocalServiceAsyncStub,
) -> None:
    from gateway.codec import record_to_proto

    message = record_to_proto(record(REGISTRATION))
    message.business_registration.uscc = "91500151MA60K3C287"
    message.business_registration.address_division = "99"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tongliang_local.Send(lpb.SendRequest(record=message))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(caught.value) == {
        "uscc": "uscc.check_char",
        "address_division": "division.format",
    }

    message = record_to_proto(record(REGISTRATION))
    message.business_registration.legal_representative_id_number = "110105194912310021"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tongliang_local.Send(lpb.SendRequest(record=message))
    assert _violations(caught.value) == {"legal_representative_id_number": "resident_id.check_char"}
    # The ID number is personal information: masked in the error.
    details = caught.value.details() or ""
    assert "110105194912310021" not in details
    assert "110105********0021" in details


async def test_outbox_retries_until_the_peer_comes_up(
    pair: NodePair, tongliang_local: lgrpc.LocalServiceAsyncStub
) -> None:
    pair.tongliang.route(SUINING, "127.0.0.1:1")  # nothing listens there
    message_id = await send_local(tongliang_local, record(COMPLAINT))

    async def retried() -> bool:
        row = await pair.tongliang.store.get_outbound(message_id)
        return row is not None and row.attempts >= 2

    from exchange_support import eventually

    await eventually(retried, what="two failed attempts")
    row = await pair.tongliang.store.get_outbound(message_id)
    assert row is not None and "UNAVAILABLE" in row.last_error
    pair.tongliang.route(SUINING, f"127.0.0.1:{pair.suining.peer_port}")
    state = await wait_delivered(tongliang_local, message_id)
    assert state.attempts >= 3
    kinds = [
        e.kind
        for e in iter_log_file(pair.tongliang.config.node.database)
        if e.message_id == message_id
    ]
    assert kinds[0] == "signed" and kinds[-1] == "sent" and "retry_scheduled" in kinds


async def test_backlog_drains_through_the_bulk_stream(
    pair: NodePair,
    tongliang_local: lgrpc.LocalServiceAsyncStub,
    suining_local: lgrpc.LocalServiceAsyncStub,
) -> None:
    pair.tongliang.route(SUINING, "127.0.0.1:1")
    ids = [
        await send_local(
            tongliang_local, record(COMPLAINT, complaint_number=f"TS50015120261127{n:05d}")
        )
        for n in range(300)
    ]
    pair.tongliang.route(SUINING, f"127.0.0.1:{pair.suining.peer_port}")
    for message_id in ids:
        await wait_delivered(tongliang_local, message_id)
    received = await receive(suining_local, 300)
    assert {r.message_id for r in received} == set(ids)
    # Exactly one inbox row per message.
    rows = await pair.suining.store.undelivered_inbound(0, 1000)
    assert len(rows) == 300


async def test_stored_envelope_is_the_signed_bytes(
    pair: NodePair, tongliang_local: lgrpc.LocalServiceAsyncStub
) -> None:
    message_id = await send_local(tongliang_local, record(COMPLAINT))
    await wait_delivered(tongliang_local, message_id)
    sent = await pair.tongliang.store.get_outbound(message_id)
    inbox = await pair.suining.store.undelivered_inbound(0, 10)
    assert sent is not None and len(inbox) == 1
    # The receiver keeps exactly the header and payload bytes the sender signed.
    assert parse_envelope(inbox[0].envelope).header == parse_envelope(sent.envelope).header
    assert parse_envelope(inbox[0].envelope).payload == parse_envelope(sent.envelope).payload
    assert parse_header(parse_envelope(sent.envelope).header).message_id == message_id


async def test_receive_with_an_undefined_record_type_is_invalid_argument(
    tongliang_local: lgrpc.LocalServiceAsyncStub,
) -> None:
    call = tongliang_local.Receive(lpb.ReceiveRequest(record_types=[7]))  # type: ignore[list-item]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(caught.value) == "ENVELOPE_MALFORMED"
