"""A partner node (or an impostor) submitting bad envelopes: each refused with its own status.

Every test ends by submitting a good envelope, proving the node kept serving.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import grpc
import pytest
from exchange_support import (
    CHENGDU,
    COMPLAINT,
    REGISTRATION,
    SUINING,
    TONGLIANG,
    NodePair,
    exchange_stub,
    local_stub,
    node_config,
    peer_channel,
    reason_of,
    record,
    sealed,
    signer_for,
    submit,
)
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from chuanyu.exchange.v1 import envelope_pb2 as epb
from chuanyu.exchange.v1 import exchange_service_pb2 as xpb
from chuanyu.exchange.v1 import exchange_service_pb2_grpc as xgrpc
from chuanyu.exchange.v1 import local_service_pb2 as lpb
from gateway.codec import record_to_proto
from gateway.node import GatewayNode
from gateway.pki import PkiLayout
from gateway.store.sqlite import iter_log_file

pytestmark = pytest.mark.e2e


@pytest.fixture
async def as_suining(
    pair: NodePair, pki: PkiLayout
) -> AsyncIterator[xgrpc.ExchangeServiceAsyncStub]:
    """A raw client on Tongliang's partner port holding Suining's TLS certificate."""
    async with peer_channel(pki, SUINING, pair.tongliang.peer_port) as channel:
        yield exchange_stub(channel)


async def _refused(
    stub: xgrpc.ExchangeServiceAsyncStub, envelope: epb.Envelope
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await submit(stub, envelope)
    return caught.value


async def _still_serving(stub: xgrpc.ExchangeServiceAsyncStub, pki: PkiLayout) -> None:
    receipt = await submit(
        stub, sealed(signer_for(pki, SUINING), record(COMPLAINT, complaint_number="TS-ALIVE"))
    )
    assert receipt.signature.value


def _tamper(data: bytes, needle: bytes) -> bytes:
    index = data.index(needle)
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.mark.parametrize(
    ("case", "code", "reason"),
    [
        ("tampered payload byte", grpc.StatusCode.INVALID_ARGUMENT, "PAYLOAD_DIGEST_MISMATCH"),
        ("tampered header byte", grpc.StatusCode.UNAUTHENTICATED, "SIGNATURE_INVALID"),
        ("garbage header", grpc.StatusCode.INVALID_ARGUMENT, "ENVELOPE_MALFORMED"),
        ("signed by another bureau's key", grpc.StatusCode.PERMISSION_DENIED, "SIGNER_NOT_SENDER"),
        (
            "signing certificate from a foreign CA",
            grpc.StatusCode.UNAUTHENTICATED,
            "CERTIFICATE_UNTRUSTED",
        ),
        ("wrong receiver", grpc.StatusCode.INVALID_ARGUMENT, "WRONG_RECEIVER"),
        ("stale created-at", grpc.StatusCode.FAILED_PRECONDITION, "ENVELOPE_STALE"),
        ("created-at in the future", grpc.StatusCode.FAILED_PRECONDITION, "ENVELOPE_FROM_FUTURE"),
        ("sender is not the TLS peer", grpc.StatusCode.PERMISSION_DENIED, "TLS_PEER_NOT_SENDER"),
        ("invalid record", grpc.StatusCode.INVALID_ARGUMENT, "RECORD_INVALID"),
        (
            "header type differs from payload",
            grpc.StatusCode.INVALID_ARGUMENT,
            "ENVELOPE_MALFORMED",
        ),
        (
            "feedback for a record never sent",
            grpc.StatusCode.FAILED_PRECONDITION,
            "UNKNOWN_CORRELATION",
        ),
    ],
)
async def test_bad_envelope_is_refused_with_its_own_status(
    pair: NodePair,
    pki: PkiLayout,
    foreign_pki: PkiLayout,
    as_suining: xgrpc.ExchangeServiceAsyncStub,
    case: str,
    code: grpc.StatusCode,
    reason: str,
) -> None:
    suining = signer_for(pki, SUINING)
    good = sealed(suining, record(COMPLAINT))
    now = dt.datetime.now(dt.UTC)
    envelope: epb.Envelope
    match case:
        case "tampered payload byte":
            envelope = epb.Envelope()
            envelope.CopyFrom(good)
            envelope.payload = _tamper(good.payload, "空调".encode())
        case "tampered header byte":
            envelope = epb.Envelope()
            envelope.CopyFrom(good)
            envelope.header = _tamper(good.header, b"SUI-TONG")
        case "garbage header":
            envelope = epb.Envelope()
            envelope.CopyFrom(good)
            envelope.header = b"\xff\xff\xff\xff"
        case "signed by another bureau's key":
            # Chengdu's genuine key, but the header claims Suining sent it.
            chengdu = signer_for(pki, CHENGDU)
            impostor = type(chengdu)(
                SUINING, chengdu.suite, chengdu.private_key, chengdu.certificate_der, chengdu.key_id
            )
            envelope = sealed(impostor, record(COMPLAINT))
        case "signing certificate from a foreign CA":
            envelope = sealed(signer_for(foreign_pki, SUINING), record(COMPLAINT))
        case "wrong receiver":
            envelope = sealed(suining, record(COMPLAINT), receiver=CHENGDU)
        case "stale created-at":
            envelope = sealed(suining, record(COMPLAINT), created_at=now - dt.timedelta(hours=2))
        case "created-at in the future":
            envelope = sealed(suining, record(COMPLAINT), created_at=now + dt.timedelta(hours=2))
        case "sender is not the TLS peer":
            chengdu = signer_for(pki, CHENGDU)
            envelope = sealed(chengdu, record(COMPLAINT))
        case "invalid record":
            bad = record_to_proto(record(REGISTRATION))
            bad.business_registration.uscc = "91500151MA60K3C287"
            envelope = sealed(suining, record(REGISTRATION))
            from gateway.envelope import seal_envelope

            header = epb.EnvelopeHeader.FromString(envelope.header)
            envelope = seal_envelope(
                suining,
                message_id=header.message_id,
                receiver=TONGLIANG,
                record_type=record(REGISTRATION).record_type,
                agreement_id=header.agreement_id,
                correlation_id="",
                payload=bad.SerializeToString(),
                created_at=now,
            )
        case "header type differs from payload":
            from gateway.records import RecordType

            envelope = sealed(
                suining, record(COMPLAINT), record_type=RecordType.BUSINESS_REGISTRATION
            )
        case "feedback for a record never sent":
            from exchange_support import feedback_for

            envelope = sealed(
                suining,
                feedback_for(record(COMPLAINT), "complaint_accepted"),
                correlation_id="00000000-0000-4000-8000-000000000000",
            )
        case _:
            raise AssertionError(case)
    error = await _refused(as_suining, envelope)
    assert (error.code(), reason_of(error)) == (code, reason), error.details()
    # The refusal is in the transfer log with its reason.
    rejected = [
        e for e in iter_log_file(pair.tongliang.config.node.database) if e.kind == "rejected"
    ]
    assert rejected and reason in rejected[-1].detail
    await _still_serving(as_suining, pki)


async def test_invalid_record_names_the_field(
    pair: NodePair, pki: PkiLayout, as_suining: xgrpc.ExchangeServiceAsyncStub
) -> None:
    from gateway.envelope import seal_envelope

    bad = record_to_proto(record(COMPLAINT))
    bad.consumer_complaint.amount = "2999.001"
    bad.consumer_complaint.respondent.division = "5109"
    envelope = seal_envelope(
        signer_for(pki, SUINING),
        message_id="6f1c8f5e-7a53-4c39-9d1e-3a1e6f0d2b77",
        receiver=TONGLIANG,
        record_type=record(COMPLAINT).record_type,
        agreement_id="SUI-TONG-CP-2024",
        correlation_id="",
        payload=bad.SerializeToString(),
        created_at=dt.datetime.now(dt.UTC),
    )
    error = await _refused(as_suining, envelope)
    status = rpc_status.from_call(error)
    assert status is not None
    fields = {}
    for detail in status.details:
        request = error_details_pb2.BadRequest()
        if detail.Unpack(request):
            fields = {v.field: v.reason for v in request.field_violations}
    assert fields == {"amount": "decimal_max_places", "respondent.division": "division.format"}


async def test_replay_returns_the_original_receipt_and_creates_nothing(
    pair: NodePair, pki: PkiLayout, as_suining: xgrpc.ExchangeServiceAsyncStub
) -> None:
    envelope = sealed(signer_for(pki, SUINING), record(COMPLAINT))
    first = await submit(as_suining, envelope)
    again = await submit(as_suining, envelope)
    assert again.SerializeToString() == first.SerializeToString()
    rows = await pair.tongliang.store.undelivered_inbound(0, 10)
    assert len(rows) == 1
    kinds = [e.kind for e in iter_log_file(pair.tongliang.config.node.database)]
    assert kinds.count("received") == 1 and kinds.count("duplicate") == 1


async def test_malformed_protobuf_is_invalid_argument(
    pair: NodePair, pki: PkiLayout, as_suining: xgrpc.ExchangeServiceAsyncStub
) -> None:
    async with peer_channel(pki, SUINING, pair.tongliang.peer_port) as channel:
        raw: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/chuanyu.exchange.v1.ExchangeService/Submit"
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await raw(b"\x0a\xff\xff\xff\xff\x0f garbage", timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(caught.value) == "ENVELOPE_MALFORMED"
    await _still_serving(as_suining, pki)


def _error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    return None


async def test_oversize_message_is_refused(pki: PkiLayout, tmp_path: object) -> None:
    from pathlib import Path

    from gateway.node.grpc import HARD_LIMIT_HEADROOM

    assert isinstance(tmp_path, Path)
    limit = 65536
    small = node_config(pki, TONGLIANG, SUINING, tmp_path, exchange={"max_message_bytes": limit})
    async with GatewayNode(small) as node, peer_channel(pki, SUINING, node.peer_port) as channel:
        stub = exchange_stub(channel)
        big = sealed(signer_for(pki, SUINING), record(COMPLAINT))
        big.signer_certificate = big.signer_certificate + b"\0" * 100_000
        size = xpb.SubmitRequest(envelope=big).ByteSize()
        error = await _refused(stub, big)
        # Over the configured limit: refused by the node, with details like any refusal.
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info = _error_info(error)
        assert info is not None
        assert (info.reason, info.domain) == ("MESSAGE_TOO_LARGE", "chuanyu.exchange.v1")
        assert dict(info.metadata) == {"max_message_bytes": str(limit), "message_bytes": str(size)}
        # Past grpc's own limit the request is refused unread, with no details at all.
        huge = sealed(signer_for(pki, SUINING), record(COMPLAINT))
        huge.signer_certificate = huge.signer_certificate + b"\0" * (limit + HARD_LIMIT_HEADROOM)
        bare = await _refused(stub, huge)
        assert bare.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _error_info(bare) is None
        receipt = await submit(stub, sealed(signer_for(pki, SUINING), record(COMPLAINT)))
        assert receipt.body
        assert len(await node.store.undelivered_inbound(0, 10)) == 1
        # The local port holds its callers to the same limit, with the same details.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{node.local_port}") as local:
            message = record_to_proto(record(COMPLAINT))
            message.consumer_complaint.facts = "投诉" * 40_000
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await local_stub(local).Send(lpb.SendRequest(record=message), timeout=10)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason_of(caught.value) == "MESSAGE_TOO_LARGE"


async def test_tls_certificate_from_a_foreign_ca_is_refused(
    pair: NodePair,
    pki: PkiLayout,
    foreign_pki: PkiLayout,
    as_suining: xgrpc.ExchangeServiceAsyncStub,
) -> None:
    # The client trusts our CA (so it gets as far as the handshake) but presents a foreign cert.
    paths = foreign_pki.bureau(SUINING)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca_cert.read_bytes(),
        private_key=paths.tls_key.read_bytes(),
        certificate_chain=paths.tls_cert.read_bytes(),
    )
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{pair.tongliang.peer_port}", credentials
    ) as channel:
        error = await _refused(
            exchange_stub(channel), sealed(signer_for(pki, SUINING), record(COMPLAINT))
        )
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    await _still_serving(as_suining, pki)


async def test_member_of_the_pki_that_is_not_a_partner_is_refused(
    pair: NodePair, pki: PkiLayout, as_suining: xgrpc.ExchangeServiceAsyncStub
) -> None:
    async with peer_channel(pki, CHENGDU, pair.tongliang.peer_port) as channel:
        error = await _refused(
            exchange_stub(channel), sealed(signer_for(pki, CHENGDU), record(COMPLAINT))
        )
    assert (error.code(), reason_of(error)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "PEER_NOT_PARTNER",
    )
    await _still_serving(as_suining, pki)


async def test_bulk_stream_answers_each_envelope(
    pair: NodePair, pki: PkiLayout, as_suining: xgrpc.ExchangeServiceAsyncStub
) -> None:
    suining = signer_for(pki, SUINING)
    envelopes = [
        sealed(suining, record(COMPLAINT, complaint_number=f"TS-BULK-{n}")) for n in range(20)
    ]
    envelopes[7] = sealed(suining, record(COMPLAINT), receiver=CHENGDU)
    call = as_suining.SubmitStream(iter(xpb.SubmitStreamRequest(envelope=e) for e in envelopes))
    results = {r.sequence: r async for r in call}
    assert sorted(results) == list(range(20))
    assert results[7].rejection.reason == "WRONG_RECEIVER"
    assert results[7].rejection.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert all(results[n].HasField("receipt") for n in range(20) if n != 7)
