"""Agreements at both ends, revoked certificates, the SM2 suite end to end, PI in logs."""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from exchange_support import (
    AGREEMENTS,
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
    send_local,
    signer_for,
    submit,
    wait_delivered,
)

from chuanyu.exchange.v1 import local_service_pb2 as lpb
from gateway.cli import main
from gateway.codec import record_to_proto
from gateway.node import GatewayNode
from gateway.pki import PkiLayout, init_pki, load_certificate, revoke_certificate
from gateway.store.sqlite import iter_log_file
from gateway.translog import verify_chain

pytestmark = pytest.mark.e2e


def _log_details(db: Path, kind: str) -> list[str]:
    return [e.detail for e in iter_log_file(db) if e.kind == kind]


async def test_record_type_outside_the_agreement_fails_at_the_sender_and_at_the_receiver(
    pair: NodePair, pki: PkiLayout
) -> None:
    # At the sender: a complaint named under the market-regulation agreement, which does
    # not cover complaints.
    async with pair.local(pair.tongliang) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await local_stub(channel).Send(
                lpb.SendRequest(
                    record=record_to_proto(record(COMPLAINT)), agreement_id="SUI-TONG-MR-2024"
                )
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(caught.value) == "AGREEMENT_RECORD_TYPE_NOT_ALLOWED"
    sender_log = _log_details(pair.tongliang.config.node.database, "rejected_from_local")
    assert any("AGREEMENT_RECORD_TYPE_NOT_ALLOWED" in d for d in sender_log)

    # Forced past the sender: a raw call carrying a correctly signed envelope.
    async with peer_channel(pki, SUINING, pair.tongliang.peer_port) as channel:
        envelope = sealed(
            signer_for(pki, SUINING), record(COMPLAINT), agreement_id="SUI-TONG-MR-2024"
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await submit(exchange_stub(channel), envelope)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(caught.value) == "AGREEMENT_RECORD_TYPE_NOT_ALLOWED"
    receiver_log = _log_details(pair.tongliang.config.node.database, "rejected")
    assert any("AGREEMENT_RECORD_TYPE_NOT_ALLOWED" in d for d in receiver_log)


async def test_fields_the_agreement_drops_never_leave_the_sender(pair: NodePair) -> None:
    complaint = record(
        COMPLAINT, complainant={**COMPLAINT["complainant"], "id_number": "11010519491231002X"}
    )
    async with pair.local(pair.tongliang) as tl:
        await wait_delivered(local_stub(tl), await send_local(local_stub(tl), complaint))
    rows = await pair.suining.store.undelivered_inbound(0, 10)
    assert len(rows) == 1
    assert b"11010519491231002X" not in rows[0].envelope


@pytest.fixture
def expired_agreements(tmp_path: Path) -> Path:
    """The shipped agreements, with the consumer-protection one ended yesterday."""
    directory = tmp_path / "agreements"
    shutil.copytree(AGREEMENTS, directory)
    path = directory / "SUI-TONG-CP-2024.toml"
    yesterday = dt.date.today() - dt.timedelta(days=1)
    text = re.sub(
        r"(?m)^effective_until = .*$",
        f"effective_until = {yesterday.isoformat()}",
        path.read_text(encoding="utf-8"),
    )
    path.write_text(text, encoding="utf-8")
    return directory


async def test_an_agreement_that_expired_yesterday_is_refused(
    pki: PkiLayout, tmp_path: Path, expired_agreements: Path
) -> None:
    config = node_config(
        pki, TONGLIANG, SUINING, tmp_path, agreements={"directory": str(expired_agreements)}
    )
    async with GatewayNode(config) as node:
        async with peer_channel(pki, SUINING, node.peer_port) as channel:
            envelope = sealed(signer_for(pki, SUINING), record(COMPLAINT))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await submit(exchange_stub(channel), envelope)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert reason_of(caught.value) == "AGREEMENT_NOT_IN_FORCE"
        async with grpc.aio.insecure_channel(f"127.0.0.1:{node.local_port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await send_local(local_stub(channel), record(COMPLAINT))
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # Registrations still cross: their agreement is in force.
        async with peer_channel(pki, SUINING, node.peer_port) as channel:
            assert (
                await submit(
                    exchange_stub(channel), sealed(signer_for(pki, SUINING), record(REGISTRATION))
                )
            ).body


@pytest.fixture
def own_pki(tmp_path: Path) -> PkiLayout:
    """A PKI of this test's own: revoking certificates must not touch the shared one."""
    return init_pki(tmp_path / "pki", [TONGLIANG, SUINING])


async def test_revoked_certificates_are_refused_once_the_crl_is_reloaded(
    own_pki: PkiLayout, tmp_path: Path
) -> None:
    revoke_certificate(
        own_pki, load_certificate(own_pki.bureau(TONGLIANG).tls_cert)
    )  # an unrelated entry
    tls = {"crl": str(own_pki.crl), "crl_reload_seconds": 0.05}
    config = node_config(own_pki, TONGLIANG, SUINING, tmp_path, tls=tls)
    async with (
        GatewayNode(config) as node,
        peer_channel(own_pki, SUINING, node.peer_port) as channel,
    ):
        stub = exchange_stub(channel)
        signer = signer_for(own_pki, SUINING)
        assert (await submit(stub, sealed(signer, record(COMPLAINT, complaint_number="TS-1")))).body

        revoke_certificate(own_pki, load_certificate(own_pki.bureau(SUINING).signing_cert))
        await _until_refused(stub, signer, "CERTIFICATE_REVOKED", grpc.StatusCode.UNAUTHENTICATED)

        revoke_certificate(own_pki, load_certificate(own_pki.bureau(SUINING).tls_cert))
        await _until_refused(stub, signer, "CERTIFICATE_REVOKED", grpc.StatusCode.UNAUTHENTICATED)
        log = _log_details(config.node.database, "rejected")
        assert any("CERTIFICATE_REVOKED" in d for d in log)


async def _until_refused(stub: object, signer: object, reason: str, code: grpc.StatusCode) -> None:
    import asyncio

    for attempt in range(100):
        try:
            await submit(stub, sealed(signer, record(COMPLAINT, complaint_number=f"TS-R{attempt}")))  # type: ignore[arg-type]
        except grpc.aio.AioRpcError as exc:
            assert (exc.code(), reason_of(exc)) == (code, reason), exc.details()
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the revocation never took effect")


@pytest.fixture
async def sm2_pair(tmp_path: Path) -> AsyncIterator[NodePair]:
    pki = init_pki(tmp_path / "sm2-pki", [TONGLIANG, SUINING], signing_suite="sm2-sm3")
    signing = {"suite": "sm2-sm3"}
    tongliang = GatewayNode(node_config(pki, TONGLIANG, SUINING, tmp_path, signing=signing))
    suining = GatewayNode(node_config(pki, SUINING, TONGLIANG, tmp_path, signing=signing))
    async with tongliang, suining:
        tongliang.route(SUINING, f"127.0.0.1:{suining.peer_port}")
        suining.route(TONGLIANG, f"127.0.0.1:{tongliang.peer_port}")
        yield NodePair(tongliang, suining, tmp_path)


async def test_sm2_signed_exchange_verifies_with_an_independent_implementation(
    sm2_pair: NodePair, tmp_path: Path
) -> None:
    async with sm2_pair.local(sm2_pair.tongliang) as channel:
        stub = local_stub(channel)
        message_id = await send_local(stub, record(COMPLAINT))
        state = await wait_delivered(stub, message_id)
    assert state.receipt.signature.suite == "sm2-sm3"
    out = tmp_path / "captured"
    db = str(sm2_pair.tongliang.config.node.database)
    assert (
        main(["envelope", "export", "--db", db, "--message-id", message_id, "--out", str(out)]) == 0
    )
    # The openssl command line (OpenSSL's own SM2) checks both signatures: no gateway code.
    script = """set -eu
printf 'chuanyu.exchange.v1.Envelope\\n' > tbs.bin
openssl dgst -sha256 -binary header.bin >> tbs.bin
openssl dgst -sha256 -binary payload.bin >> tbs.bin
openssl x509 -in signer.pem -noout -pubkey > signer.pub
openssl pkeyutl -verify -pubin -inkey signer.pub -rawin -digest sm3 \\
    -pkeyopt distid:1234567812345678 -in tbs.bin -sigfile signature.bin
printf 'chuanyu.exchange.v1.Receipt\\n' > receipt-tbs.bin
openssl dgst -sha256 -binary receipt-body.bin >> receipt-tbs.bin
openssl x509 -in receipt-signer.pem -noout -pubkey > receipt-signer.pub
openssl pkeyutl -verify -pubin -inkey receipt-signer.pub -rawin -digest sm3 \\
    -pkeyopt distid:1234567812345678 -in receipt-tbs.bin -sigfile receipt-signature.bin
"""
    result = subprocess.run(
        ["sh", "-c", script], cwd=out, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("Signature Verified Successfully") == 2


PERSONAL = ("13800138000", "11010519491231002X", "110105194912310021", "李四")


async def test_no_personal_information_reaches_the_logs(
    pair: NodePair, pki: PkiLayout, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with pair.local(pair.tongliang) as channel:
        stub = local_stub(channel)
        await wait_delivered(stub, await send_local(stub, record(COMPLAINT)))
        bad = record_to_proto(record(REGISTRATION))
        bad.business_registration.legal_representative_id_number = "110105194912310021"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Send(lpb.SendRequest(record=bad))
        assert "110105********0021" in (caught.value.details() or "")
    async with peer_channel(pki, SUINING, pair.tongliang.peer_port) as channel:
        bad_envelope = sealed(signer_for(pki, SUINING), record(COMPLAINT, complaint_number="TS-PI"))
        bad_envelope.payload = bad_envelope.payload.replace("李四".encode(), "李五".encode())
        with pytest.raises(grpc.aio.AioRpcError):
            await submit(exchange_stub(channel), bad_envelope)
    text = caplog.text + "".join(
        e.detail
        for node in (pair.tongliang, pair.suining)
        for e in iter_log_file(node.config.node.database)
    )
    for value in PERSONAL:
        assert value not in text, f"{value!r} appears unmasked"


async def test_stored_envelopes_are_encrypted_at_rest(pair: NodePair) -> None:
    async with pair.local(pair.tongliang) as channel:
        stub = local_stub(channel)
        await wait_delivered(stub, await send_local(stub, record(COMPLAINT)))
    for node in (pair.tongliang, pair.suining):
        database = node.config.node.database
        raw = b"".join(
            p.read_bytes() for p in database.parent.glob(database.name + "*") if p.suffix != ".json"
        )
        for value in ("13800138000", "李四", "空调"):
            assert value.encode() not in raw, f"{value} in clear in {database}"
        key_file = database.with_name(database.name + ".keys.json")
        assert key_file.stat().st_mode & 0o777 == 0o600
    # The node itself reads them back: the partner got the record intact.
    rows = await pair.suining.store.undelivered_inbound(0, 10)
    assert b"13800138000" in rows[0].envelope


async def test_retention_purges_personal_information_and_keeps_the_log_verifiable(
    pair: NodePair,
) -> None:
    async with pair.local(pair.tongliang) as channel:
        stub = local_stub(channel)
        message_id = await send_local(stub, record(COMPLAINT))
        await wait_delivered(stub, message_id)
    # Four years on: past the complaint agreement's 1095 days on both sides.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=4 * 365)
    for node in (pair.tongliang, pair.suining):
        assert await node.retention.run_once(later) == 1
        assert await node.retention.run_once(later) == 0  # nothing left to purge
        db = node.config.node.database
        purges = [e for e in iter_log_file(db) if e.kind == "purged"]
        assert [p.message_id for p in purges] == [message_id]
        assert "complainant.phone" in purges[0].detail and "13800138000" not in purges[0].detail
        assert verify_chain(iter_log_file(db)).ok
    rows = await pair.suining.store.undelivered_inbound(0, 10)
    assert b"13800138000" not in rows[0].envelope and "李四".encode() not in rows[0].envelope
    assert "空调".encode() in rows[0].envelope  # what is not personal stays


async def test_a_repeat_after_the_agreement_expired_still_gets_its_original_receipt(
    pki: PkiLayout, tmp_path: Path, expired_agreements: Path
) -> None:
    envelope = sealed(signer_for(pki, SUINING), record(COMPLAINT))
    async with GatewayNode(node_config(pki, TONGLIANG, SUINING, tmp_path)) as node:
        async with peer_channel(pki, SUINING, node.peer_port) as channel:
            first = await submit(exchange_stub(channel), envelope)
    # The same node, after the complaint agreement has ended: a repeat of what it accepted
    # while the agreement was in force is answered as any repeat is; a new one is refused.
    expired = node_config(
        pki, TONGLIANG, SUINING, tmp_path, agreements={"directory": str(expired_agreements)}
    )
    async with GatewayNode(expired) as node:
        async with peer_channel(pki, SUINING, node.peer_port) as channel:
            again = await submit(exchange_stub(channel), envelope)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await submit(
                    exchange_stub(channel), sealed(signer_for(pki, SUINING), record(COMPLAINT))
                )
        assert reason_of(caught.value) == "AGREEMENT_NOT_IN_FORCE"
        assert len(await node.store.undelivered_inbound(0, 10)) == 1
    assert again.SerializeToString() == first.SerializeToString()
