"""The cooperation PKI: layout, certificate profiles, and signing-certificate checks."""

from __future__ import annotations

import datetime as dt
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.cli import main
from gateway.errors import CertificateRejected, ConfigInvalid
from gateway.pki import (
    BUREAU_DNS_SUFFIX,
    BUREAU_URI_PREFIX,
    PkiLayout,
    SigningCertificateVerifier,
    bureau_dns_name,
    bureau_of,
    bureau_of_pem,
    init_pki,
    issue_signing_certificate,
    key_id,
    load_certificate,
    load_private_key,
    tls_name_problem,
)

# A PKCS#8 PEM header, spelled in two parts so that secret scanners do not take this
# test for a committed key.
PKCS8_PEM_HEADER = b"-----BEGIN " + b"PRIVATE KEY-----"

BUREAUS = ("500151", "510900")
NOW = dt.datetime.now(dt.UTC)
# Certificates made by the fixtures are valid from just before NOW, however late the
# fixture runs: the module's tests check them at NOW.
CERTS_FROM = NOW - dt.timedelta(minutes=1)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return init_pki(tmp_path_factory.mktemp("pki"), BUREAUS, now=CERTS_FROM)


@pytest.fixture(scope="module")
def verifier(pki: PkiLayout) -> SigningCertificateVerifier:
    return SigningCertificateVerifier([load_certificate(pki.ca_cert)])


def der(path: Path) -> bytes:
    return load_certificate(path).public_bytes(serialization.Encoding.DER)


def reason_of(verifier: SigningCertificateVerifier, data: bytes) -> str:
    with pytest.raises(CertificateRejected) as caught:
        verifier.verify(data, now=NOW)
    return caught.value.reason


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- layout


def test_init_creates_the_layout_with_private_keys_0600(pki: PkiLayout) -> None:
    assert pki.ca_cert == pki.directory / "ca.pem"
    assert pki.ca_key == pki.directory / "ca.key"
    expected = {pki.ca_cert, pki.ca_key}
    for bureau in BUREAUS:
        paths = pki.bureau(bureau)
        assert paths.tls_cert == pki.directory / bureau / "tls.pem"
        expected |= {paths.tls_cert, paths.tls_key, paths.signing_cert, paths.signing_key}
    assert set(pki.created) == expected
    for path in expected:
        assert path.is_file()
        if path.suffix == ".key":
            assert mode(path) == 0o600, path
            assert path.read_bytes().startswith(PKCS8_PEM_HEADER)


def test_rerun_is_idempotent_and_keeps_the_ca(pki: PkiLayout) -> None:
    before = {p: p.read_bytes() for p in pki.created}
    again = init_pki(pki.directory, BUREAUS)
    assert again == pki
    assert again.created == ()
    assert {p: p.read_bytes() for p in pki.created} == before


def test_rerun_adds_a_bureau_under_the_same_ca(tmp_path: Path) -> None:
    first = init_pki(tmp_path, ["500151"])
    ca = first.ca_cert.read_bytes()
    second = init_pki(tmp_path, ["500151", "510900"])
    assert first.ca_cert.read_bytes() == ca
    paths = second.bureau("510900")
    assert set(second.created) == {
        paths.tls_cert,
        paths.tls_key,
        paths.signing_cert,
        paths.signing_key,
    }


def test_missing_certificate_is_reissued_for_the_existing_key(tmp_path: Path) -> None:
    layout = init_pki(tmp_path, ["500151"])
    paths = layout.bureau("500151")
    key = paths.tls_key.read_bytes()
    paths.tls_cert.unlink()
    again = init_pki(tmp_path, ["500151"], hosts=["gw.example.test"])
    assert again.created == (paths.tls_cert,)
    assert paths.tls_key.read_bytes() == key
    san = load_certificate(paths.tls_cert).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert san.value.get_values_for_type(x509.DNSName) == [
        "500151.bureau.chuanyu.internal",
        "gw.example.test",
    ]


def test_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    layout = init_pki(tmp_path, ["500151"])
    layout.bureau("500151").signing_key.unlink()
    with pytest.raises(ConfigInvalid, match=r"signing\.key is missing"):
        init_pki(tmp_path, ["500151"])


def test_certificate_from_another_ca_is_refused_on_rerun(tmp_path: Path) -> None:
    layout = init_pki(tmp_path, ["500151"])
    layout.ca_cert.unlink()
    layout.ca_key.unlink()
    with pytest.raises(ConfigInvalid, match="is not issued by"):
        init_pki(tmp_path, ["500151"])


@pytest.mark.parametrize("bureau", ["12345", "5001511", "990000", "../etc", ""])
def test_bureau_ids_must_be_division_codes(tmp_path: Path, bureau: str) -> None:
    with pytest.raises(ConfigInvalid, match="not a division code"):
        init_pki(tmp_path, [bureau])
    assert not any(tmp_path.iterdir())


def test_load_functions_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigInvalid, match=r"missing\.pem"):
        load_certificate(missing)
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    with pytest.raises(ConfigInvalid, match=r"bad\.key"):
        load_private_key(bad)
    with pytest.raises(ConfigInvalid, match=r"bad\.key"):
        load_certificate(bad)


# --------------------------------------------------------------------------- profiles


def test_ca_profile(pki: PkiLayout) -> None:
    ca = load_certificate(pki.ca_cert)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca
    assert basic.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert not usage.digital_signature
    ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert isinstance(load_private_key(pki.ca_key), ec.EllipticCurvePrivateKey)


def test_tls_certificate_profile(pki: PkiLayout) -> None:
    paths = pki.bureau("500151")
    cert = load_certificate(paths.tls_cert)
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"
    assert isinstance(load_private_key(paths.tls_key), ec.EllipticCurvePrivateKey)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "Chuanyu Gateway 500151 TLS"
    )
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "Chuanyu Cooperation"
    )
    ekus = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert ekus == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:chuanyu:bureau:500151"]
    assert san.get_values_for_type(x509.DNSName) == ["500151.bureau.chuanyu.internal", "localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    _assert_leaf_extensions(cert, load_certificate(pki.ca_cert))


def test_signing_certificate_profile(pki: PkiLayout) -> None:
    paths = pki.bureau("510900")
    cert = load_certificate(paths.signing_cert)
    assert isinstance(cert.public_key(), ed25519.Ed25519PublicKey)
    assert isinstance(load_private_key(paths.signing_key), ed25519.Ed25519PrivateKey)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "Chuanyu Gateway 510900 signing"
    )
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert usage.value.content_commitment
    assert not (
        usage.value.key_encipherment
        or usage.value.data_encipherment
        or usage.value.key_agreement
        or usage.value.key_cert_sign
        or usage.value.crl_sign
    )
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [x509.UniformResourceIdentifier("urn:chuanyu:bureau:510900")]
    _assert_leaf_extensions(cert, load_certificate(pki.ca_cert))


def _assert_leaf_extensions(cert: x509.Certificate, ca: x509.Certificate) -> None:
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert not basic.ca
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert cert.not_valid_after_utc <= ca.not_valid_after_utc


def test_san_binds_the_bureau(pki: PkiLayout) -> None:
    for bureau in BUREAUS:
        paths = pki.bureau(bureau)
        assert bureau_of(load_certificate(paths.tls_cert)) == bureau
        assert bureau_of(load_certificate(paths.signing_cert)) == bureau
        assert bureau_of_pem(paths.tls_cert.read_bytes()) == bureau
    assert bureau_of(load_certificate(pki.ca_cert)) is None
    assert bureau_of_pem(b"not a certificate") is None


def test_key_id_is_sha256_of_der(pki: PkiLayout) -> None:
    cert = load_certificate(pki.bureau("500151").signing_cert)
    assert key_id(cert) == cert.fingerprint(hashes.SHA256()).hex()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
@pytest.mark.parametrize("bureau", BUREAUS)
def test_openssl_verifies_the_chain(pki: PkiLayout, bureau: str) -> None:
    paths = pki.bureau(bureau)
    for cert, purpose in (
        (paths.signing_cert, None),
        (paths.tls_cert, "sslserver"),
        (paths.tls_cert, "sslclient"),
    ):
        command = ["openssl", "verify", "-x509_strict", "-CAfile", str(pki.ca_cert)]
        if purpose is not None:
            command += ["-purpose", purpose]
        result = subprocess.run(
            [*command, str(cert)], capture_output=True, text=True, check=False, timeout=30
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip().endswith(": OK")


# --------------------------------------------------------------------------- verification


def test_verify_accepts_a_good_signing_certificate(
    pki: PkiLayout, verifier: SigningCertificateVerifier
) -> None:
    cert = load_certificate(pki.bureau("500151").signing_cert)
    signer = verifier.verify(cert.public_bytes(serialization.Encoding.DER), now=NOW)
    assert signer.bureau == "500151"
    assert signer.key_id == key_id(cert)
    assert signer.certificate == cert
    assert signer.not_after == cert.not_valid_after_utc
    assert isinstance(signer.public_key, ed25519.Ed25519PublicKey)
    private = load_private_key(pki.bureau("500151").signing_key)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    signer.public_key.verify(private.sign(b"payload"), b"payload")


def test_cached_certificate_is_rechecked_against_now(
    pki: PkiLayout, verifier: SigningCertificateVerifier
) -> None:
    data = der(pki.bureau("510900").signing_cert)
    first = verifier.verify(data, now=NOW)
    assert verifier.verify(data, now=NOW) is first
    with pytest.raises(CertificateRejected) as caught:
        verifier.verify(data, now=first.not_after + dt.timedelta(seconds=1))
    assert caught.value.reason == "CERTIFICATE_EXPIRED"
    with pytest.raises(CertificateRejected) as caught:
        verifier.verify(data, now=first.certificate.not_valid_before_utc - dt.timedelta(days=1))
    assert caught.value.reason == "CERTIFICATE_NOT_YET_VALID"


def test_cache_is_bounded(pki: PkiLayout) -> None:
    verifier = SigningCertificateVerifier([load_certificate(pki.ca_cert)], cache_size=1)
    first, second = (der(pki.bureau(b).signing_cert) for b in BUREAUS)
    signer = verifier.verify(first, now=NOW)
    verifier.verify(second, now=NOW)
    assert verifier.verify(first, now=NOW) is not signer
    assert verifier.verify(first, now=NOW).key_id == signer.key_id


def test_foreign_ca_is_untrusted(tmp_path: Path, verifier: SigningCertificateVerifier) -> None:
    # Same CA name, different key: the signature check, not the name, must refuse it.
    foreign = init_pki(tmp_path, ["500151"], now=CERTS_FROM)
    data = der(foreign.bureau("500151").signing_cert)
    with pytest.raises(CertificateRejected) as caught:
        verifier.verify(data, now=NOW)
    assert caught.value.reason == "CERTIFICATE_UNTRUSTED"
    assert "Chuanyu Gateway 500151 signing" in caught.value.message
    assert "500151" in caught.value.message


def test_expired_certificate(
    pki: PkiLayout, verifier: SigningCertificateVerifier, tmp_path: Path
) -> None:
    paths = issue_signing_certificate(
        pki,
        "500151",
        not_before=NOW - dt.timedelta(days=40),
        valid_days=30,
        out_dir=tmp_path,
    )
    assert paths.signing_cert == tmp_path / "signing.pem"
    assert mode(paths.signing_key) == 0o600
    with pytest.raises(CertificateRejected) as caught:
        verifier.verify(der(paths.signing_cert), now=NOW)
    assert caught.value.reason == "CERTIFICATE_EXPIRED"
    assert "500151" in caught.value.message
    assert "Chuanyu Gateway 500151 signing" in caught.value.message


def test_not_yet_valid_certificate(
    pki: PkiLayout, verifier: SigningCertificateVerifier, tmp_path: Path
) -> None:
    paths = issue_signing_certificate(
        pki, "510900", not_before=NOW + dt.timedelta(days=1), out_dir=tmp_path
    )
    assert reason_of(verifier, der(paths.signing_cert)) == "CERTIFICATE_NOT_YET_VALID"


def test_tls_certificate_is_not_a_signing_certificate(
    pki: PkiLayout, verifier: SigningCertificateVerifier
) -> None:
    assert reason_of(verifier, der(pki.bureau("500151").tls_cert)) == "CERTIFICATE_USAGE"


def test_ca_certificate_is_not_a_signing_certificate(
    pki: PkiLayout, verifier: SigningCertificateVerifier
) -> None:
    assert reason_of(verifier, der(pki.ca_cert)) == "CERTIFICATE_USAGE"


def _issue(
    pki: PkiLayout, *, san: list[x509.GeneralName] | None, digital_signature: bool = True
) -> bytes:
    ca = load_certificate(pki.ca_cert)
    ca_key = load_private_key(pki.ca_key)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hand made")]))
        .issuer_name(ca.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=digital_signature,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_certificate_without_digital_signature_usage(
    pki: PkiLayout, verifier: SigningCertificateVerifier
) -> None:
    data = _issue(
        pki,
        san=[x509.UniformResourceIdentifier(BUREAU_URI_PREFIX + "500151")],
        digital_signature=False,
    )
    assert reason_of(verifier, data) == "CERTIFICATE_USAGE"


@pytest.mark.parametrize(
    "san",
    [
        None,
        [x509.DNSName("localhost")],
        [x509.UniformResourceIdentifier(BUREAU_URI_PREFIX + "12345x")],
        [x509.UniformResourceIdentifier("urn:other:500151")],
        [
            x509.UniformResourceIdentifier(BUREAU_URI_PREFIX + "500151"),
            x509.UniformResourceIdentifier(BUREAU_URI_PREFIX + "510900"),
        ],
    ],
    ids=["no-san", "dns-only", "bad-code", "other-urn", "two-bureaus"],
)
def test_certificate_without_a_bureau(
    pki: PkiLayout, verifier: SigningCertificateVerifier, san: list[x509.GeneralName] | None
) -> None:
    assert reason_of(verifier, _issue(pki, san=san)) == "CERTIFICATE_NO_BUREAU"


@pytest.mark.parametrize("data", [b"", b"garbage", b"\x30\x03\x02\x01\x01"])
def test_garbage_is_malformed(verifier: SigningCertificateVerifier, data: bytes) -> None:
    assert reason_of(verifier, data) == "CERTIFICATE_MALFORMED"


def test_pem_is_not_der(pki: PkiLayout, verifier: SigningCertificateVerifier) -> None:
    data = pki.bureau("500151").signing_cert.read_bytes()
    assert reason_of(verifier, data) == "CERTIFICATE_MALFORMED"


def test_verifier_needs_a_ca(pki: PkiLayout) -> None:
    with pytest.raises(ConfigInvalid):
        SigningCertificateVerifier([])
    with pytest.raises(ConfigInvalid):
        SigningCertificateVerifier([load_certificate(pki.bureau("500151").signing_cert)])


# --------------------------------------------------------------------------- CLI


def test_cli_certs_init_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "certs"
    assert main(["certs", "init", str(directory)]) == 0
    out = capsys.readouterr().out
    layout = PkiLayout.at(directory)
    for bureau in BUREAUS:
        paths = layout.bureau(bureau)
        signing = load_certificate(paths.signing_cert)
        assert f"{paths.signing_cert}  bureau={bureau}  role=signing  " in out
        assert key_id(signing) in out
        assert signing.not_valid_after_utc.isoformat() in out
        assert mode(paths.signing_key) == 0o600
    assert str(layout.ca_key) in out

    assert main(["certs", "init", str(directory)]) == 0
    assert "nothing to create" in capsys.readouterr().out

    assert main(["certs", "show", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "role=ca" in out
    assert out.count("role=tls") == 2
    assert out.count("role=signing") == 2
    assert out.count("issued by ca.pem") == 4


def test_cli_certs_init_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "certs"
    argv = ["certs", "init", str(directory), "--bureau", "510100", "--host", "gw.test"]
    assert main([*argv, "--days", "30"]) == 0
    capsys.readouterr()
    assert [p.name for p in directory.iterdir() if p.is_dir()] == ["510100"]
    tls = load_certificate(directory / "510100" / "tls.pem")
    san = tls.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["510100.bureau.chuanyu.internal", "gw.test"]
    lifetime = tls.not_valid_after_utc - tls.not_valid_before_utc
    assert lifetime == dt.timedelta(days=30)


def test_cli_reports_errors_on_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "init", str(tmp_path), "--bureau", "abc"]) == 1
    assert "[CONFIG_INVALID]" in capsys.readouterr().err
    assert main(["certs", "show", str(tmp_path / "none")]) == 1
    assert "[CONFIG_INVALID]" in capsys.readouterr().err


def test_a_tls_certificate_names_exactly_its_bureau(tmp_path: Path) -> None:
    # A host name under the bureau suffix would let one bureau pass for another.
    layout = init_pki(tmp_path, ["500151"], hosts=["gw.example.test", "510900" + BUREAU_DNS_SUFFIX])
    cert = load_certificate(layout.bureau("500151").tls_cert)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [
        bureau_dns_name("500151"),
        "gw.example.test",
    ]
    assert tls_name_problem(cert, "500151") is None
    assert bureau_dns_name("500151") in (tls_name_problem(cert, "510900") or "")
    signing = load_certificate(layout.bureau("500151").signing_cert)
    assert bureau_dns_name("500151") in (tls_name_problem(signing, "500151") or "")


def test_a_certificate_naming_two_bureaus_is_no_bureaus_tls_certificate(tmp_path: Path) -> None:
    layout = init_pki(tmp_path, ["500151"])
    ca_key = load_private_key(layout.ca_key)
    ca = load_certificate(layout.ca_cert)
    key = ec.generate_private_key(ec.SECP256R1())
    both = [x509.DNSName(bureau_dns_name("500151")), x509.DNSName(bureau_dns_name("510900"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "two")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ca.not_valid_before_utc)
        .not_valid_after(ca.not_valid_after_utc)
        .add_extension(x509.SubjectAlternativeName(both), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    for bureau in ("500151", "510900"):
        problem = tls_name_problem(cert, bureau)
        assert problem is not None and "not only" in problem
