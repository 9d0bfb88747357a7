"""The cooperation CA: its certificate, its key (read only when needed), how it signs.

Also how a certificate for an SM2 key is issued, which pyca cannot build itself.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from gateway.errors import ConfigInvalid
from gateway.files import write_atomically
from gateway.pki.certificates import (
    certificate_role,
    is_issued_by,
    key_matches_certificate,
)
from gateway.pki.der import (
    _der,
    _der_children,
    _spki_der,
    _spki_index,
)
from gateway.pki.layout import PkiLayout
from gateway.pki.loading import (
    load_certificate,
    load_private_key,
)
from gateway.signing import (
    SigningKey,
    SM2PrivateKey,
)

_ORGANIZATION = "Chuanyu Cooperation"
_CA_COMMON_NAME = "Chuanyu Cooperation Root CA"
_CA_VALID_DAYS = 3650
# Certificates start a little in the past so that a partner whose clock runs
# slightly behind ours still accepts them straight after `certs init`.
_BACKDATE = dt.timedelta(minutes=5)


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` with ``data``; the file never exists with other bytes or mode."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data, mode=mode)
    except OSError as exc:
        raise ConfigInvalid(f"cannot write {path}: {exc.strerror or exc}") from exc


def _write_key(path: Path, key: SigningKey) -> None:
    if isinstance(key, SM2PrivateKey):
        pem = key.to_pem()
    else:
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    _write_atomically(path, pem, mode=0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    _write_atomically(path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _matches(cert: x509.Certificate, key: SigningKey) -> bool:
    return key_matches_certificate(cert, key)


def _hash_for(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return hashes.SHA256()


def _sign_tbs(key: CertificateIssuerPrivateKeyTypes, tbs: bytes) -> bytes:
    """Sign TBS bytes exactly as ``CertificateBuilder.sign(key, _hash_for(key))`` would."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return key.sign(tbs)
    raise ConfigInvalid(f"CA key type {type(key).__name__} cannot sign certificates")


class _Issuer:
    """The CA certificate, with its private key read only when something must be issued."""

    def __init__(
        self,
        layout: PkiLayout,
        cert: x509.Certificate,
        key: CertificateIssuerPrivateKeyTypes | None,
    ) -> None:
        self.layout = layout
        self.cert = cert
        self._key = key

    @property
    def key(self) -> CertificateIssuerPrivateKeyTypes:
        if self._key is None:
            path = self.layout.ca_key
            if not path.exists():
                raise ConfigInvalid(f"cannot issue certificates: CA private key {path} is missing")
            key = load_private_key(path)
            if not isinstance(
                key,
                ec.EllipticCurvePrivateKey
                | rsa.RSAPrivateKey
                | ed25519.Ed25519PrivateKey
                | ed448.Ed448PrivateKey,
            ):
                raise ConfigInvalid(f"CA private key {path} cannot sign certificates")
            if not _matches(self.cert, key):
                raise ConfigInvalid(
                    f"CA private key {path} does not belong to {self.layout.ca_cert}"
                )
            self._key = key
        return self._key

    def sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        key = self.key
        return builder.sign(key, _hash_for(key))

    def sign_crl(
        self, builder: x509.CertificateRevocationListBuilder
    ) -> x509.CertificateRevocationList:
        key = self.key
        return builder.sign(key, _hash_for(key))


def _issue_for_foreign_key(
    issuer: _Issuer, builder: x509.CertificateBuilder, spki: bytes
) -> x509.Certificate:
    """Issue ``builder`` (made with a placeholder key) for the key in ``spki`` (DER).

    pyca can only put its own key types in a certificate, so the builder is signed
    once with a throw-away P-256 placeholder to get a well-formed TBSCertificate;
    its SubjectPublicKeyInfo is swapped for ``spki`` and the result signed again
    with the CA key, with the signature algorithm pyca chose. The extensions (SKI
    included) must already describe the real key.
    """
    template = issuer.sign(builder)
    tbs_children = _der_children(template.tbs_certificate_bytes)
    tbs_children[_spki_index(tbs_children)] = spki
    tbs = _der(0x30, b"".join(tbs_children))
    signature_algorithm = _der_children(template.public_bytes(serialization.Encoding.DER))[1]
    signature = _der(0x03, b"\x00" + _sign_tbs(issuer.key, tbs))
    cert = x509.load_der_x509_certificate(_der(0x30, tbs + signature_algorithm + signature))
    if not is_issued_by(cert, issuer.cert) or _spki_der(cert) != spki:
        raise ConfigInvalid("could not issue a certificate for a foreign key type")  # a bug
    return cert


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
        ]
    )


def _self_signed_ca(key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(_CA_COMMON_NAME))
        .issuer_name(_name(_CA_COMMON_NAME))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=_CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def _load_ca_certificate(path: Path) -> x509.Certificate:
    cert = load_certificate(path)
    if certificate_role(cert) != "ca":
        raise ConfigInvalid(f"{path} is not a CA certificate")
    return cert


def _check_valid_days(valid_days: int) -> None:
    if valid_days <= 0:
        raise ConfigInvalid(f"validity must be at least one day, got {valid_days}")


def _ensure_ca(layout: PkiLayout, now: dt.datetime, created: list[Path]) -> _Issuer:
    cert_exists, key_exists = layout.ca_cert.exists(), layout.ca_key.exists()
    if cert_exists:
        return _Issuer(layout, _load_ca_certificate(layout.ca_cert), None)
    if key_exists:
        loaded = load_private_key(layout.ca_key)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ConfigInvalid(f"{layout.ca_key} is not an ECDSA private key")
        key = loaded
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        _write_key(layout.ca_key, key)
        created.append(layout.ca_key)
    cert = _self_signed_ca(key, now)
    _write_cert(layout.ca_cert, cert)
    created.append(layout.ca_cert)
    return _Issuer(layout, cert, key)
