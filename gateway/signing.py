"""Signature suites and the exact bytes they sign.

The to-be-signed bytes are a domain label followed by the SHA-256 of each signed
part, in order (docs/signature.md)::

    tbs(envelope) = b"chuanyu.exchange.v1.Envelope\\n" || SHA-256(header) || SHA-256(payload)
    tbs(receipt)  = b"chuanyu.exchange.v1.Receipt\\n"  || SHA-256(body)

Hashing each part first keeps the framing unambiguous (every digest is 32
bytes) and lets a third party rebuild the input with ``openssl dgst`` and
``cat``. A suite is chosen by name; the name and the key id travel with every
signature, so a second suite (SM2) or a rotated key needs no wire change.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)

from gateway.errors import ConfigInvalid, SignatureInvalid

__all__ = [
    "ENVELOPE_LABEL",
    "RECEIPT_LABEL",
    "SUITES",
    "Ed25519Suite",
    "SignatureSuite",
    "Signer",
    "sha256",
    "signing_input",
    "suite_named",
]

ENVELOPE_LABEL = b"chuanyu.exchange.v1.Envelope\n"
RECEIPT_LABEL = b"chuanyu.exchange.v1.Receipt\n"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def signing_input(label: bytes, *parts: bytes) -> bytes:
    """The bytes a signature covers: ``label`` then the SHA-256 of each part."""
    return label + b"".join(sha256(p) for p in parts)


class SignatureSuite(Protocol):
    """A signature algorithm the gateway can sign and verify with."""

    name: str

    def check_private_key(self, key: PrivateKeyTypes) -> None:
        """Raise ``ConfigInvalid`` unless ``key`` suits this suite."""

    def sign(self, key: PrivateKeyTypes, data: bytes) -> bytes: ...

    def verify(self, key: CertificatePublicKeyTypes, signature: bytes, data: bytes) -> None:
        """Raise ``SignatureInvalid`` unless ``signature`` is valid for ``data``."""


class Ed25519Suite:
    """Ed25519 (RFC 8032), pure mode: the signature covers the to-be-signed bytes."""

    name = "ed25519"

    def check_private_key(self, key: PrivateKeyTypes) -> None:
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigInvalid(f"suite {self.name} needs an Ed25519 key, got {type(key).__name__}")

    def sign(self, key: PrivateKeyTypes, data: bytes) -> bytes:
        self.check_private_key(key)
        assert isinstance(key, Ed25519PrivateKey)
        return key.sign(data)

    def verify(self, key: CertificatePublicKeyTypes, signature: bytes, data: bytes) -> None:
        if not isinstance(key, Ed25519PublicKey):
            raise SignatureInvalid(
                f"suite {self.name} needs an Ed25519 certificate, got {type(key).__name__}",
                reason="SIGNATURE_SUITE_KEY_MISMATCH",
            )
        try:
            key.verify(signature, data)
        except InvalidSignature:
            raise SignatureInvalid("signature does not verify") from None


SUITES: dict[str, SignatureSuite] = {Ed25519Suite.name: Ed25519Suite()}


def suite_named(name: str) -> SignatureSuite:
    try:
        return SUITES[name]
    except KeyError:
        known = ", ".join(sorted(SUITES))
        raise SignatureInvalid(
            f"unsupported signature suite {name!r} (supported: {known})",
            reason="SIGNATURE_SUITE_UNSUPPORTED",
        ) from None


@dataclass(frozen=True, slots=True)
class Signer:
    """A bureau's signing identity: its key, certificate, suite and key id."""

    bureau: str
    suite: SignatureSuite
    private_key: PrivateKeyTypes
    certificate_der: bytes
    key_id: str

    def sign(self, label: bytes, *parts: bytes) -> bytes:
        return self.suite.sign(self.private_key, signing_input(label, *parts))
