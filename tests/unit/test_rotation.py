"""Signing-key rotation with overlapping validity, expiry warnings, and ``certs status``."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.cli import main
from gateway.envelope import Freshness, open_envelope, seal_envelope
from gateway.errors import ConfigInvalid, GatewayError
from gateway.pki import (
    PkiLayout,
    SigningCertificateVerifier,
    certificate_expiry,
    expiring_certificates,
    init_pki,
    issue_crl,
    issue_signing_certificate,
    key_id,
    key_matches_certificate,
    load_certificate,
    load_private_key,
    revoke_certificate,
    rotate_signing_key,
    signing_suite_of,
)
from gateway.records import RecordType
from gateway.signing import Signer, SM2PrivateKey, suite_named

TONGLIANG, SUINING = "500151", "510900"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
# Certificates made by the fixtures are valid from just before NOW, however late the
# fixture runs: the module's tests check them at NOW.
CERTS_FROM = NOW - dt.timedelta(minutes=1)


@pytest.fixture
def pki(tmp_path: Path) -> PkiLayout:
    return init_pki(tmp_path / "pki", [TONGLIANG, SUINING], now=CERTS_FROM)


def signer_from(cert_path: Path, key_path: Path, bureau: str = TONGLIANG) -> Signer:
    cert = load_certificate(cert_path)
    suite = suite_named(signing_suite_of(cert) or "")
    key = load_private_key(key_path)
    suite.check_private_key(key)
    return Signer(
        bureau=bureau,
        suite=suite,
        private_key=key,
        certificate_der=cert.public_bytes(serialization.Encoding.DER),
        key_id=key_id(cert),
    )


def opens(signer: Signer, verifier: SigningCertificateVerifier) -> str:
    envelope = seal_envelope(
        signer,
        message_id="6f1c1a52-3b0e-4c57-9d4e-0b6a3f3c2a10",
        receiver=SUINING,
        record_type=RecordType.CONSUMER_COMPLAINT,
        agreement_id="CY-AGR-2024-001",
        correlation_id="",
        payload=b"",
        created_at=NOW,
    )
    # The payload is no record, so opening gets past the signature and stops at decoding:
    # reaching RECORD/ENVELOPE errors proves the certificate and signature were accepted.
    try:
        open_envelope(
            envelope,
            receiver=SUINING,
            tls_peer=TONGLIANG,
            verifier=verifier,
            now=NOW,
            freshness=Freshness(),
        )
    except GatewayError as exc:
        return exc.reason
    return "OPENED"


# --------------------------------------------------------------------------- expiry


def test_certificate_expiry(pki: PkiLayout) -> None:
    cert = load_certificate(pki.bureau(TONGLIANG).tls_cert)
    assert certificate_expiry(cert, cert.not_valid_after_utc) == dt.timedelta(0)
    later = cert.not_valid_after_utc + dt.timedelta(days=2)
    assert certificate_expiry(cert, later) == dt.timedelta(days=-2)
    with pytest.raises(ValueError, match="timezone"):
        certificate_expiry(cert, dt.datetime(2026, 1, 1))


def test_expiring_certificates(pki: PkiLayout, tmp_path: Path) -> None:
    soon = issue_signing_certificate(
        pki, TONGLIANG, not_before=NOW, valid_days=10, out_dir=tmp_path / "soon"
    )
    gone = issue_signing_certificate(
        pki,
        TONGLIANG,
        not_before=NOW - dt.timedelta(days=5),
        valid_days=1,
        out_dir=tmp_path / "gone",
    )
    paths = [pki.ca_cert, pki.bureau(SUINING).tls_cert, soon.signing_cert, gone.signing_cert]
    found = expiring_certificates(paths, within_days=30, now=NOW)
    assert [item.path for item in found] == [gone.signing_cert, soon.signing_cert]
    assert found[0].expired
    assert not found[1].expired
    assert found[1].bureau == TONGLIANG
    assert found[1].role == "signing"
    assert found[1].key_id == key_id(load_certificate(soon.signing_cert))
    assert dt.timedelta(days=9) < found[1].remaining <= dt.timedelta(days=10)
    assert expiring_certificates(paths, within_days=0, now=NOW)[0].path == gone.signing_cert
    everything = expiring_certificates(paths, within_days=100 * 365, now=NOW)
    assert {item.path for item in everything} == set(paths)
    with pytest.raises(ConfigInvalid):
        expiring_certificates([tmp_path / "missing.pem"], within_days=1, now=NOW)


# --------------------------------------------------------------------------- rotation


def test_rotation_keeps_the_old_certificate_valid(pki: PkiLayout) -> None:
    paths = pki.bureau(TONGLIANG)
    old_cert_pem = paths.signing_cert.read_bytes()
    old_key_pem = paths.signing_key.read_bytes()
    old = signer_from(paths.signing_cert, paths.signing_key)

    rotated = rotate_signing_key(pki, TONGLIANG, now=CERTS_FROM)

    assert rotated.suite == "ed25519"
    assert rotated.previous_key_id == old.key_id
    assert rotated.key_id != old.key_id
    assert (rotated.cert, rotated.key) == (paths.signing_cert, paths.signing_key)
    assert rotated.archived_cert.name == f"signing-{rotated.key_id[:8]}.pem"
    assert rotated.archived_cert.read_bytes() == paths.signing_cert.read_bytes()
    assert rotated.archived_key.read_bytes() == paths.signing_key.read_bytes()
    assert paths.previous_signing_cert.read_bytes() == old_cert_pem
    assert paths.previous_signing_key.read_bytes() == old_key_pem
    folder = paths.signing_cert.parent
    assert (folder / f"signing-{old.key_id[:8]}.pem").read_bytes() == old_cert_pem
    for key in folder.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    new_cert = load_certificate(paths.signing_cert)
    assert key_matches_certificate(new_cert, load_private_key(paths.signing_key))
    assert key_id(new_cert) == rotated.key_id

    verifier = SigningCertificateVerifier([load_certificate(pki.ca_cert)])
    new = signer_from(paths.signing_cert, paths.signing_key)
    assert opens(new, verifier) == "ENVELOPE_MALFORMED"  # signature accepted
    assert opens(old, verifier) == "ENVELOPE_MALFORMED"  # the old key still verifies
    previous = signer_from(paths.previous_signing_cert, paths.previous_signing_key)
    assert previous.key_id == old.key_id
    # Revoking the previous certificate ends the overlap for it alone.
    crl = revoke_certificate(pki, load_certificate(paths.previous_signing_cert))
    verifier.set_crls([crl])
    assert opens(old, verifier) == "CERTIFICATE_REVOKED"
    assert opens(new, verifier) == "ENVELOPE_MALFORMED"
    # init after a rotation finds a consistent directory and changes nothing.
    assert init_pki(pki.directory, [TONGLIANG, SUINING]).created == ()


def test_second_rotation_moves_previous_along(pki: PkiLayout) -> None:
    paths = pki.bureau(TONGLIANG)
    original = key_id(load_certificate(paths.signing_cert))
    first = rotate_signing_key(pki, TONGLIANG)
    second = rotate_signing_key(pki, TONGLIANG)
    assert second.previous_key_id == first.key_id
    assert key_id(load_certificate(paths.previous_signing_cert)) == first.key_id
    archived = sorted(p.name for p in paths.signing_cert.parent.glob("signing-*.pem"))
    expected = {f"signing-{k[:8]}.pem" for k in (original, first.key_id, second.key_id)}
    assert set(archived) == expected | {"signing-previous.pem"}


def test_rotation_can_switch_the_suite(pki: PkiLayout) -> None:
    paths = pki.bureau(SUINING)
    rotated = rotate_signing_key(pki, SUINING, suite="sm2-sm3", valid_days=90)
    assert rotated.suite == "sm2-sm3"
    assert isinstance(load_private_key(paths.signing_key), SM2PrivateKey)
    assert isinstance(load_private_key(paths.previous_signing_key), Ed25519PrivateKey)
    cert = load_certificate(paths.signing_cert)
    assert signing_suite_of(cert) == "sm2-sm3"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=90)
    # The next rotation keeps SM2 unless told otherwise.
    assert rotate_signing_key(pki, SUINING).suite == "sm2-sm3"


def test_interrupted_rotation_is_detected(pki: PkiLayout) -> None:
    paths = pki.bureau(TONGLIANG)
    rotated = rotate_signing_key(pki, TONGLIANG)
    # As if the run had stopped between writing signing.key and signing.pem.
    paths.signing_cert.write_bytes(paths.previous_signing_cert.read_bytes())
    with pytest.raises(ConfigInvalid, match="interrupted"):
        rotate_signing_key(pki, TONGLIANG)
    # The archived pair is the way back.
    paths.signing_cert.write_bytes(rotated.archived_cert.read_bytes())
    rotate_signing_key(pki, TONGLIANG)


def test_rotation_refuses_a_foreign_certificate(pki: PkiLayout, tmp_path: Path) -> None:
    foreign = init_pki(tmp_path / "foreign", [TONGLIANG], now=CERTS_FROM)
    paths, theirs = pki.bureau(TONGLIANG), foreign.bureau(TONGLIANG)
    paths.signing_cert.write_bytes(theirs.signing_cert.read_bytes())
    paths.signing_key.write_bytes(theirs.signing_key.read_bytes())
    with pytest.raises(ConfigInvalid, match="not a signing certificate of bureau"):
        rotate_signing_key(pki, TONGLIANG)
    with pytest.raises(ConfigInvalid, match="not a division code"):
        rotate_signing_key(pki, "12345")


# --------------------------------------------------------------------------- CLI


def test_cli_rotate(pki: PkiLayout, capsys: pytest.CaptureFixture[str]) -> None:
    old = key_id(load_certificate(pki.bureau(TONGLIANG).signing_cert))
    assert main(["certs", "rotate", str(pki.directory), "--bureau", TONGLIANG]) == 0
    out = capsys.readouterr().out
    new = key_id(load_certificate(pki.bureau(TONGLIANG).signing_cert))
    assert f"new ed25519 signing key {new}" in out
    assert f"key id {old}" in out
    assert "signing-previous.pem" in out
    assert main(["certs", "rotate", str(pki.directory), "--bureau", "510100"]) == 1
    assert "[CONFIG_INVALID]" in capsys.readouterr().err


def test_cli_status_of_a_good_directory(pki: PkiLayout, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "status", str(pki.directory)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 6  # CA, two TLS, two signing, and the CRL line
    signing = load_certificate(pki.bureau(TONGLIANG).signing_cert)
    assert (
        f"{pki.bureau(TONGLIANG).signing_cert}  bureau={TONGLIANG}  role=signing  "
        f"suite=ed25519  key_id={key_id(signing)}  "
        f"not_after={signing.not_valid_after_utc.isoformat()}  days_left="
    ) in out
    assert "crl.pem  absent" in out
    assert "WARN" not in out
    assert main(["certs", "status", str(pki.directory), "--warn-days", "900"]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("WARN")]
    assert len(warnings) == 4  # every leaf; the 10-year CA is not due


def test_cli_status_fails_for_expired_or_revoked_certificates_in_use(
    pki: PkiLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(pki.directory)
    issue_signing_certificate(
        pki, SUINING, not_before=NOW - dt.timedelta(days=3), valid_days=1
    )  # over signing.pem: expired
    assert main(["certs", "status", directory]) == 1
    assert "EXPIRED" in capsys.readouterr().out

    rotate_signing_key(pki, SUINING)  # the expired one becomes "previous": fine again
    assert main(["certs", "status", directory]) == 0
    assert "EXPIRED  (previous, not in use)" in capsys.readouterr().out

    tls = load_certificate(pki.bureau(TONGLIANG).tls_cert)
    revoke_certificate(pki, tls, reason=x509.ReasonFlags.key_compromise)
    assert main(["certs", "status", directory]) == 1
    out = capsys.readouterr().out
    assert "REVOKED (keyCompromise)" in out
    assert "revoked=1" in out


def test_cli_status_fails_for_an_expired_crl(
    pki: PkiLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    issue_crl(pki, valid_days=1, now=NOW - dt.timedelta(days=2))
    assert main(["certs", "status", str(pki.directory)]) == 1
    assert "crl.pem  EXPIRED" in capsys.readouterr().out
    issue_crl(pki, valid_days=3)
    assert main(["certs", "status", str(pki.directory)]) == 0
    assert "WARN" in capsys.readouterr().out  # next update within the 7-day CRL horizon
    assert main(["certs", "status", str(pki.directory), "--crl-warn-days", "1"]) == 0
    assert "WARN" not in capsys.readouterr().out


def test_cli_status_previous_revocation_does_not_fail(
    pki: PkiLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    rotate_signing_key(pki, TONGLIANG)
    previous = load_certificate(pki.bureau(TONGLIANG).previous_signing_cert)
    revoke_certificate(pki, previous, reason=x509.ReasonFlags.superseded)
    assert main(["certs", "status", str(pki.directory)]) == 0
    assert "REVOKED (superseded)  (previous, not in use)" in capsys.readouterr().out
