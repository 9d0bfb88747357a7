"""Reading certificates, private keys and CRLs from files."""

from __future__ import annotations

import re
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from gateway.errors import ConfigInvalid
from gateway.signing import (
    SigningKey,
    SM2PrivateKey,
)

_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigInvalid(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (e.g. CA certificates during a rotation)."""
    data = _read(path, "certificate file")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigInvalid(f"{path} holds no valid PEM certificate: {exc}") from exc
    return certs


def load_certificate(path: Path) -> x509.Certificate:
    """The one certificate in a PEM (or DER) file."""
    data = _read(path, "certificate file")
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise ConfigInvalid(f"{path} is not a valid certificate: {exc}") from exc


def load_private_key(path: Path) -> SigningKey:
    """An unencrypted PEM private key: a pyca key, or an :class:`SM2PrivateKey`."""
    data = _read(path, "private key file")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except UnsupportedAlgorithm as exc:
        # pyca refuses the SM2 curve; Tongsuo reads the same PKCS#8 file.
        try:
            return SM2PrivateKey.from_pem(data)
        except ValueError:
            pass
        raise ConfigInvalid(f"{path} is not a usable unencrypted PEM private key: {exc}") from exc
    except (ValueError, TypeError) as exc:
        raise ConfigInvalid(f"{path} is not a usable unencrypted PEM private key: {exc}") from exc


def load_crls(path: Path) -> list[x509.CertificateRevocationList]:
    """Every CRL in a file: one DER CRL, or one or more PEM CRLs."""
    data = _read(path, "CRL file")
    try:
        if b"-----BEGIN" not in data:
            return [x509.load_der_x509_crl(data)]
        blocks = _PEM_CRL.findall(data)
        if not blocks:
            raise ValueError("no -----BEGIN X509 CRL----- block")
        return [x509.load_pem_x509_crl(block) for block in blocks]
    except ValueError as exc:
        raise ConfigInvalid(f"{path} holds no valid CRL: {exc}") from exc
