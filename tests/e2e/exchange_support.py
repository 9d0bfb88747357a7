"""Shared pieces of the end-to-end tests: sample records, configs, raw peer clients."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives import serialization
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from chuanyu.exchange.v1 import envelope_pb2 as epb
from chuanyu.exchange.v1 import exchange_service_pb2 as xpb
from chuanyu.exchange.v1 import exchange_service_pb2_grpc as xgrpc
from chuanyu.exchange.v1 import local_service_pb2 as lpb
from chuanyu.exchange.v1 import local_service_pb2_grpc as lgrpc
from gateway.codec import encode_payload, record_to_proto
from gateway.config import NodeConfig, parse_config
from gateway.conformance.samples import sample_data, sample_feedback
from gateway.envelope import new_message_id, seal_envelope
from gateway.node import GatewayNode
from gateway.pki import PkiLayout, key_id, load_certificate, load_private_key
from gateway.records import Record, RecordType, parse_record
from gateway.signing import Ed25519Suite, Signer

TONGLIANG, SUINING, CHENGDU = "500151", "510900", "510100"
ROOT = Path(__file__).resolve().parents[2]
AGREEMENTS = ROOT / "agreements"
AGREEMENT = "SUI-TONG-MR-2024"  # registrations, referrals and their feedback
COMPLAINT_AGREEMENT = "SUI-TONG-CP-2024"  # consumer complaints and their feedback

# The conformance kit's samples, with the address the end-to-end tests route on.
REGISTRATION: dict[str, Any] = sample_data(
    RecordType.BUSINESS_REGISTRATION, actual_business_address="四川省遂宁市船山区河东新区50号"
)
COMPLAINT: dict[str, Any] = sample_data(RecordType.CONSUMER_COMPLAINT)
REFERRAL: dict[str, Any] = sample_data(RecordType.ENFORCEMENT_REFERRAL)


@dataclass
class NodePair:
    """Tongliang and Suining, started in this event loop and routed to each other."""

    tongliang: GatewayNode
    suining: GatewayNode
    workdir: Path

    def local(self, node: GatewayNode) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(f"127.0.0.1:{node.local_port}")


def feedback_for(original: Record, status: str) -> Record:
    return sample_feedback(original, status)


def record(data: dict[str, Any], **changes: Any) -> Record:
    return parse_record({**data, **changes})


def node_config(
    pki: PkiLayout,
    bureau: str,
    partner: str,
    workdir: Path,
    **sections: dict[str, Any],
) -> NodeConfig:
    paths = pki.bureau(bureau)
    data: dict[str, Any] = {
        "node": {"bureau": bureau, "database": str(workdir / f"{bureau}.db")},
        "tls": {"ca": str(pki.ca_cert), "cert": str(paths.tls_cert), "key": str(paths.tls_key)},
        "signing": {"cert": str(paths.signing_cert), "key": str(paths.signing_key)},
        "listen": {"peer": "127.0.0.1:0", "local": "127.0.0.1:0"},
        # Port 1 refuses connections until the test routes the partner to its real port.
        "agreements": {"directory": str(AGREEMENTS)},
        # No fixed agreement: each record crosses under the agreement in force for its type.
        "partners": [{"bureau": partner, "address": "127.0.0.1:1"}],
        "retry": {"base_seconds": 0.05, "cap_seconds": 0.5},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return parse_config(data, workdir / f"{bureau}.toml")


def signer_for(pki: PkiLayout, bureau: str) -> Signer:
    paths = pki.bureau(bureau)
    cert = load_certificate(paths.signing_cert)
    return Signer(
        bureau=bureau,
        suite=Ed25519Suite(),
        private_key=load_private_key(paths.signing_key),
        certificate_der=cert.public_bytes(serialization.Encoding.DER),
        key_id=key_id(cert),
    )


def agreement_for(rec: Record) -> str:
    """The shipped agreement a record of this type crosses under."""
    complaintish = rec.record_type is RecordType.CONSUMER_COMPLAINT or (
        rec.record_type is RecordType.FEEDBACK
        and getattr(rec, "original_type", None) == "consumer_complaint"
    )
    return COMPLAINT_AGREEMENT if complaintish else AGREEMENT


def sealed(
    signer: Signer,
    rec: Record,
    *,
    receiver: str = TONGLIANG,
    created_at: dt.datetime | None = None,
    correlation_id: str = "",
    record_type: RecordType | None = None,
    agreement_id: str | None = None,
) -> epb.Envelope:
    return seal_envelope(
        signer,
        message_id=new_message_id(),
        receiver=receiver,
        record_type=record_type or RecordType(rec.record_type),
        agreement_id=agreement_id or agreement_for(rec),
        correlation_id=correlation_id,
        payload=encode_payload(rec),
        created_at=created_at or dt.datetime.now(dt.UTC),
    )


def peer_channel(pki: PkiLayout, bureau: str, port: int, **options: int) -> grpc.aio.Channel:
    """A mutual-TLS channel to a node's partner port, presenting ``bureau``'s TLS certificate."""
    paths = pki.bureau(bureau)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca_cert.read_bytes(),
        private_key=paths.tls_key.read_bytes(),
        certificate_chain=paths.tls_cert.read_bytes(),
    )
    return grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials, options=list(options.items()))


def exchange_stub(channel: grpc.aio.Channel) -> xgrpc.ExchangeServiceAsyncStub:
    return xgrpc.ExchangeServiceStub(channel)


def local_stub(channel: grpc.aio.Channel) -> lgrpc.LocalServiceAsyncStub:
    return lgrpc.LocalServiceStub(channel)


async def submit(stub: xgrpc.ExchangeServiceAsyncStub, envelope: epb.Envelope) -> epb.Receipt:
    response = await stub.Submit(xpb.SubmitRequest(envelope=envelope), timeout=10)
    return response.receipt


async def send_local(stub: lgrpc.LocalServiceAsyncStub, rec: Record, **fields: str) -> str:
    response = await stub.Send(lpb.SendRequest(record=record_to_proto(rec), **fields), timeout=10)
    return response.message_id


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 20.0, what: str = "condition"
) -> None:
    """Poll ``check`` until it holds; fail with ``what`` if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def wait_delivered(
    stub: lgrpc.LocalServiceAsyncStub, message_id: str
) -> lpb.GetMessageResponse:
    state = lpb.GetMessageResponse()

    async def delivered() -> bool:
        nonlocal state
        state = await stub.GetMessage(lpb.GetMessageRequest(message_id=message_id), timeout=5)
        return state.state == lpb.MESSAGE_STATE_DELIVERED

    await eventually(delivered, what=f"delivery of {message_id}")
    return state


async def receive(
    stub: lgrpc.LocalServiceAsyncStub, count: int, *, timeout: float = 20.0
) -> list[lpb.ReceiveResponse]:
    """Read ``count`` inbound records from the local receive stream."""
    items: list[lpb.ReceiveResponse] = []
    call = stub.Receive(lpb.ReceiveRequest())

    async def read() -> None:
        async for item in call:
            items.append(item)
            if len(items) == count:
                return

    try:
        await asyncio.wait_for(read(), timeout)
    finally:
        call.cancel()
    return items


def reason_of(error: grpc.aio.AioRpcError) -> str:
    """The ``google.rpc.ErrorInfo.reason`` of a failed call ("" when there is none)."""
    status = rpc_status.from_call(error)
    if status is None:
        return ""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


def bad_request_fields(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """Field → rule of the ``google.rpc.BadRequest`` detail of a failed call."""
    status = rpc_status.from_call(error)
    fields: dict[str, str] = {}
    for detail in status.details if status is not None else ():
        request = error_details_pb2.BadRequest()
        if detail.Unpack(request):
            fields.update({v.field: v.reason for v in request.field_violations})
    return fields
