"""Certificate revocation lists: issuing, loading, and refusing revoked certificates."""

from __future__ import annotations

import datetime as dt
import functools
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from chuanyu.exchange.v1 import envelope_pb2 as epb
from gateway.cli import main
from gateway.envelope import Freshness, open_envelope, seal_envelope
from gateway.errors import CertificateRejected, ConfigInvalid
from gateway.pki import (
    CERTIFICATE_REVOKED,
    CRL_EXPIRED,
    PkiLayout,
    SigningCertificateVerifier,
    init_pki,
    is_crl_issued_by,
    issue_crl,
    key_id,
    load_certificate,
    load_crls,
    load_private_key,
    revocation_reason,
    revoke_certificate,
)
from gateway.records import RecordType
from gateway.signing import Signer, suite_named

TONGLIANG, SUINING = "500151", "510900"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
# Certificates made by the fixtures are valid from just before NOW, however late the
# fixture runs: the module's tests check them at NOW.
CERTS_FROM = NOW - dt.timedelta(minutes=1)


@pytest.fixture
def pki(tmp_path: Path) -> PkiLayout:
    # Per test: revoking changes the directory.
    return init_pki(tmp_path / "pki", [TONGLIANG, SUINING], now=NOW - dt.timedelta(minutes=1))


def ca_of(layout: PkiLayout) -> x509.Certificate:
    return load_certificate(layout.ca_cert)


def der(path: Path) -> bytes:
    return load_certificate(path).public_bytes(serialization.Encoding.DER)


def verifier_for(layout: PkiLayout) -> SigningCertificateVerifier:
    return SigningCertificateVerifier([ca_of(layout)], crls=load_crls(layout.crl))


def rejection(call: Callable[[], object]) -> CertificateRejected:
    with pytest.raises(CertificateRejected) as caught:
        call()
    return caught.value


# --------------------------------------------------------------------------- issuing


def test_empty_crl_is_signed_by_the_ca_with_a_next_update(pki: PkiLayout) -> None:
    crl = issue_crl(pki, valid_days=7, now=NOW)
    assert pki.crl == pki.directory / "crl.pem"
    assert load_crls(pki.crl) == [crl]
    assert len(crl) == 0
    assert is_crl_issued_by(crl, ca_of(pki))
    assert crl.last_update_utc == NOW
    assert crl.next_update_utc == NOW + dt.timedelta(days=7)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca_of(pki).extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest


def test_revoking_rebuilds_the_whole_crl_and_keeps_earlier_entries(pki: PkiLayout) -> None:
    tls = load_certificate(pki.bureau(TONGLIANG).tls_cert)
    signing = load_certificate(pki.bureau(SUINING).signing_cert)
    first = revoke_certificate(pki, tls, reason=x509.ReasonFlags.key_compromise, now=NOW)
    later = NOW + dt.timedelta(hours=1)
    second = revoke_certificate(pki, signing, now=later)
    assert revocation_reason(second, tls) is x509.ReasonFlags.key_compromise
    # "unspecified" is left out of the entry (RFC 5280 §5.3.1) and reads back as such.
    assert revocation_reason(second, signing) is x509.ReasonFlags.unspecified
    entry = second.get_revoked_certificate_by_serial_number(signing.serial_number)
    assert entry is not None
    assert len(entry.extensions) == 0
    # The first entry keeps its date; the CRL itself is new.
    kept = second.get_revoked_certificate_by_serial_number(tls.serial_number)
    assert kept is not None
    assert kept.revocation_date_utc == NOW
    numbers = [
        crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        for crl in (first, second)
    ]
    assert numbers == [1, 2]
    assert second.last_update_utc == later
    assert revocation_reason(second, load_certificate(pki.bureau(SUINING).tls_cert)) is None
    # Revoking again changes nothing but the CRL's dates and number.
    third = revoke_certificate(pki, tls, reason=x509.ReasonFlags.superseded, now=later)
    assert len(third) == 2
    assert revocation_reason(third, tls) is x509.ReasonFlags.key_compromise


def test_next_update_never_outlives_the_ca(pki: PkiLayout) -> None:
    crl = issue_crl(pki, valid_days=100_000, now=NOW)
    assert crl.next_update_utc == ca_of(pki).not_valid_after_utc


def test_certificates_of_another_ca_cannot_be_revoked(pki: PkiLayout, tmp_path: Path) -> None:
    foreign = init_pki(tmp_path / "foreign", [TONGLIANG], now=CERTS_FROM)
    with pytest.raises(ConfigInvalid, match="not issued by"):
        revoke_certificate(pki, load_certificate(foreign.bureau(TONGLIANG).signing_cert))
    assert not pki.crl.exists()


def test_a_crl_not_signed_by_the_ca_is_not_built_upon(pki: PkiLayout, tmp_path: Path) -> None:
    foreign = init_pki(tmp_path / "foreign", [TONGLIANG], now=CERTS_FROM)
    issue_crl(foreign)
    shutil.copy(foreign.crl, pki.crl)
    with pytest.raises(ConfigInvalid, match="not one CRL signed by"):
        issue_crl(pki)


def test_load_crls_reads_pem_bundles_and_der(pki: PkiLayout, tmp_path: Path) -> None:
    first = issue_crl(pki, now=NOW)
    second = issue_crl(pki, now=NOW + dt.timedelta(seconds=1))
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(
        first.public_bytes(serialization.Encoding.PEM)
        + second.public_bytes(serialization.Encoding.PEM)
    )
    assert load_crls(bundle) == [first, second]
    single = tmp_path / "crl.der"
    single.write_bytes(first.public_bytes(serialization.Encoding.DER))
    assert load_crls(single) == [first]
    for content in (b"junk", b"-----BEGIN CERTIFICATE-----\n"):
        bad = tmp_path / "bad.pem"
        bad.write_bytes(content)
        with pytest.raises(ConfigInvalid, match=r"bad\.pem"):
            load_crls(bad)
    with pytest.raises(ConfigInvalid, match=r"missing\.pem"):
        load_crls(tmp_path / "missing.pem")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_openssl_sees_the_revocation(pki: PkiLayout) -> None:
    revoked = pki.bureau(TONGLIANG).signing_cert
    revoke_certificate(pki, load_certificate(revoked), reason=x509.ReasonFlags.key_compromise)
    command = ["openssl", "verify", "-crl_check", "-CAfile", str(pki.ca_cert)]
    command += ["-CRLfile", str(pki.crl)]
    bad = subprocess.run(
        [*command, str(revoked)], capture_output=True, text=True, check=False, timeout=30
    )
    assert bad.returncode != 0
    assert "certificate revoked" in bad.stdout + bad.stderr
    good = subprocess.run(
        [*command, str(pki.bureau(SUINING).signing_cert)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert good.returncode == 0, good.stdout + good.stderr


# --------------------------------------------------------------------------- verifier


def test_revoked_signing_certificate_is_refused(pki: PkiLayout) -> None:
    revoke_certificate(pki, load_certificate(pki.bureau(TONGLIANG).signing_cert), now=NOW)
    verifier = verifier_for(pki)
    error = rejection(lambda: verifier.verify(der(pki.bureau(TONGLIANG).signing_cert), now=NOW))
    assert error.reason == CERTIFICATE_REVOKED == "CERTIFICATE_REVOKED"
    assert "500151" in error.message
    assert verifier.verify(der(pki.bureau(SUINING).signing_cert), now=NOW).bureau == SUINING


def test_revocation_is_checked_on_every_call_not_cached(pki: PkiLayout) -> None:
    verifier = SigningCertificateVerifier([ca_of(pki)])
    data = der(pki.bureau(TONGLIANG).signing_cert)
    verifier.verify(data, now=NOW)  # cached as trusted
    crl = revoke_certificate(pki, load_certificate(pki.bureau(TONGLIANG).signing_cert), now=NOW)
    verifier.set_crls([crl])
    assert rejection(lambda: verifier.verify(data, now=NOW)).reason == CERTIFICATE_REVOKED
    verifier.set_crls([])
    verifier.verify(data, now=NOW)


def test_expired_crl_fails_closed_until_reissued(pki: PkiLayout) -> None:
    crl = issue_crl(pki, valid_days=1, now=NOW)
    verifier = SigningCertificateVerifier([ca_of(pki)], crls=[crl])
    data = der(pki.bureau(SUINING).signing_cert)
    verifier.verify(data, now=NOW + dt.timedelta(days=1))  # next-update itself is still fine
    later = NOW + dt.timedelta(days=1, seconds=1)
    with pytest.raises(ConfigInvalid) as caught:
        verifier.verify(data, now=later)
    assert caught.value.reason == CRL_EXPIRED == "CRL_EXPIRED"
    assert "certs crl" in caught.value.message
    verifier.set_crls([issue_crl(pki, valid_days=7, now=later)])
    verifier.verify(data, now=later)


def test_several_crls_of_one_ca_are_merged(pki: PkiLayout) -> None:
    old = revoke_certificate(pki, load_certificate(pki.bureau(TONGLIANG).signing_cert), now=NOW)
    pki.crl.unlink()  # a CRL that lost the first entry (an operator mistake)
    new = revoke_certificate(pki, load_certificate(pki.bureau(SUINING).signing_cert), now=NOW)
    verifier = SigningCertificateVerifier([ca_of(pki)], crls=[old, new])
    for bureau in (TONGLIANG, SUINING):
        data = der(pki.bureau(bureau).signing_cert)
        assert rejection(functools.partial(verifier.verify, data, now=NOW)).reason == (
            CERTIFICATE_REVOKED
        )


def test_crl_of_another_ca_is_a_config_error(pki: PkiLayout, tmp_path: Path) -> None:
    foreign = init_pki(tmp_path / "foreign", [TONGLIANG], now=CERTS_FROM)
    crl = issue_crl(foreign)
    with pytest.raises(ConfigInvalid, match="not signed by a configured"):
        SigningCertificateVerifier([ca_of(pki)], crls=[crl])
    verifier = SigningCertificateVerifier([ca_of(pki)])
    with pytest.raises(ConfigInvalid):
        verifier.set_crls([crl])


def test_crl_only_applies_to_its_own_ca(pki: PkiLayout, tmp_path: Path) -> None:
    # During a CA rotation both CAs are trusted; a serial revoked by one CA says
    # nothing about the other CA's certificates.
    other = init_pki(tmp_path / "other", [TONGLIANG], now=CERTS_FROM)
    crl = revoke_certificate(pki, load_certificate(pki.bureau(TONGLIANG).signing_cert), now=NOW)
    verifier = SigningCertificateVerifier([ca_of(pki), ca_of(other)], crls=[crl])
    assert verifier.verify(der(other.bureau(TONGLIANG).signing_cert), now=NOW).bureau == TONGLIANG


def test_revoked_signer_cannot_open_an_envelope(pki: PkiLayout) -> None:
    paths = pki.bureau(TONGLIANG)
    cert = load_certificate(paths.signing_cert)
    signer = Signer(
        bureau=TONGLIANG,
        suite=suite_named("ed25519"),
        private_key=load_private_key(paths.signing_key),
        certificate_der=cert.public_bytes(serialization.Encoding.DER),
        key_id=key_id(cert),
    )
    envelope: epb.Envelope = seal_envelope(
        signer,
        message_id="6f1c1a52-3b0e-4c57-9d4e-0b6a3f3c2a10",
        receiver=SUINING,
        record_type=RecordType.CONSUMER_COMPLAINT,
        agreement_id="CY-AGR-2024-001",
        correlation_id="",
        payload=b"not checked before the certificate",
        created_at=NOW,
    )
    revoke_certificate(pki, cert, reason=x509.ReasonFlags.key_compromise, now=NOW)
    error = rejection(
        lambda: open_envelope(
            envelope,
            receiver=SUINING,
            tls_peer=TONGLIANG,
            verifier=verifier_for(pki),
            now=NOW,
            freshness=Freshness(),
        )
    )
    assert error.reason == CERTIFICATE_REVOKED


# --------------------------------------------------------------------------- TLS peers


def test_check_tls_peer(pki: PkiLayout, tmp_path: Path) -> None:
    tongliang_pem = pki.bureau(TONGLIANG).tls_cert.read_bytes()
    suining_pem = pki.bureau(SUINING).tls_cert.read_bytes()
    verifier = SigningCertificateVerifier([ca_of(pki)])
    verifier.check_tls_peer(tongliang_pem, now=NOW)  # no CRL: nothing to refuse
    crl = revoke_certificate(pki, load_certificate(pki.bureau(TONGLIANG).tls_cert), now=NOW)
    verifier.set_crls([crl])
    error = rejection(lambda: verifier.check_tls_peer(tongliang_pem, now=NOW))
    assert error.reason == CERTIFICATE_REVOKED
    assert "TLS peer certificate" in error.message
    verifier.check_tls_peer(suining_pem, now=NOW)
    # The signing certificate of the same bureau is untouched by the TLS revocation.
    verifier.verify(der(pki.bureau(TONGLIANG).signing_cert), now=NOW)
    with pytest.raises(ConfigInvalid) as caught:
        verifier.check_tls_peer(suining_pem, now=NOW + dt.timedelta(days=31))
    assert caught.value.reason == CRL_EXPIRED
    assert rejection(lambda: verifier.check_tls_peer(b"junk", now=NOW)).reason == (
        "CERTIFICATE_MALFORMED"
    )
    foreign = init_pki(tmp_path / "foreign", [TONGLIANG], now=CERTS_FROM)
    foreign_pem = foreign.bureau(TONGLIANG).tls_cert.read_bytes()
    assert rejection(lambda: verifier.check_tls_peer(foreign_pem, now=NOW)).reason == (
        "CERTIFICATE_UNTRUSTED"
    )
    with pytest.raises(ValueError, match="timezone"):
        verifier.check_tls_peer(suining_pem, now=dt.datetime(2026, 1, 1))


# --------------------------------------------------------------------------- CLI


def test_cli_revoke_and_crl(pki: PkiLayout, capsys: pytest.CaptureFixture[str]) -> None:
    directory = str(pki.directory)
    assert main(["certs", "crl", directory, "--days", "3"]) == 0
    out = capsys.readouterr().out
    assert "crl_number=1  revoked=0" in out
    crl = load_crls(pki.crl)[0]
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(days=3)

    argv = ["certs", "revoke", directory, "--bureau", TONGLIANG, "--role", "tls"]
    assert main([*argv, "--reason", "keyCompromise"]) == 0
    out = capsys.readouterr().out
    tls = load_certificate(pki.bureau(TONGLIANG).tls_cert)
    assert f"serial={tls.serial_number:x}" in out
    assert "reason=keyCompromise" in out
    assert "crl_number=2  revoked=1" in out

    signing = pki.bureau(SUINING).signing_cert
    assert main(["certs", "revoke", directory, "--cert", str(signing)]) == 0
    assert "reason=unspecified" in capsys.readouterr().out
    crl = load_crls(pki.crl)[0]
    assert revocation_reason(crl, tls) is x509.ReasonFlags.key_compromise
    assert revocation_reason(crl, load_certificate(signing)) is x509.ReasonFlags.unspecified

    assert main(["certs", "crl", directory]) == 0
    assert "crl_number=4  revoked=2" in capsys.readouterr().out


def test_cli_revoke_errors(pki: PkiLayout, capsys: pytest.CaptureFixture[str]) -> None:
    directory = str(pki.directory)
    assert main(["certs", "revoke", directory, "--bureau", TONGLIANG]) == 1
    assert "--role" in capsys.readouterr().err
    cert = str(pki.bureau(TONGLIANG).tls_cert)
    assert main(["certs", "revoke", directory, "--cert", cert, "--role", "tls"]) == 1
    assert "[CONFIG_INVALID]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["certs", "revoke", directory, "--bureau", TONGLIANG, "--role", "ca"])
    with pytest.raises(SystemExit):
        main(["certs", "revoke", directory, "--bureau", TONGLIANG, "--reason", "bored"])
    capsys.readouterr()
    assert main(["certs", "crl", str(pki.directory / "nowhere")]) == 1
    assert "certs init" in capsys.readouterr().err
    assert not pki.crl.exists()
