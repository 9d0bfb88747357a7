"""A third party verifies a captured envelope and receipt with openssl alone (docs/signature.md).

The shell script below is extracted from docs/signature.md itself, so the page and the
test cannot drift apart.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from exchange_support import (
    COMPLAINT,
    SUINING,
    TONGLIANG,
    NodePair,
    record,
    send_local,
    wait_delivered,
)

from chuanyu.exchange.v1 import local_service_pb2_grpc as lgrpc
from gateway.cli import main
from gateway.pki import PkiLayout

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _documented_script() -> str:
    """The shell block under 'Verifying with openssl' that starts at step 1."""
    text = (ROOT / "docs" / "signature.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    script: str = next(b for b in blocks if "openssl pkeyutl -verify" in b)
    return "set -eu\n" + script


async def test_envelope_and_receipt_verify_with_openssl_alone(
    pair: NodePair, pki: PkiLayout, tongliang_local: lgrpc.LocalServiceAsyncStub, tmp_path: Path
) -> None:
    assert shutil.which("openssl"), "the openssl command line is required"
    message_id = await send_local(tongliang_local, record(COMPLAINT))
    await wait_delivered(tongliang_local, message_id)
    captured = tmp_path / "captured"
    assert main(["envelope", "export", "--db", str(pair.tongliang.config.node.database),
                 "--message-id", message_id, "--out", str(captured)]) == 0  # fmt: skip
    shutil.copy(pki.ca_cert, captured / "ca.pem")

    result = subprocess.run(
        ["sh", "-c", _documented_script()],
        cwd=captured,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count("Signature Verified Successfully") == 2, output
    assert "signer.pem: OK" in output and "receipt-signer.pem: OK" in output
    assert f"URI:urn:chuanyu:bureau:{TONGLIANG}" in output
    assert f"URI:urn:chuanyu:bureau:{SUINING}" in output
    assert "receipt names this header" in output and "receipt names this payload" in output

    # One flipped payload bit and openssl refuses the same envelope.
    payload = bytearray((captured / "payload.bin").read_bytes())
    payload[-1] ^= 0x01
    (captured / "payload.bin").write_bytes(bytes(payload))
    tampered = subprocess.run(
        ["sh", "-c", _documented_script()],
        cwd=captured,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tampered.returncode != 0
    assert "Signature Verification Failure" in tampered.stdout + tampered.stderr


async def test_export_from_the_receiving_side_gives_the_same_signed_bytes(
    pair: NodePair, tongliang_local: lgrpc.LocalServiceAsyncStub, tmp_path: Path
) -> None:
    message_id = await send_local(tongliang_local, record(COMPLAINT))
    await wait_delivered(tongliang_local, message_id)
    for node, out in ((pair.tongliang, "sender"), (pair.suining, "receiver")):
        db = str(node.config.node.database)
        assert main(["envelope", "export", "--db", db, "--message-id", message_id,
                     "--out", str(tmp_path / out)]) == 0  # fmt: skip
    for name in ("header.bin", "payload.bin", "signature.bin", "receipt-body.bin"):
        assert (tmp_path / "sender" / name).read_bytes() == (
            tmp_path / "receiver" / name
        ).read_bytes()
