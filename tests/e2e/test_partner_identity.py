"""The sending side checks whom it talks to: a server holding another bureau's
certificate from the same CA gets nothing, on every outbound channel."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from exchange_support import (
    CHENGDU,
    COMPLAINT,
    SUINING,
    TONGLIANG,
    NodePair,
    eventually,
    local_stub,
    node_config,
    record,
    send_local,
    wait_delivered,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chuanyu.exchange.v1 import exchange_service_pb2 as xpb
from chuanyu.exchange.v1 import exchange_service_pb2_grpc as xgrpc
from gateway.errors import ConfigInvalid, TlsServerNotPartner
from gateway.node import GatewayNode
from gateway.pki import PkiLayout, bureau_dns_name, init_pki, load_certificate, load_private_key
from gateway.store.base import OutboundState

pytestmark = pytest.mark.e2e

NOT_PARTNER = "TLS_SERVER_NOT_PARTNER"


@dataclass
class Impostor:
    """A gRPC server holding Chengdu's TLS certificate; it notes every call it gets."""

    port: int
    calls: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class _Exchange(xgrpc.ExchangeServiceServicer):
    def __init__(self, calls: list[str]) -> None:
        self._calls = calls

    async def Submit(self, request: xpb.SubmitRequest, context: Any) -> Any:
        self._calls.append("Submit")
        await context.abort(grpc.StatusCode.UNAVAILABLE, "an impostor keeps what it got")

    async def SubmitStream(self, requests: Any, context: Any) -> AsyncIterator[Any]:
        self._calls.append("SubmitStream")
        async for _ in requests:
            self._calls.append("envelope")
        await context.abort(grpc.StatusCode.UNAVAILABLE, "an impostor keeps what it got")
        yield  # pragma: no cover - makes this an async generator

    async def Reconcile(self, request: xpb.ReconcileRequest, context: Any) -> Any:
        self._calls.append("Reconcile")
        await context.abort(grpc.StatusCode.UNAVAILABLE, "an impostor keeps what it got")


class _Health(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    def __init__(self, calls: list[str]) -> None:
        self._calls = calls

    async def Check(self, request: Any, context: Any) -> health_pb2.HealthCheckResponse:
        self._calls.append("Check")
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
async def impostor(pki: PkiLayout) -> AsyncIterator[Impostor]:
    chengdu = pki.bureau(CHENGDU)
    server = grpc.aio.server()
    credentials = grpc.ssl_server_credentials(
        [(chengdu.tls_key.read_bytes(), chengdu.tls_cert.read_bytes())],
        root_certificates=pki.ca_cert.read_bytes(),
        require_client_auth=True,
    )
    found = Impostor(server.add_secure_port("127.0.0.1:0", credentials))
    xgrpc.add_ExchangeServiceServicer_to_server(_Exchange(found.calls), server)
    health_pb2_grpc.add_HealthServicer_to_server(_Health(found.calls), server)
    await server.start()
    try:
        yield found
    finally:
        await server.stop(None)


@pytest.fixture
async def stubborn(pki: PkiLayout, tmp_path: Path) -> AsyncIterator[NodePair]:
    """Tongliang gives up on a record after two failed attempts; the partner is not routed."""
    retry = {"base_seconds": 0.05, "cap_seconds": 0.1, "max_attempts": 2}
    tongliang = GatewayNode(node_config(pki, TONGLIANG, SUINING, tmp_path, retry=retry))
    suining = GatewayNode(node_config(pki, SUINING, TONGLIANG, tmp_path))
    async with tongliang, suining:
        suining.route(TONGLIANG, f"127.0.0.1:{tongliang.peer_port}")
        yield NodePair(tongliang, suining, tmp_path)


async def _refusals(node: GatewayNode, message_id: str) -> list[dict[str, Any]]:
    entries = await node.store.read_log(0, 1000)
    return [
        json.loads(entry.detail)
        for entry in entries
        if entry.message_id == message_id
        and entry.kind == "retry_scheduled"
        and NOT_PARTNER in entry.detail
    ]


async def test_an_envelope_is_not_sent_to_a_server_of_another_bureau(
    stubborn: NodePair, impostor: Impostor, caplog: pytest.LogCaptureFixture
) -> None:
    pair = stubborn
    caplog.set_level(logging.INFO, logger="chuanyu")
    pair.tongliang.route(SUINING, impostor.address)
    async with pair.local(pair.tongliang) as channel:
        stub = local_stub(channel)
        message_id = await send_local(stub, record(COMPLAINT, complaint_number="TS-IMPOSTOR"))

        async def refused_thrice() -> bool:
            return len(await _refusals(pair.tongliang, message_id)) >= 3

        # Three refusals with at most two attempts allowed: a wrong server spends none.
        await eventually(refused_thrice, what="three TLS_SERVER_NOT_PARTNER refusals")
        assert impostor.calls == []
        row = await pair.tongliang.store.get_outbound(message_id)
        assert row is not None and row.state is OutboundState.PENDING, row
        assert NOT_PARTNER in row.last_error
        health = pair.tongliang.partner_health()[SUINING]
        assert health.reachable is False and health.error.startswith(NOT_PARTNER)
        assert health.next_attempt_at is not None  # the circuit holds the next call back
        logged = [
            r.getMessage()
            for r in caplog.records
            if r.name == "chuanyu.partner" and r.levelno == logging.ERROR
        ]
        assert logged and all(NOT_PARTNER in line for line in logged)
        assert all(impostor.address in line and SUINING in line for line in logged)

        pair.tongliang.route(SUINING, f"127.0.0.1:{pair.suining.peer_port}")
        await wait_delivered(stub, message_id)
    assert impostor.calls == []
    assert [r.message_id for r in await pair.suining.store.undelivered_inbound(0, 10)] == [
        message_id
    ]


async def test_a_backlog_waits_for_the_real_partner(pair: NodePair, impostor: Impostor) -> None:
    pair.tongliang.route(SUINING, impostor.address)
    async with pair.local(pair.tongliang) as channel:
        stub = local_stub(channel)
        ids = [
            await send_local(stub, record(COMPLAINT, complaint_number=f"TS-IMP-{n}"))
            for n in range(5)
        ]

        async def all_refused() -> bool:
            return all([await _refusals(pair.tongliang, message_id) for message_id in ids])

        await eventually(all_refused, what="every record refused", timeout=15)
        assert impostor.calls == []
        pending = await pair.tongliang.store.outbound_in_state(OutboundState.PENDING, 10)
        assert {r.message_id for r in pending} == set(ids)
        pair.tongliang.route(SUINING, f"127.0.0.1:{pair.suining.peer_port}")
        for message_id in ids:
            await wait_delivered(stub, message_id)
    assert impostor.calls == []


async def test_reconciliation_and_the_health_probe_refuse_a_server_of_another_bureau(
    pair: NodePair, impostor: Impostor
) -> None:
    pair.tongliang.route(SUINING, impostor.address)
    end = dt.datetime.now(dt.UTC)
    with pytest.raises(TlsServerNotPartner) as refused:
        await pair.tongliang.reconciler.reconcile(SUINING, end - dt.timedelta(hours=1), end)
    assert refused.value.reason == NOT_PARTNER
    assert impostor.address in refused.value.message
    health = (await pair.tongliang.probe_partners())[SUINING]
    assert health.reachable is False and health.error.startswith(NOT_PARTNER), health
    assert impostor.calls == []
    # The same calls reach the real partner.
    pair.tongliang.route(SUINING, f"127.0.0.1:{pair.suining.peer_port}")
    assert (await pair.tongliang.probe_partners())[SUINING].reachable is True
    await pair.tongliang.reconciler.reconcile(SUINING, end - dt.timedelta(hours=1), end)


def _old_style_tls_certificate(pki: PkiLayout, bureau: str) -> None:
    """Re-issue ``bureau``'s TLS certificate as certificates were before they named
    their bureau in a DNS name: the URI and the host names only."""
    paths = pki.bureau(bureau)
    current = load_certificate(paths.tls_cert)
    san = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    kept = [n for n in san if not (isinstance(n, x509.DNSName) and n.value.endswith(".internal"))]
    ca_key = load_private_key(pki.ca_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(current.subject)
        .issuer_name(current.issuer)
        .public_key(current.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(current.not_valid_before_utc)
        .not_valid_after(current.not_valid_after_utc)
        .add_extension(x509.SubjectAlternativeName(kept), critical=False)
    )
    for extension in current.extensions:
        if not isinstance(extension.value, x509.SubjectAlternativeName):
            builder = builder.add_extension(extension.value, extension.critical)
    old = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    paths.tls_cert.write_bytes(old.public_bytes(serialization.Encoding.PEM))


async def test_a_tls_certificate_without_its_bureau_name_is_refused_at_start_until_reissued(
    tmp_path: Path,
) -> None:
    pki = init_pki(tmp_path / "pki", [TONGLIANG, SUINING])
    _old_style_tls_certificate(pki, TONGLIANG)
    tls_key = pki.bureau(TONGLIANG).tls_key.read_bytes()
    with pytest.raises(ConfigInvalid) as refused:
        GatewayNode(node_config(pki, TONGLIANG, SUINING, tmp_path))
    message = refused.value.message
    assert str(pki.bureau(TONGLIANG).tls_cert) in message
    assert bureau_dns_name(TONGLIANG) in message
    assert f"certs init PKI_DIR --bureau {TONGLIANG}" in message

    # Running init again re-issues it for the same key; the node starts.
    layout = init_pki(tmp_path / "pki", [TONGLIANG, SUINING])
    assert layout.created == (pki.bureau(TONGLIANG).tls_cert,)
    assert pki.bureau(TONGLIANG).tls_key.read_bytes() == tls_key
    names = (
        load_certificate(pki.bureau(TONGLIANG).tls_cert)
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value.get_values_for_type(x509.DNSName)
    )
    assert bureau_dns_name(TONGLIANG) in names and "localhost" in names
    async with GatewayNode(node_config(pki, TONGLIANG, SUINING, tmp_path)):
        pass
