"""Helpers for the hostile-input suite and the fuzzers: forged envelopes, status details,
CLI runs, a revocation list, expired agreements, and the known-bug signature.

Shared fixtures and sample records stay in ``exchange_support`` (not edited here).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import re
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
from exchange_support import AGREEMENTS, SUINING, bad_request_fields, reason_of

from chuanyu.exchange.v1 import envelope_pb2 as epb
from chuanyu.exchange.v1 import exchange_service_pb2 as xpb
from gateway.agreements import BEIJING
from gateway.cli import main
from gateway.pki import PkiLayout, init_pki, load_certificate, revoke_certificate
from gateway.signing import ENVELOPE_LABEL, Signer, sha256

__all__ = [
    "PI_TOKENS",
    "CliRun",
    "RevocationSetup",
    "bad_request_fields",
    "expired_agreements",
    "forge",
    "raw_submit",
    "reason_of",
    "revocation_setup",
    "run_cli",
    "run_main",
    "submit_request_bytes",
    "with_header",
]

# Personal information carried by the hostile records below (and by the shared samples).
# None of these may appear unmasked in an error, a log line or the transfer log.
PI_TOKENS = ("李四", "13800138000", "11010519491231002X", "510903199003071234")


def forge(
    signer: Signer,
    header: bytes,
    payload: bytes,
    *,
    suite: str | None = None,
    key_id: str | None = None,
    certificate_der: bytes | None = None,
) -> epb.Envelope:
    """An envelope around exactly these header and payload bytes, genuinely signed by
    ``signer`` — what a partner holding a valid key (or a compromised one) can send."""
    return epb.Envelope(
        header=header,
        payload=payload,
        signature=epb.Signature(
            suite=signer.suite.name if suite is None else suite,
            key_id=signer.key_id if key_id is None else key_id,
            value=signer.sign(ENVELOPE_LABEL, header, payload),
        ),
        signer_certificate=signer.certificate_der if certificate_der is None else certificate_der,
    )


def with_header(
    signer: Signer, envelope: epb.Envelope, *, payload: bytes | None = None, **changes: object
) -> epb.Envelope:
    """``envelope`` with header fields changed (and the payload digest kept right), re-signed."""
    header = epb.EnvelopeHeader.FromString(envelope.header)
    new_payload = envelope.payload if payload is None else payload
    header.payload_sha256 = sha256(new_payload)
    for name, value in changes.items():
        if name == "created_at":
            assert isinstance(value, tuple)
            header.created_at.seconds, header.created_at.nanos = value
        else:
            setattr(header, name, value)
    return forge(signer, header.SerializeToString(), new_payload)


async def raw_submit(channel: grpc.aio.Channel, data: bytes) -> bytes:
    """Call Submit with raw request bytes (no client-side serialisation)."""
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        "/chuanyu.exchange.v1.ExchangeService/Submit"
    )
    response: bytes = await call(data, timeout=10)
    return response


def submit_request_bytes(envelope: epb.Envelope) -> bytes:
    return xpb.SubmitRequest(envelope=envelope).SerializeToString()


@dataclass(frozen=True)
class CliRun:
    returncode: int
    stdout: str
    stderr: str


async def run_cli(*args: str | Path, timeout: float = 30.0) -> CliRun:
    """Run ``chuanyu-gateway ARGS`` in a child process (``python -m gateway``)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *(str(a) for a in args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"chuanyu-gateway {args} still running after {timeout} s") from None
    assert process.returncode is not None
    return CliRun(
        process.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    )


def run_main(*args: str | Path) -> CliRun:
    """``chuanyu-gateway ARGS`` in this process (what the console script runs), output
    captured. Only for commands that leave global state alone (``convert``, not ``serve``,
    which configures logging)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        returncode = main([str(a) for a in args])
    return CliRun(returncode, out.getvalue(), err.getvalue())


@dataclass(frozen=True)
class RevocationSetup:
    """Spare Suining certificates from the session CA, revoked in ``crl``.

    The session PKI directory is left untouched (its ``crl.pem`` is not written): the CRL
    lives in a directory of its own, signed by the same CA, so only nodes configured with
    ``tls.crl = crl`` see the revocations.
    """

    crl: Path
    spare: PkiLayout  # Suining's revoked TLS and signing certificates (same CA)


def revocation_setup(pki: PkiLayout, directory: Path) -> RevocationSetup:
    spare_dir = directory / "spare"
    spare_dir.mkdir(parents=True)
    shutil.copy2(pki.ca_cert, spare_dir / "ca.pem")
    shutil.copy2(pki.ca_key, spare_dir / "ca.key")
    spare = init_pki(spare_dir, [SUINING])
    crl_layout = PkiLayout(directory=directory / "crl", ca_cert=pki.ca_cert, ca_key=pki.ca_key)
    for path in (spare.bureau(SUINING).tls_cert, spare.bureau(SUINING).signing_cert):
        revoke_certificate(crl_layout, load_certificate(path))
    return RevocationSetup(crl=crl_layout.crl, spare=spare)


_UNTIL = re.compile(r"^effective_until = .*$", re.MULTILINE)


def expired_agreements(directory: Path, expired: Iterable[str], now: dt.datetime) -> Path:
    """A copy of the shipped agreements where each of ``expired`` ended yesterday (Beijing)."""
    directory.mkdir(parents=True)
    yesterday = (now.astimezone(BEIJING).date() - dt.timedelta(days=1)).isoformat()
    names = set(expired)
    for source in sorted(AGREEMENTS.glob("*.toml")):
        text = source.read_text(encoding="utf-8")
        if source.stem in names:
            text, count = _UNTIL.subn(f"effective_until = {yesterday}", text)
            assert count == 1, source
        (directory / source.name).write_text(text, encoding="utf-8")
    return directory
