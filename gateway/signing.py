"""Signature suites and the exact bytes they sign.

The to-be-signed bytes are a domain label followed by the SHA-256 of each signed
part, in order (docs/signature.md)::

    tbs(envelope) = b"chuanyu.exchange.v1.Envelope\\n" || SHA-256(header) || SHA-256(payload)
    tbs(receipt)  = b"chuanyu.exchange.v1.Receipt\\n"  || SHA-256(body)

Hashing each part first keeps the framing unambiguous (every digest is 32
bytes) and lets a third party rebuild the input with ``openssl dgst`` and
``cat``. A suite is chosen by name; the name and the key id travel with every
signature, so a second suite (SM2) or a rotated key needs no wire change.

Two suites exist:

- ``ed25519``: pure Ed25519 (RFC 8032) over ``tbs``, with pyca ``cryptography``.
- ``sm2-sm3``: SM2 (GB/T 32918) with SM3, the standard construction
  ``e = SM3(Z || tbs)`` where ``Z`` hashes the user id :data:`SM2_USER_ID` and the
  public key; the signature is DER ``SEQUENCE {r, s}`` (GB/T 35276). pyca has no
  SM2, so this suite runs on ``tongsuopy`` (bindings to the Tongsuo C library);
  its keys are wrapped in :class:`SM2PrivateKey` / :class:`SM2PublicKey` so no
  ``tongsuopy`` type or exception leaves this module.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from tongsuopy.crypto import exceptions as _tongsuo_exceptions  # type: ignore[import-untyped]
from tongsuopy.crypto import hashes as _tongsuo_hashes
from tongsuopy.crypto import serialization as _tongsuo_serialization
from tongsuopy.crypto.asymciphers import ec as _tongsuo_ec  # type: ignore[import-untyped]

from gateway.errors import ConfigInvalid, SignatureInvalid

__all__ = [
    "ENVELOPE_LABEL",
    "RECEIPT_LABEL",
    "SM2_CURVE_OID",
    "SM2_USER_ID",
    "SUITES",
    "Ed25519Suite",
    "SM2PrivateKey",
    "SM2PublicKey",
    "SignatureSuite",
    "Signer",
    "SigningKey",
    "Sm2Sm3Suite",
    "VerificationKey",
    "sha256",
    "signing_input",
    "suite_named",
]

ENVELOPE_LABEL = b"chuanyu.exchange.v1.Envelope\n"
RECEIPT_LABEL = b"chuanyu.exchange.v1.Receipt\n"

# GB/T 35276-2017 §7 default signer id. Both ends must use the same one: it is
# hashed into Z, so a different id makes every signature fail. Tongsuo applies
# exactly this id when none is set, and tongsuopy offers no way to set another,
# so it is fixed for the cooperation rather than configurable.
SM2_USER_ID = b"1234567812345678"
# The SM2 curve (GM/T 0006): in a SubjectPublicKeyInfo it is the parameter of
# id-ecPublicKey, which is how pyca, OpenSSL and Tongsuo all write it.
SM2_CURVE_OID = "1.2.156.10197.1.301"

# r and s are below the 256-bit group order: each INTEGER is at most 33 content
# bytes (a leading zero keeps it positive), so a DER signature is at most 72 bytes.
_SM2_MAX_INTEGER = 33


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def signing_input(label: bytes, *parts: bytes) -> bytes:
    """The bytes a signature covers: ``label`` then the SHA-256 of each part."""
    return label + b"".join(sha256(p) for p in parts)


class SignatureSuite(Protocol):
    """A signature algorithm the gateway can sign and verify with."""

    name: str

    def check_private_key(self, key: SigningKey) -> None:
        """Raise ``ConfigInvalid`` unless ``key`` suits this suite."""

    def sign(self, key: SigningKey, data: bytes) -> bytes: ...

    def verify(self, key: VerificationKey, signature: bytes, data: bytes) -> None:
        """Raise ``SignatureInvalid`` unless ``signature`` is valid for ``data``.

        ``key`` is the public key of a verified signing certificate
        (:attr:`gateway.pki.VerifiedSigner.public_key`).
        """


class Ed25519Suite:
    """Ed25519 (RFC 8032), pure mode: the signature covers the to-be-signed bytes."""

    name = "ed25519"

    def check_private_key(self, key: SigningKey) -> None:
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigInvalid(f"suite {self.name} needs an Ed25519 key, got {type(key).__name__}")

    def sign(self, key: SigningKey, data: bytes) -> bytes:
        self.check_private_key(key)
        assert isinstance(key, Ed25519PrivateKey)
        return key.sign(data)

    def verify(self, key: VerificationKey, signature: bytes, data: bytes) -> None:
        if not isinstance(key, Ed25519PublicKey):
            raise SignatureInvalid(
                f"suite {self.name} needs an Ed25519 certificate, got {type(key).__name__}",
                reason="SIGNATURE_SUITE_KEY_MISMATCH",
            )
        try:
            key.verify(signature, data)
        except InvalidSignature:
            raise SignatureInvalid("signature does not verify") from None


# --------------------------------------------------------------------------- SM2


def _sm2_algorithm() -> Any:
    # ECDSA(SM3) on an SM2 key is Tongsuo's SM2 signature: EVP_DigestSign computes
    # SM3(Z || message) with the default user id and runs the SM2 scheme (not ECDSA),
    # because tongsuopy marks every SM2-curve key with the EVP_PKEY_SM2 alias.
    return _tongsuo_ec.ECDSA(_tongsuo_hashes.SM3())


def _is_sm2(key: Any) -> bool:
    return isinstance(key.curve, _tongsuo_ec.SM2)


class SM2PublicKey:
    """An SM2 public key (Tongsuo underneath). Build it with :meth:`from_spki_der`."""

    __slots__ = ("_key",)

    def __init__(self, key: Any) -> None:
        self._key = key

    @classmethod
    def from_spki_der(cls, data: bytes) -> SM2PublicKey:
        """Load a DER SubjectPublicKeyInfo; :class:`ValueError` unless it is an SM2 key."""
        try:
            key = _tongsuo_serialization.load_der_public_key(data)
        except (ValueError, TypeError, _tongsuo_exceptions.UnsupportedAlgorithm) as exc:
            raise ValueError(f"not an SM2 public key: {exc}") from None
        if not isinstance(key, _tongsuo_ec.EllipticCurvePublicKey) or not _is_sm2(key):
            raise ValueError("not an SM2 public key")
        return cls(key)

    def spki_der(self) -> bytes:
        """The DER SubjectPublicKeyInfo (id-ecPublicKey with the SM2 curve)."""
        data: bytes = self._key.public_bytes(
            _tongsuo_serialization.Encoding.DER,
            _tongsuo_serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        return data

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raise :class:`SignatureInvalid` unless ``signature`` is SM2-with-SM3 over ``data``."""
        # Tongsuo reports a malformed signature as an internal error, not as a bad
        # signature; check the DER shape first so peer garbage is plainly refused.
        if not _is_der_signature(signature):
            raise SignatureInvalid("SM2 signature is not a DER SEQUENCE of two integers")
        try:
            self._key.verify(signature, data, _sm2_algorithm())
        except _tongsuo_exceptions.InvalidSignature:
            raise SignatureInvalid("signature does not verify") from None
        except _tongsuo_exceptions.InternalError:
            raise SignatureInvalid("SM2 signature could not be checked") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SM2PublicKey) and other.spki_der() == self.spki_der()

    def __hash__(self) -> int:
        return hash(self.spki_der())

    def __repr__(self) -> str:
        return f"SM2PublicKey({hashlib.sha256(self.spki_der()).hexdigest()[:16]}…)"


class SM2PrivateKey:
    """An SM2 private key (Tongsuo underneath); its nonces come from Tongsuo's CSPRNG."""

    __slots__ = ("_key",)

    def __init__(self, key: Any) -> None:
        self._key = key

    @classmethod
    def generate(cls) -> SM2PrivateKey:
        return cls(_tongsuo_ec.generate_private_key(_tongsuo_ec.SM2()))

    @classmethod
    def from_pem(cls, data: bytes) -> SM2PrivateKey:
        """Load an unencrypted PEM key; :class:`ValueError` unless it is an SM2 key."""
        try:
            key = _tongsuo_serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, _tongsuo_exceptions.UnsupportedAlgorithm) as exc:
            raise ValueError(f"not an SM2 private key: {exc}") from None
        if not isinstance(key, _tongsuo_ec.EllipticCurvePrivateKey) or not _is_sm2(key):
            raise ValueError("not an SM2 private key")
        return cls(key)

    def to_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM, as every key of the development PKI is stored."""
        data: bytes = self._key.private_bytes(
            _tongsuo_serialization.Encoding.PEM,
            _tongsuo_serialization.PrivateFormat.PKCS8,
            _tongsuo_serialization.NoEncryption(),
        )
        return data

    def public_key(self) -> SM2PublicKey:
        return SM2PublicKey(self._key.public_key())

    def sign(self, data: bytes) -> bytes:
        """SM2 with SM3 over ``data`` (user id :data:`SM2_USER_ID`): DER ``{r, s}``."""
        signature: bytes = self._key.sign(data, _sm2_algorithm())
        return signature

    def __repr__(self) -> str:
        return "SM2PrivateKey(…)"


# What a suite signs with and verifies with: pyca's key types, plus SM2 (which
# pyca cannot represent). Defined after the SM2 classes they name.
SigningKey: TypeAlias = PrivateKeyTypes | SM2PrivateKey
VerificationKey: TypeAlias = CertificatePublicKeyTypes | SM2PublicKey


def _der_length(data: bytes, at: int) -> tuple[int, int] | None:
    """The (length, offset of the content) of the DER length at ``at``, minimal form only."""
    if at >= len(data):
        return None
    first = data[at]
    if first < 0x80:
        return first, at + 1
    if first == 0x81 and at + 1 < len(data) and data[at + 1] >= 0x80:
        return data[at + 1], at + 2
    return None


def _is_der_signature(signature: bytes) -> bool:
    """Whether ``signature`` is ``SEQUENCE { INTEGER r, INTEGER s }`` in minimal DER, r, s > 0."""
    if len(signature) < 8 or signature[0] != 0x30:
        return False
    outer = _der_length(signature, 1)
    if outer is None or outer[1] + outer[0] != len(signature):
        return False
    at = outer[1]
    for _ in range(2):
        if at >= len(signature) or signature[at] != 0x02:
            return False
        parsed = _der_length(signature, at + 1)
        if parsed is None:
            return False
        size, start = parsed
        value = signature[start : start + size]
        if not 0 < size <= _SM2_MAX_INTEGER or len(value) != size:
            return False
        if value[0] & 0x80:  # negative
            return False
        if size > 1 and value[0] == 0 and not value[1] & 0x80:  # non-minimal
            return False
        if not any(value):
            return False
        at = start + size
    return at == len(signature)


class Sm2Sm3Suite:
    """SM2 signatures with SM3 (GB/T 32918.2, GB/T 35276) over the to-be-signed bytes.

    The to-be-signed bytes are the same as for every suite; SM2 then hashes them
    with SM3 together with ``Z`` (user id :data:`SM2_USER_ID` and the public key),
    so ``openssl pkeyutl -rawin -digest sm3 -pkeyopt distid:1234567812345678``
    verifies a signature (docs/signature.md, "SM2 suite").
    """

    name = "sm2-sm3"

    def check_private_key(self, key: SigningKey) -> None:
        if not isinstance(key, SM2PrivateKey):
            raise ConfigInvalid(f"suite {self.name} needs an SM2 key, got {type(key).__name__}")

    def sign(self, key: SigningKey, data: bytes) -> bytes:
        self.check_private_key(key)
        assert isinstance(key, SM2PrivateKey)
        return key.sign(data)

    def verify(self, key: VerificationKey, signature: bytes, data: bytes) -> None:
        if not isinstance(key, SM2PublicKey):
            raise SignatureInvalid(
                f"suite {self.name} needs an SM2 certificate, got {type(key).__name__}",
                reason="SIGNATURE_SUITE_KEY_MISMATCH",
            )
        key.verify(signature, data)


SUITES: dict[str, SignatureSuite] = {
    Ed25519Suite.name: Ed25519Suite(),
    Sm2Sm3Suite.name: Sm2Sm3Suite(),
}


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
    private_key: SigningKey
    certificate_der: bytes
    key_id: str

    def sign(self, label: bytes, *parts: bytes) -> bytes:
        return self.suite.sign(self.private_key, signing_input(label, *parts))
