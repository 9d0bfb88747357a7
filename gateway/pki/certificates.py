"""What a certificate says: its bureau, key id, role, signing suite, expiry, revocation.

Pure functions on ``cryptography`` certificate objects, and the reasons a peer's
certificate is refused with.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.clock import utc_now
from gateway.errors import ConfigInvalid
from gateway.identifiers import check_division_code
from gateway.pki.der import (
    _public_spki,
    _spki_der,
    _verification_key,
)
from gateway.signing import (
    Ed25519Suite,
    SigningKey,
    SM2PublicKey,
    Sm2Sm3Suite,
)

BUREAU_URI_PREFIX = "urn:chuanyu:bureau:"
# Every bureau's TLS certificate also carries the DNS name ``<bureau>`` + this suffix.
# Partner channels verify that name (``grpc.ssl_target_name_override``) whatever address
# they dial, so a server holding another bureau's certificate fails the handshake.
BUREAU_DNS_SUFFIX = ".bureau.chuanyu.internal"

# Reasons carried by CertificateRejected (google.rpc.ErrorInfo.reason).
CERTIFICATE_MALFORMED = "CERTIFICATE_MALFORMED"
CERTIFICATE_UNTRUSTED = "CERTIFICATE_UNTRUSTED"
CERTIFICATE_EXPIRED = "CERTIFICATE_EXPIRED"
CERTIFICATE_NOT_YET_VALID = "CERTIFICATE_NOT_YET_VALID"
CERTIFICATE_USAGE = "CERTIFICATE_USAGE"
CERTIFICATE_NO_BUREAU = "CERTIFICATE_NO_BUREAU"
CERTIFICATE_REVOKED = "CERTIFICATE_REVOKED"
# Raised as ConfigInvalid, not CertificateRejected: our CRL is stale, not their certificate.
CRL_EXPIRED = "CRL_EXPIRED"

# The signing suites this PKI issues keys for (names as in gateway.signing.SUITES).
SIGNING_SUITES = (Ed25519Suite.name, Sm2Sm3Suite.name)

_TLS_EKUS = frozenset({ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH})

CertificateRole = Literal["ca", "tls", "signing", "other"]


def bureau_of(cert: x509.Certificate) -> str | None:
    """The bureau bound by ``cert``'s ``urn:chuanyu:bureau:`` URI SAN.

    ``None`` when there is no such SAN, when it does not carry a valid division
    code, or when the certificate names more than one bureau.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    bureaus: set[str] = set()
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if not uri.startswith(BUREAU_URI_PREFIX):
            continue
        code = uri[len(BUREAU_URI_PREFIX) :]
        if check_division_code(code) is not None:
            return None
        bureaus.add(code)
    if len(bureaus) != 1:
        return None
    return bureaus.pop()


def bureau_dns_name(bureau: str) -> str:
    """The DNS name that a bureau's TLS certificate carries and its partners verify."""
    return bureau + BUREAU_DNS_SUFFIX


def tls_name_problem(cert: x509.Certificate, bureau: str) -> str | None:
    """Why ``cert`` cannot serve as ``bureau``'s TLS certificate to its partners
    (``None``: it names that bureau, and no other, in its bureau DNS name)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return f"has no subject alternative names (it needs DNS name {bureau_dns_name(bureau)})"
    names = {
        name.lower()
        for name in san.get_values_for_type(x509.DNSName)
        if name.lower().endswith(BUREAU_DNS_SUFFIX)
    }
    if names == {bureau_dns_name(bureau)}:
        return None
    if not names:
        return f"lacks the bureau DNS name {bureau_dns_name(bureau)}"
    return (
        f"carries bureau DNS names {', '.join(sorted(names))}, not only {bureau_dns_name(bureau)}"
    )


def bureau_of_pem(pem: bytes) -> str | None:
    """The bureau of a PEM certificate, as a gRPC auth context hands over the TLS peer's.

    ``None`` when the bytes are not a certificate or it binds no bureau.
    """
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None
    return bureau_of(cert)


def key_id(cert: x509.Certificate) -> str:
    """The key id that travels with signatures: hex SHA-256 of the certificate's DER."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def is_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s name and key signed ``cert`` (no time or usage check)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def signing_suite_of(cert: x509.Certificate) -> str | None:
    """The signature suite a certificate's key signs with (``None``: not a signing key type)."""
    try:
        key = _verification_key(cert)
    except ValueError:
        return None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return Ed25519Suite.name
    if isinstance(key, SM2PublicKey):
        return Sm2Sm3Suite.name
    return None


def key_matches_certificate(cert: x509.Certificate, key: SigningKey) -> bool:
    """Whether ``key`` is the private half of ``cert``'s public key (any key type, SM2 too)."""
    try:
        return _public_spki(key) == _spki_der(cert)
    except ValueError:
        return False


def certificate_expiry(cert: x509.Certificate, now: dt.datetime) -> dt.timedelta:
    """Time left until ``cert`` expires at ``now`` (negative once it has expired)."""
    return cert.not_valid_after_utc - _aware(now)


def revocation_reason(
    crl: x509.CertificateRevocationList, cert: x509.Certificate
) -> x509.ReasonFlags | None:
    """Why ``crl`` revokes ``cert`` (``unspecified`` if it says not), or ``None`` if it does not.

    Only the serial number is compared: check first that the CRL and the
    certificate have the same issuer (:class:`SigningCertificateVerifier` does).
    """
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is None:
        return None
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except (x509.ExtensionNotFound, ValueError):
        return x509.ReasonFlags.unspecified


def certificate_role(cert: x509.Certificate) -> CertificateRole:
    """What a certificate is for, judged from its extensions (for display)."""
    try:
        extensions = cert.extensions
        basic = extensions.get_extension_for_class(x509.BasicConstraints).value
    except (x509.ExtensionNotFound, ValueError):
        return "other"
    if basic.ca:
        return "ca"
    if _tls_ekus(extensions):
        return "tls"
    usage = _key_usage(extensions)
    if usage is not None and usage.digital_signature:
        return "signing"
    return "other"


def _tls_ekus(extensions: x509.Extensions) -> frozenset[x509.ObjectIdentifier]:
    try:
        ekus = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return frozenset()
    return _TLS_EKUS.intersection(ekus)


def _key_usage(extensions: x509.Extensions) -> x509.KeyUsage | None:
    try:
        return extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _checked_bureau(bureau: str) -> str:
    problem = check_division_code(bureau)
    if problem is not None:
        raise ConfigInvalid(f"bureau id {bureau!r} is not a division code: {problem.message}")
    return bureau


# What pyca can raise while it parses a hostile certificate, lazily, part by part.
_HOSTILE_DER = (
    ValueError,
    TypeError,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    UnsupportedAlgorithm,
)


def _describe(cert: x509.Certificate) -> str:
    bureau = bureau_of(cert)
    return f"{cert.subject.rfc4514_string()} (bureau {bureau or 'unknown'})"


def _aware(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return utc_now()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now.astimezone(dt.UTC)
