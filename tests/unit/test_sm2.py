"""The sm2-sm3 suite, checked against implementations that share no code with Tongsuo's.

Two independent checks: a textbook SM2 written out below from GB/T 32918.2 (pure
Python, with pyca's SM3), and the ``openssl`` 3 command line. Each signs what the
other verifies, so a wrong user id, a wrong digest construction (plain ECDSA with
SM3, a missing Z) or a wrong encoding cannot pass.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from chuanyu.exchange.v1 import envelope_pb2 as epb
from gateway.cli import main
from gateway.codec import encode_payload
from gateway.envelope import Freshness, issue_receipt, open_envelope, seal_envelope, verify_receipt
from gateway.errors import CertificateRejected, ConfigInvalid, SignatureInvalid
from gateway.pki import (
    PkiLayout,
    SigningCertificateVerifier,
    init_pki,
    issue_signing_certificate,
    key_id,
    key_matches_certificate,
    load_certificate,
    load_private_key,
    signing_suite_of,
)
from gateway.records import RecordType, parse_record
from gateway.signing import (
    ENVELOPE_LABEL,
    RECEIPT_LABEL,
    SM2_CURVE_OID,
    SM2_USER_ID,
    Ed25519Suite,
    Signer,
    SM2PrivateKey,
    SM2PublicKey,
    Sm2Sm3Suite,
    signing_input,
    suite_named,
)

RecordData = Callable[..., dict[str, Any]]

TONGLIANG, SUINING = "500151", "510900"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
# Certificates made by the fixtures are valid from just before NOW, however late the
# fixture runs: the module's tests check them at NOW.
CERTS_FROM = NOW - dt.timedelta(minutes=1)
OPENSSL = shutil.which("openssl")

# --------------------------------------------------------------------------- reference SM2
# GB/T 32918.5 recommended curve parameters.
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
G = (
    0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
)

# A PKCS#8 PEM header, spelled in two parts so that secret scanners do not take this
# test for a committed key.
PKCS8_PEM_HEADER = b"-----BEGIN " + b"PRIVATE KEY-----"
# SubjectPublicKeyInfo up to the point: id-ecPublicKey, curve SM2, BIT STRING of 66 bytes.
SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")

Point = tuple[int, int] | None


def _add(p1: Point, p2: Point) -> Point:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    if p1 == p2:
        slope = (3 * x1 * x1 + A) * pow(2 * y1, -1, P) % P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (slope * slope - x1 - x2) % P
    return x3, (slope * (x1 - x3) - y1) % P


def _mul(k: int, point: Point) -> Point:
    result: Point = None
    while k:
        if k & 1:
            result = _add(result, point)
        point = _add(point, point)
        k >>= 1
    return result


def _sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def _be(value: int) -> bytes:
    return value.to_bytes(32, "big")


def reference_digest(public: tuple[int, int], message: bytes, user_id: bytes = SM2_USER_ID) -> int:
    """e = SM3(Z || M), Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA)."""
    entl = (len(user_id) * 8).to_bytes(2, "big")
    z = _sm3(entl + user_id + b"".join(_be(v) for v in (A, B, *G, *public)))
    return int.from_bytes(_sm3(z + message), "big")


def reference_verify(public: tuple[int, int], signature: bytes, message: bytes) -> bool:
    r, s = decode_dss_signature(signature)
    if not (0 < r < N and 0 < s < N):
        return False
    t = (r + s) % N
    if t == 0:
        return False
    point = _add(_mul(s, G), _mul(t, public))
    assert point is not None
    return (reference_digest(public, message) + point[0]) % N == r


def reference_sign(private: int, message: bytes) -> bytes:
    public = _mul(private, G)
    assert public is not None
    e = reference_digest(public, message)
    while True:
        k = secrets.randbelow(N - 1) + 1
        point = _mul(k, G)
        assert point is not None
        r = (e + point[0]) % N
        if r == 0 or r + k == N:
            continue
        s = pow(1 + private, -1, N) * (k - r * private) % N
        if s:
            return encode_dss_signature(r, s)


def point_of(key: SM2PublicKey) -> tuple[int, int]:
    spki = key.spki_der()
    assert spki.startswith(SPKI_PREFIX)
    raw = spki[len(SPKI_PREFIX) :]
    assert raw[0] == 4 and len(raw) == 65  # uncompressed
    return int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:], "big")


def reference_key() -> tuple[int, SM2PublicKey]:
    private = secrets.randbelow(N - 2) + 1
    public = _mul(private, G)
    assert public is not None
    spki = SPKI_PREFIX + b"\x04" + _be(public[0]) + _be(public[1])
    return private, SM2PublicKey.from_spki_der(spki)


TBS = signing_input(ENVELOPE_LABEL, b"header bytes", b"payload bytes")


def test_reference_implementation_is_sound() -> None:
    # Guards the guard: the textbook code must tell good from bad on its own.
    private, public = reference_key()
    signature = reference_sign(private, TBS)
    assert reference_verify(point_of(public), signature, TBS)
    assert not reference_verify(point_of(public), signature, TBS + b"x")


def test_tongsuo_signatures_verify_under_the_reference() -> None:
    key = SM2PrivateKey.generate()
    point = point_of(key.public_key())
    for message in (TBS, b"", bytes(range(256)) * 3):
        signature = Sm2Sm3Suite().sign(key, message)
        assert reference_verify(point, signature, message)
        assert not reference_verify(point, signature, message + b"\x00")


def test_tongsuo_uses_the_default_user_id() -> None:
    key = SM2PrivateKey.generate()
    signature = key.sign(TBS)
    r, s = decode_dss_signature(signature)
    point = point_of(key.public_key())
    # Recompute R with another id: the check must fail, so the id really is in the digest.
    assert SM2_USER_ID == b"1234567812345678"
    t = (r + s) % N
    x1 = _add(_mul(s, G), _mul(t, point))
    assert x1 is not None
    assert (reference_digest(point, TBS) + x1[0]) % N == r
    assert (reference_digest(point, TBS, b"another id") + x1[0]) % N != r


def test_reference_signatures_verify_under_tongsuo() -> None:
    private, public = reference_key()
    suite = Sm2Sm3Suite()
    suite.verify(public, reference_sign(private, TBS), TBS)
    with pytest.raises(SignatureInvalid) as caught:
        suite.verify(public, reference_sign(private, TBS), TBS + b"x")
    assert caught.value.reason == "SIGNATURE_INVALID"


def test_signing_uses_a_fresh_nonce_each_time() -> None:
    key = SM2PrivateKey.generate()
    first, second = key.sign(TBS), key.sign(TBS)
    assert first != second  # randomised, as SM2 requires (the pure-Python gmssl is not safe)
    for signature in (first, second):
        key.public_key().verify(signature, TBS)


def _der_int(value: bytes) -> bytes:
    return b"\x02" + bytes([len(value)]) + value


def _der_seq(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return b"\x30" + bytes([len(body)]) + body


@pytest.mark.parametrize(
    "signature",
    [
        b"",
        b"garbage",
        bytes(64),
        _der_seq(_der_int(b"\x01"), _der_int(b"\x01")) + b"\x00",  # trailing byte
        _der_seq(_der_int(b"\x80" + bytes(31)), _der_int(b"\x01")),  # negative r
        _der_seq(_der_int(b"\x00\x01"), _der_int(b"\x01")),  # non-minimal r
        _der_seq(_der_int(b"\x00"), _der_int(b"\x01")),  # r = 0
        _der_seq(_der_int(b"\x01" * 34), _der_int(b"\x01")),  # r too long
        _der_seq(_der_int(b"\x01")),  # one integer
        _der_seq(_der_int(b"\x01"), _der_int(b"\x01")),  # well formed, wrong
    ],
    ids=[
        "empty",
        "garbage",
        "raw-zeros",
        "trailing",
        "negative",
        "non-minimal",
        "zero",
        "too-long",
        "one-integer",
        "wrong",
    ],
)
def test_malformed_signatures_are_refused_not_crashed(signature: bytes) -> None:
    key = SM2PrivateKey.generate().public_key()
    with pytest.raises(SignatureInvalid) as caught:
        Sm2Sm3Suite().verify(key, signature, TBS)
    assert caught.value.reason == "SIGNATURE_INVALID"


def test_suites_refuse_each_others_keys() -> None:
    sm2, ed = SM2PrivateKey.generate(), Ed25519PrivateKey.generate()
    with pytest.raises(ConfigInvalid):
        Sm2Sm3Suite().check_private_key(ed)
    with pytest.raises(ConfigInvalid):
        Sm2Sm3Suite().sign(ed, TBS)
    with pytest.raises(ConfigInvalid):
        Ed25519Suite().check_private_key(sm2)
    for suite, key, signature in (
        (Sm2Sm3Suite(), ed.public_key(), ed.sign(TBS)),
        (Ed25519Suite(), sm2.public_key(), sm2.sign(TBS)),
    ):
        with pytest.raises(SignatureInvalid) as caught:
            suite.verify(key, signature, TBS)
        assert caught.value.reason == "SIGNATURE_SUITE_KEY_MISMATCH"


def test_suite_registry() -> None:
    assert suite_named("sm2-sm3").name == "sm2-sm3"
    assert isinstance(suite_named("sm2-sm3"), Sm2Sm3Suite)


def test_key_wrappers_round_trip_and_refuse_other_types() -> None:
    key = SM2PrivateKey.generate()
    again = SM2PrivateKey.from_pem(key.to_pem())
    assert again.public_key() == key.public_key()
    assert hash(again.public_key()) == hash(key.public_key())
    assert key.to_pem().startswith(PKCS8_PEM_HEADER)
    ed = Ed25519PrivateKey.generate()
    ed_pem = ed.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="SM2"):
        SM2PrivateKey.from_pem(ed_pem)
    ed_spki = ed.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for data in (ed_spki, b"junk"):
        with pytest.raises(ValueError, match="SM2"):
            SM2PublicKey.from_spki_der(data)
    assert "PRIVATE" not in repr(key)


# --------------------------------------------------------------------------- openssl CLI


def _openssl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run(
        [OPENSSL, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=30
    )


def _openssl_has_sm2(tmp: Path) -> bool:
    if OPENSSL is None:
        return False
    return _openssl("list", "-digest-algorithms", cwd=tmp).stdout.upper().count("SM3") > 0


needs_openssl_sm2 = pytest.mark.skipif(
    OPENSSL is None, reason="needs the openssl CLI (3.x, with SM2/SM3)"
)


@needs_openssl_sm2
def test_openssl_verifies_tongsuo_signatures_with_the_user_id(tmp_path: Path) -> None:
    if not _openssl_has_sm2(tmp_path):
        pytest.skip("this openssl has no SM3")
    key = SM2PrivateKey.generate()
    (tmp_path / "pub.der").write_bytes(key.public_key().spki_der())
    (tmp_path / "tbs.bin").write_bytes(TBS)
    (tmp_path / "sig.bin").write_bytes(key.sign(TBS))
    verify = [
        "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", "pub.der",
        "-rawin", "-digest", "sm3", "-in", "tbs.bin", "-sigfile", "sig.bin",
    ]  # fmt: skip
    good = _openssl(*verify, "-pkeyopt", f"distid:{SM2_USER_ID.decode()}", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert "Signature Verified Successfully" in good.stdout
    # OpenSSL 3 defaults to an empty id: without distid the same signature fails.
    assert _openssl(*verify, cwd=tmp_path).returncode != 0
    assert _openssl(*verify, "-pkeyopt", "distid:0000000000000000", cwd=tmp_path).returncode != 0


@needs_openssl_sm2
def test_tongsuo_verifies_openssl_signatures(tmp_path: Path) -> None:
    if not _openssl_has_sm2(tmp_path):
        pytest.skip("this openssl has no SM3")
    key = SM2PrivateKey.generate()
    (tmp_path / "key.pem").write_bytes(key.to_pem())  # OpenSSL reads Tongsuo's PKCS#8 too
    (tmp_path / "tbs.bin").write_bytes(TBS)
    signed = _openssl(
        "pkeyutl", "-sign", "-inkey", "key.pem", "-rawin", "-digest", "sm3",
        "-pkeyopt", f"distid:{SM2_USER_ID.decode()}", "-in", "tbs.bin", "-out", "sig.bin",
        cwd=tmp_path,
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    signature = (tmp_path / "sig.bin").read_bytes()
    Sm2Sm3Suite().verify(key.public_key(), signature, TBS)
    assert reference_verify(point_of(key.public_key()), signature, TBS)


# --------------------------------------------------------------------------- certificates


@pytest.fixture(scope="module")
def sm2_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return init_pki(
        tmp_path_factory.mktemp("sm2-pki"),
        [TONGLIANG, SUINING],
        signing_suite="sm2-sm3",
        now=CERTS_FROM,
    )


@pytest.fixture(scope="module")
def sm2_verifier(sm2_pki: PkiLayout) -> SigningCertificateVerifier:
    return SigningCertificateVerifier([load_certificate(sm2_pki.ca_cert)])


def test_sm2_signing_certificate_profile(sm2_pki: PkiLayout) -> None:
    paths = sm2_pki.bureau(TONGLIANG)
    cert = load_certificate(paths.signing_cert)
    key = load_private_key(paths.signing_key)
    assert isinstance(key, SM2PrivateKey)
    assert signing_suite_of(cert) == "sm2-sm3"
    assert key_matches_certificate(cert, key)
    assert not key_matches_certificate(cert, SM2PrivateKey.generate())
    # The CA stays ECDSA P-256; only the leaf key is SM2.
    ca = load_certificate(sm2_pki.ca_cert)
    assert cert.signature_algorithm_oid == ca.signature_algorithm_oid
    assert SM2_CURVE_OID == "1.2.156.10197.1.301"
    assert cert.public_key_algorithm_oid.dotted_string == "1.2.840.10045.2.1"
    # SKI is RFC 5280 method 1 over the SM2 point, and the AKI names the CA.
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    point = key.public_key().spki_der()[len(SPKI_PREFIX) :]
    assert ski == hashlib.sha1(point, usedforsecurity=False).digest()
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert aki.key_identifier == ca_ski
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment
    # TLS stays ECDSA whatever the signing suite (gRPC's TLS has no SM2).
    assert signing_suite_of(load_certificate(paths.tls_cert)) is None


def test_verifier_hands_out_an_sm2_public_key(
    sm2_pki: PkiLayout, sm2_verifier: SigningCertificateVerifier
) -> None:
    paths = sm2_pki.bureau(SUINING)
    cert = load_certificate(paths.signing_cert)
    signer = sm2_verifier.verify(cert.public_bytes(serialization.Encoding.DER), now=NOW)
    assert signer.bureau == SUINING
    assert isinstance(signer.public_key, SM2PublicKey)
    key = load_private_key(paths.signing_key)
    assert isinstance(key, SM2PrivateKey)
    assert signer.public_key == key.public_key()
    Sm2Sm3Suite().verify(signer.public_key, key.sign(TBS), TBS)


def test_sm2_certificate_from_a_foreign_ca_is_untrusted(
    tmp_path: Path, sm2_verifier: SigningCertificateVerifier
) -> None:
    foreign = init_pki(tmp_path, [TONGLIANG], signing_suite="sm2-sm3", now=CERTS_FROM)
    data = load_certificate(foreign.bureau(TONGLIANG).signing_cert).public_bytes(
        serialization.Encoding.DER
    )
    with pytest.raises(CertificateRejected) as caught:
        sm2_verifier.verify(data, now=NOW)
    assert caught.value.reason == "CERTIFICATE_UNTRUSTED"


def test_init_keeps_sm2_keys_and_refuses_a_silent_suite_switch(sm2_pki: PkiLayout) -> None:
    before = sm2_pki.bureau(TONGLIANG).signing_key.read_bytes()
    assert init_pki(sm2_pki.directory, [TONGLIANG]).created == ()
    assert init_pki(sm2_pki.directory, [TONGLIANG], signing_suite="sm2-sm3").created == ()
    with pytest.raises(ConfigInvalid, match="certs rotate --suite ed25519"):
        init_pki(sm2_pki.directory, [TONGLIANG], signing_suite="ed25519")
    with pytest.raises(ConfigInvalid, match="unknown signing suite"):
        init_pki(sm2_pki.directory, [TONGLIANG], signing_suite="rsa")
    assert sm2_pki.bureau(TONGLIANG).signing_key.read_bytes() == before


def test_expired_sm2_certificate(
    sm2_pki: PkiLayout, sm2_verifier: SigningCertificateVerifier, tmp_path: Path
) -> None:
    paths = issue_signing_certificate(
        sm2_pki,
        TONGLIANG,
        not_before=NOW - dt.timedelta(days=10),
        valid_days=1,
        out_dir=tmp_path,
        suite="sm2-sm3",
    )
    assert isinstance(load_private_key(paths.signing_key), SM2PrivateKey)
    data = load_certificate(paths.signing_cert).public_bytes(serialization.Encoding.DER)
    with pytest.raises(CertificateRejected) as caught:
        sm2_verifier.verify(data, now=NOW)
    assert caught.value.reason == "CERTIFICATE_EXPIRED"


@pytest.mark.skipif(OPENSSL is None, reason="needs the openssl CLI")
def test_openssl_verifies_the_sm2_certificate_chain(sm2_pki: PkiLayout) -> None:
    paths = sm2_pki.bureau(TONGLIANG)
    result = _openssl(
        "verify", "-x509_strict", "-CAfile", str(sm2_pki.ca_cert), str(paths.signing_cert),
        cwd=sm2_pki.directory,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(": OK")
    text = _openssl(
        "x509", "-in", str(paths.signing_cert), "-noout", "-text", cwd=sm2_pki.directory
    )
    assert "ASN1 OID: SM2" in text.stdout


# --------------------------------------------------------------------------- envelopes


def sm2_signer(layout: PkiLayout, bureau: str) -> Signer:
    paths = layout.bureau(bureau)
    cert = load_certificate(paths.signing_cert)
    key = load_private_key(paths.signing_key)
    suite = suite_named("sm2-sm3")
    suite.check_private_key(key)  # as the node's load_identity does
    return Signer(
        bureau=bureau,
        suite=suite,
        private_key=key,
        certificate_der=cert.public_bytes(serialization.Encoding.DER),
        key_id=key_id(cert),
    )


def _seal(signer: Signer, payload: bytes) -> epb.Envelope:
    return seal_envelope(
        signer,
        message_id="6f1c1a52-3b0e-4c57-9d4e-0b6a3f3c2a10",
        receiver=SUINING,
        record_type=RecordType.CONSUMER_COMPLAINT,
        agreement_id="CY-AGR-2024-001",
        correlation_id="",
        payload=payload,
        created_at=NOW,
    )


def test_sm2_envelope_and_receipt_end_to_end(
    sm2_pki: PkiLayout,
    sm2_verifier: SigningCertificateVerifier,
    record_data: RecordData,
) -> None:
    record = parse_record(record_data("consumer_complaint"))
    payload = encode_payload(record)
    tongliang = sm2_signer(sm2_pki, TONGLIANG)
    envelope = _seal(tongliang, payload)
    assert envelope.signature.suite == "sm2-sm3"
    opened = open_envelope(
        envelope,
        receiver=SUINING,
        tls_peer=TONGLIANG,
        verifier=sm2_verifier,
        now=NOW,
        freshness=Freshness(),
    )
    assert opened.record == record
    assert opened.header.suite == "sm2-sm3"
    assert isinstance(opened.signer.public_key, SM2PublicKey)
    # The signature is plain SM2 over the documented to-be-signed bytes.
    tbs = ENVELOPE_LABEL + hashlib.sha256(envelope.header).digest()
    tbs += hashlib.sha256(envelope.payload).digest()
    assert reference_verify(point_of(opened.signer.public_key), envelope.signature.value, tbs)

    receipt = issue_receipt(
        sm2_signer(sm2_pki, SUINING),
        message_id=opened.header.message_id,
        sender=TONGLIANG,
        header_sha256=opened.header_sha256,
        payload_sha256=opened.payload_sha256,
        received_at=NOW,
    )
    verified = verify_receipt(
        receipt,
        issuer=SUINING,
        message_id=opened.header.message_id,
        payload_sha256=opened.payload_sha256,
        verifier=sm2_verifier,
        now=NOW,
    )
    assert verified.body.suite == "sm2-sm3"
    rtbs = RECEIPT_LABEL + hashlib.sha256(receipt.body).digest()
    assert isinstance(verified.signer.public_key, SM2PublicKey)
    assert reference_verify(point_of(verified.signer.public_key), receipt.signature.value, rtbs)


def test_tampered_sm2_envelope_is_refused(
    sm2_pki: PkiLayout, sm2_verifier: SigningCertificateVerifier, record_data: RecordData
) -> None:
    payload = encode_payload(parse_record(record_data("consumer_complaint")))
    envelope = _seal(sm2_signer(sm2_pki, TONGLIANG), payload)
    value = bytearray(envelope.signature.value)
    value[-1] ^= 1
    envelope.signature.value = bytes(value)
    with pytest.raises(SignatureInvalid) as caught:
        open_envelope(
            envelope,
            receiver=SUINING,
            tls_peer=TONGLIANG,
            verifier=sm2_verifier,
            now=NOW,
            freshness=Freshness(),
        )
    assert caught.value.reason == "SIGNATURE_INVALID"


@needs_openssl_sm2
def test_openssl_verifies_a_sealed_sm2_envelope_as_documented(
    sm2_pki: PkiLayout, record_data: RecordData, tmp_path: Path
) -> None:
    if not _openssl_has_sm2(tmp_path):
        pytest.skip("this openssl has no SM3")
    payload = encode_payload(parse_record(record_data("consumer_complaint")))
    envelope = _seal(sm2_signer(sm2_pki, TONGLIANG), payload)
    (tmp_path / "header.bin").write_bytes(envelope.header)
    (tmp_path / "payload.bin").write_bytes(envelope.payload)
    (tmp_path / "signature.bin").write_bytes(envelope.signature.value)
    cert = x509.load_der_x509_certificate(envelope.signer_certificate)
    (tmp_path / "signer.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    shutil.copy(sm2_pki.ca_cert, tmp_path / "ca.pem")
    # The commands of docs/signature.md, "SM2 suite".
    script = """
set -e
openssl verify -CAfile ca.pem signer.pem
printf 'chuanyu.exchange.v1.Envelope\\n' > tbs.bin
openssl dgst -sha256 -binary header.bin >> tbs.bin
openssl dgst -sha256 -binary payload.bin >> tbs.bin
openssl x509 -in signer.pem -noout -pubkey > signer.pub
openssl pkeyutl -verify -pubin -inkey signer.pub -rawin -digest sm3 \\
    -pkeyopt distid:1234567812345678 -in tbs.bin -sigfile signature.bin
"""
    result = subprocess.run(
        ["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Signature Verified Successfully" in result.stdout


# --------------------------------------------------------------------------- CLI


@pytest.mark.parametrize("flag", ["--suite", "--signing-suite"])
def test_cli_init_with_the_sm2_suite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    directory = tmp_path / "certs"
    assert main(["certs", "init", str(directory), "--bureau", TONGLIANG, flag, "sm2-sm3"]) == 0
    out = capsys.readouterr().out
    assert "role=signing  suite=sm2-sm3  key_id=" in out
    assert isinstance(load_private_key(directory / TONGLIANG / "signing.key"), SM2PrivateKey)
    assert main(["certs", "show", str(directory)]) == 0
    assert "suite=sm2-sm3" in capsys.readouterr().out
