"""Just enough DER to reach and replace a certificate's SubjectPublicKeyInfo.

pyca parses a certificate with an SM2 key but refuses to hand out the key itself,
and cannot put an SM2 key into a certificate it builds; these few functions do both.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from gateway.signing import (
    SigningKey,
    SM2PrivateKey,
    SM2PublicKey,
    VerificationKey,
)

# DER, just enough to reach the SubjectPublicKeyInfo of a certificate: pyca parses
# a certificate with an SM2 key but refuses to hand out the key itself.


def _der_item(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of content, end) of the DER element at ``at`` (one-byte tags)."""
    if at + 2 > len(data):
        raise ValueError("truncated DER")
    tag, first = data[at], data[at + 1]
    if first < 0x80:
        length, start = first, at + 2
    else:
        size = first & 0x7F
        if not 0 < size <= 4 or at + 2 + size > len(data):
            raise ValueError("bad DER length")
        length, start = int.from_bytes(data[at + 2 : at + 2 + size], "big"), at + 2 + size
    end = start + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, start, end


def _der_children(data: bytes) -> list[bytes]:
    """The encoded elements inside the constructed DER value ``data``."""
    _, at, end = _der_item(data, 0)
    children: list[bytes] = []
    while at < end:
        _, _, child_end = _der_item(data, at)
        children.append(data[at:child_end])
        at = child_end
    return children


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _spki_index(tbs_children: list[bytes]) -> int:
    # TBSCertificate: [0] version (optional), serial, signature, issuer, validity,
    # subject, subjectPublicKeyInfo, ...
    return 6 if tbs_children and tbs_children[0][0] == 0xA0 else 5


def _spki_der(cert: x509.Certificate) -> bytes:
    """The certificate's SubjectPublicKeyInfo, DER, whatever the key type."""
    children = _der_children(cert.tbs_certificate_bytes)
    index = _spki_index(children)
    if len(children) <= index:
        raise ValueError("TBSCertificate has no SubjectPublicKeyInfo")
    return children[index]


def _verification_key(cert: x509.Certificate) -> VerificationKey:
    """The certificate's public key as a signature suite takes it; :class:`ValueError` if none."""
    try:
        return cert.public_key()
    except UnsupportedAlgorithm:
        # pyca knows no SM2 curve; Tongsuo does. Anything else stays unsupported.
        return SM2PublicKey.from_spki_der(_spki_der(cert))


def _public_spki(key: SigningKey) -> bytes:
    if isinstance(key, SM2PrivateKey):
        return key.public_key().spki_der()
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _sm2_subject_key_id(spki: bytes) -> x509.SubjectKeyIdentifier:
    # RFC 5280 §4.2.1.2 method 1, as pyca computes it for its own keys: SHA-1 of the
    # subjectPublicKey BIT STRING's value (without the unused-bits byte).
    bit_string = _der_children(spki)[1]
    _, start, end = _der_item(bit_string, 0)
    return x509.SubjectKeyIdentifier(
        hashlib.sha1(bit_string[start + 1 : end], usedforsecurity=False).digest()
    )
