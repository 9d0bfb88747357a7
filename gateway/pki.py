"""The cooperation PKI: dev certificates, loading, and signing-certificate checks.

A cooperation root CA issues every bureau two certificates, both binding the
bureau's division code in a URI subject alternative name
(``urn:chuanyu:bureau:500151``):

- a **TLS** certificate (ECDSA P-256, serverAuth + clientAuth) for mutual-TLS gRPC;
- a **signing** certificate (Ed25519 or SM2, digitalSignature + contentCommitment,
  no TLS extended key usage) for envelopes and receipts.

Layout of a PKI directory made by :func:`init_pki` (and grown by
:func:`revoke_certificate`, :func:`issue_crl` and :func:`rotate_signing_key`)::

    DIR/ca.pem, DIR/ca.key
    DIR/crl.pem                                   revoked serials, signed by the CA
    DIR/<bureau>/tls.pem, DIR/<bureau>/tls.key
    DIR/<bureau>/signing.pem, DIR/<bureau>/signing.key              the key in use
    DIR/<bureau>/signing-previous.pem, signing-previous.key          the one before it
    DIR/<bureau>/signing-<keyid8>.pem, signing-<keyid8>.key          every key, by key id

The CA stays ECDSA P-256 whatever the signing suite: an SM2 signing certificate
is an ECDSA-signed certificate carrying an SM2 public key. pyca ``cryptography``
cannot build one (it has no SM2 key type), so :func:`_issue_for_foreign_key`
builds it with a placeholder key and swaps the SubjectPublicKeyInfo before the CA
signs the TBSCertificate; pyca, Tongsuo and ``openssl verify`` all accept the result.

Private keys are unencrypted PKCS#8 PEM with mode 0600: they are development keys
made on the machine that uses them and are never committed.

The module has two halves. :func:`init_pki`, :func:`issue_signing_certificate`,
:func:`rotate_signing_key`, :func:`revoke_certificate`, :func:`issue_crl`,
:func:`expiring_certificates` and the ``load_*`` functions read and write files and
report problems as :class:`~gateway.errors.ConfigInvalid`. Everything else —
:class:`SigningCertificateVerifier`, :func:`bureau_of`, :func:`key_id`,
:func:`certificate_expiry` — works on bytes and certificate objects only and
reports a peer's bad certificate as :class:`~gateway.errors.CertificateRejected`
with one of the ``CERTIFICATE_*`` reasons below. No ``cryptography`` exception
escapes this module.

Revocation fails closed: once a configured CRL is past its next-update, every
certificate of its CA is refused with ``CRL_EXPIRED`` (a
:class:`~gateway.errors.ConfigInvalid`, our fault: the cure is a fresh CRL, not a
change by the peer) until a fresh CRL is loaded. A stale CRL cannot tell a
compromised signing key from a good one, and the records are non-repudiable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.errors import CertificateRejected, ConfigInvalid
from gateway.identifiers import check_division_code
from gateway.signing import (
    Ed25519Suite,
    SigningKey,
    SM2PrivateKey,
    SM2PublicKey,
    Sm2Sm3Suite,
    VerificationKey,
)

__all__ = [
    "BUREAU_URI_PREFIX",
    "CERTIFICATE_EXPIRED",
    "CERTIFICATE_MALFORMED",
    "CERTIFICATE_NOT_YET_VALID",
    "CERTIFICATE_NO_BUREAU",
    "CERTIFICATE_REVOKED",
    "CERTIFICATE_UNTRUSTED",
    "CERTIFICATE_USAGE",
    "CRL_EXPIRED",
    "SIGNING_SUITES",
    "BureauPaths",
    "CertificateExpiry",
    "CertificateRole",
    "PkiLayout",
    "RotatedSigningKey",
    "SigningCertificateVerifier",
    "VerifiedSigner",
    "bureau_of",
    "bureau_of_pem",
    "certificate_expiry",
    "certificate_role",
    "expiring_certificates",
    "init_pki",
    "is_crl_issued_by",
    "is_issued_by",
    "issue_crl",
    "issue_signing_certificate",
    "key_id",
    "key_matches_certificate",
    "load_certificate",
    "load_certificates",
    "load_crls",
    "load_private_key",
    "revocation_reason",
    "revoke_certificate",
    "rotate_signing_key",
    "signing_suite_of",
]

BUREAU_URI_PREFIX = "urn:chuanyu:bureau:"

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

_ORGANIZATION = "Chuanyu Cooperation"
_CA_COMMON_NAME = "Chuanyu Cooperation Root CA"
_CA_VALID_DAYS = 3650
# Certificates start a little in the past so that a partner whose clock runs
# slightly behind ours still accepts them straight after `certs init`.
_BACKDATE = dt.timedelta(minutes=5)
_TLS_EKUS = frozenset({ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH})
_CACHE_SIZE = 256
_CRL_VALID_DAYS = 30
_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)

CertificateRole = Literal["ca", "tls", "signing", "other"]


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class BureauPaths:
    """Where one bureau's certificates and private keys live."""

    tls_cert: Path
    tls_key: Path
    signing_cert: Path
    signing_key: Path
    # The signing pair replaced by the last rotation; still valid until it expires.
    previous_signing_cert: Path
    previous_signing_key: Path


@dataclass(frozen=True)
class PkiLayout:
    """The files of a PKI directory.

    ``created`` lists, in creation order, the files the :func:`init_pki` call
    that returned this layout wrote (empty when everything already existed).
    """

    directory: Path
    ca_cert: Path
    ca_key: Path
    created: tuple[Path, ...] = field(default=(), compare=False)

    @classmethod
    def at(cls, directory: Path) -> PkiLayout:
        """The layout rooted at ``directory`` (touches no file)."""
        return cls(directory=directory, ca_cert=directory / "ca.pem", ca_key=directory / "ca.key")

    @property
    def crl(self) -> Path:
        """The CA's certificate revocation list."""
        return self.directory / "crl.pem"

    def bureau(self, bureau: str) -> BureauPaths:
        """The paths of ``bureau``'s files; the bureau id must be a division code."""
        folder = self.directory / _checked_bureau(bureau)
        return BureauPaths(
            tls_cert=folder / "tls.pem",
            tls_key=folder / "tls.key",
            signing_cert=folder / "signing.pem",
            signing_key=folder / "signing.key",
            previous_signing_cert=folder / "signing-previous.pem",
            previous_signing_key=folder / "signing-previous.key",
        )


# --------------------------------------------------------------------------- pure helpers


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
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now.astimezone(dt.UTC)


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class VerifiedSigner:
    """A signing certificate that chains to a cooperation CA and binds a bureau.

    ``public_key`` is what :meth:`gateway.signing.SignatureSuite.verify` takes: a
    pyca public key, or a :class:`~gateway.signing.SM2PublicKey` for SM2
    certificates (pyca cannot load SM2 keys).
    """

    bureau: str
    key_id: str
    public_key: VerificationKey
    not_after: dt.datetime
    certificate: x509.Certificate


@dataclass(frozen=True)
class _Trusted:
    signer: VerifiedSigner
    issuer: x509.Certificate


@dataclass(frozen=True)
class _TlsPeer:
    cert: x509.Certificate
    issuer: x509.Certificate | None


@dataclass(frozen=True)
class _Revocations:
    """What the CRLs of one CA say: the revoked serials and until when that is known."""

    serials: frozenset[int]
    next_update: dt.datetime | None


class SigningCertificateVerifier:
    """Checks a peer's signing certificate against the cooperation CAs and their CRLs.

    Pure: it takes DER bytes and a time and returns a :class:`VerifiedSigner` or
    raises :class:`~gateway.errors.CertificateRejected`. The time-independent part
    (parsing, chain, usage, bureau) is cached by DER digest; validity periods of the
    certificate and its issuer, and revocation, are checked against ``now`` on every
    call, so :meth:`set_crls` takes effect at once. Safe to share between threads.

    ``crls`` must each be signed by one of the CAs (else ``ConfigInvalid``). A CA
    without a CRL is not checked for revocation; a CA whose CRLs are all past their
    next-update fails closed (``CRL_EXPIRED``, see the module docstring).
    """

    def __init__(
        self,
        ca_certificates: Sequence[x509.Certificate],
        *,
        crls: Sequence[x509.CertificateRevocationList] = (),
        cache_size: int = _CACHE_SIZE,
    ) -> None:
        if not ca_certificates:
            raise ConfigInvalid("no cooperation CA certificate configured")
        for ca in ca_certificates:
            if certificate_role(ca) != "ca":
                raise ConfigInvalid(
                    f"trust anchor {ca.subject.rfc4514_string()} is not a CA certificate"
                )
        self._cas = tuple(ca_certificates)
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, _Trusted] = OrderedDict()
        self._tls_cache: OrderedDict[bytes, _TlsPeer] = OrderedDict()
        self._lock = threading.Lock()
        self._revocations = _index_crls(self._cas, crls)

    def set_crls(self, crls: Sequence[x509.CertificateRevocationList]) -> None:
        """Replace the CRLs (after a reload); checked like the constructor's."""
        revocations = _index_crls(self._cas, crls)
        with self._lock:
            self._revocations = revocations

    def verify(self, der: bytes, *, now: dt.datetime) -> VerifiedSigner:
        """Accept ``der`` as a signing certificate valid at ``now`` or raise.

        Reasons: ``CERTIFICATE_MALFORMED``, ``CERTIFICATE_UNTRUSTED``,
        ``CERTIFICATE_USAGE``, ``CERTIFICATE_NO_BUREAU``, ``CERTIFICATE_EXPIRED``,
        ``CERTIFICATE_NOT_YET_VALID``, ``CERTIFICATE_REVOKED``; ``ConfigInvalid``
        with ``CRL_EXPIRED`` when the issuer's CRL is stale. ``now`` must be
        timezone-aware (a naive datetime is a programming error: :class:`ValueError`).
        """
        now = _aware(now)
        digest = hashlib.sha256(der).digest()
        with self._lock:
            trusted = self._cache.get(digest)
            if trusted is not None:
                self._cache.move_to_end(digest)
        if trusted is None:
            try:
                trusted = self._check_static(der)
            except _HOSTILE_DER as exc:
                # pyca parses lazily: a malformed part may surface at any attribute.
                raise CertificateRejected(
                    f"signing certificate is malformed: {type(exc).__name__}: {exc}"[:300],
                    reason=CERTIFICATE_MALFORMED,
                ) from exc
            with self._lock:
                self._cache[digest] = trusted
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        _check_period(trusted.signer.certificate, now, what="signing certificate")
        _check_period(trusted.issuer, now, what="issuing CA certificate")
        self._check_revocation(
            trusted.signer.certificate, trusted.issuer, now, what="signing certificate"
        )
        return trusted.signer

    def check_tls_peer(self, pem: bytes, *, now: dt.datetime) -> None:
        """Refuse a TLS peer certificate (PEM, as the gRPC auth context gives it) if revoked.

        The TLS handshake has already checked the chain and validity period; this
        adds what gRPC cannot: the CRL. Reasons: ``CERTIFICATE_MALFORMED``,
        ``CERTIFICATE_UNTRUSTED`` (not issued by a configured CA),
        ``CERTIFICATE_REVOKED``; ``ConfigInvalid`` with ``CRL_EXPIRED``.
        """
        now = _aware(now)
        digest = hashlib.sha256(pem).digest()
        with self._lock:
            peer = self._tls_cache.get(digest)
            if peer is not None:
                self._tls_cache.move_to_end(digest)
        if peer is None:
            try:
                cert = x509.load_pem_x509_certificate(pem)
            except ValueError as exc:
                raise CertificateRejected(
                    f"TLS peer certificate is not a PEM X.509 certificate: {exc}",
                    reason=CERTIFICATE_MALFORMED,
                ) from exc
            try:
                issuer = next((ca for ca in self._cas if is_issued_by(cert, ca)), None)
            except _HOSTILE_DER as exc:
                raise CertificateRejected(
                    f"TLS peer certificate is malformed: {type(exc).__name__}: {exc}"[:300],
                    reason=CERTIFICATE_MALFORMED,
                ) from exc
            peer = _TlsPeer(cert, issuer)
            with self._lock:
                self._tls_cache[digest] = peer
                while len(self._tls_cache) > self._cache_size:
                    self._tls_cache.popitem(last=False)
        if peer.issuer is None:
            raise CertificateRejected(
                f"TLS peer certificate {_describe(peer.cert)} is not issued by a cooperation CA",
                reason=CERTIFICATE_UNTRUSTED,
            )
        self._check_revocation(peer.cert, peer.issuer, now, what="TLS peer certificate")

    def _check_revocation(
        self, cert: x509.Certificate, issuer: x509.Certificate, now: dt.datetime, *, what: str
    ) -> None:
        with self._lock:
            revocations = self._revocations.get(issuer)
        if revocations is None:
            return
        if revocations.next_update is not None and now > revocations.next_update:
            raise ConfigInvalid(
                f"the CRL of {issuer.subject.rfc4514_string()} expired at "
                f"{revocations.next_update.isoformat()}; refusing its certificates until a "
                "fresh CRL is loaded (`chuanyu-gateway certs crl`)",
                reason=CRL_EXPIRED,
            )
        if cert.serial_number in revocations.serials:
            raise CertificateRejected(
                f"{what} {_describe(cert)} (serial {cert.serial_number:x}) is revoked",
                reason=CERTIFICATE_REVOKED,
            )

    def _check_static(self, der: bytes) -> _Trusted:
        try:
            cert = x509.load_der_x509_certificate(der)
            # Extensions are parsed lazily; force it so a bad one is "malformed" here.
            extensions = cert.extensions
        except ValueError as exc:
            raise CertificateRejected(
                f"signing certificate is not a DER X.509 certificate: {exc}",
                reason=CERTIFICATE_MALFORMED,
            ) from exc
        issuer = next((ca for ca in self._cas if is_issued_by(cert, ca)), None)
        if issuer is None:
            raise CertificateRejected(
                f"signing certificate {_describe(cert)} is not issued by a cooperation CA "
                f"(issuer {cert.issuer.rfc4514_string()})",
                reason=CERTIFICATE_UNTRUSTED,
            )
        _check_signing_usage(cert, extensions)
        bureau = bureau_of(cert)
        if bureau is None:
            raise CertificateRejected(
                f"signing certificate {_describe(cert)} binds no bureau: it needs exactly one "
                f"URI SAN {BUREAU_URI_PREFIX}<division code>",
                reason=CERTIFICATE_NO_BUREAU,
            )
        try:
            public_key = _verification_key(cert)
        except ValueError as exc:
            raise CertificateRejected(
                f"signing certificate {_describe(cert)} has a key of no supported type: {exc}",
                reason=CERTIFICATE_MALFORMED,
            ) from exc
        signer = VerifiedSigner(
            bureau=bureau,
            key_id=key_id(cert),
            public_key=public_key,
            not_after=cert.not_valid_after_utc,
            certificate=cert,
        )
        return _Trusted(signer=signer, issuer=issuer)


def is_crl_issued_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    """Whether ``ca``'s name and key issued ``crl`` (no time check)."""
    if crl.issuer != ca.subject:
        return False
    try:
        return crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError, UnsupportedAlgorithm):
        return False


def _index_crls(
    cas: Sequence[x509.Certificate], crls: Sequence[x509.CertificateRevocationList]
) -> dict[x509.Certificate, _Revocations]:
    """Revocations per CA. Every CRL must be signed by one of ``cas``."""
    grouped: dict[x509.Certificate, list[x509.CertificateRevocationList]] = {}
    for crl in crls:
        ca = next((ca for ca in cas if is_crl_issued_by(crl, ca)), None)
        if ca is None:
            raise ConfigInvalid(
                f"CRL of {crl.issuer.rfc4514_string()} is not signed by a configured cooperation CA"
            )
        grouped.setdefault(ca, []).append(crl)
    index: dict[x509.Certificate, _Revocations] = {}
    for ca, group in grouped.items():
        # Several CRLs of one CA (an old and a new one during a roll-out): a serial
        # revoked in any of them stays revoked, and the newest says how long that holds.
        serials = frozenset(entry.serial_number for crl in group for entry in crl)
        next_updates = [crl.next_update_utc for crl in group]
        known = [update for update in next_updates if update is not None]
        # A CRL without next-update never goes stale (RFC 5280 requires one; ours have it).
        next_update = max(known) if len(known) == len(next_updates) else None
        index[ca] = _Revocations(serials=serials, next_update=next_update)
    return index


def _check_signing_usage(cert: x509.Certificate, extensions: x509.Extensions) -> None:
    def refuse(why: str) -> CertificateRejected:
        return CertificateRejected(
            f"signing certificate {_describe(cert)} {why}", reason=CERTIFICATE_USAGE
        )

    for extension in extensions:
        # RFC 5280 §4.2: a critical extension we do not understand must fail the check.
        if extension.critical and isinstance(extension.value, x509.UnrecognizedExtension):
            raise refuse(f"has an unrecognised critical extension {extension.oid.dotted_string}")
    try:
        basic = extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is not None and basic.ca:
        raise refuse("is a CA certificate")
    usage = _key_usage(extensions)
    if usage is None or not usage.digital_signature:
        raise refuse("lacks the digitalSignature key usage")
    if _tls_ekus(extensions):
        raise refuse("is a TLS certificate (serverAuth/clientAuth extended key usage)")


def _check_period(cert: x509.Certificate, now: dt.datetime, *, what: str) -> None:
    if now > cert.not_valid_after_utc:
        raise CertificateRejected(
            f"{what} {_describe(cert)} expired at {cert.not_valid_after_utc.isoformat()}",
            reason=CERTIFICATE_EXPIRED,
        )
    if now < cert.not_valid_before_utc:
        raise CertificateRejected(
            f"{what} {_describe(cert)} is not valid before {cert.not_valid_before_utc.isoformat()}",
            reason=CERTIFICATE_NOT_YET_VALID,
        )


# --------------------------------------------------------------------------- loading


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


# --------------------------------------------------------------------------- issuing


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` with ``data``; the file never exists with other bytes or mode."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
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


def _leaf_builder(
    issuer: _Issuer,
    public_key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey,
    common_name: str,
    not_before: dt.datetime,
    valid_days: int,
    *,
    subject_key_id: x509.SubjectKeyIdentifier | None = None,
) -> x509.CertificateBuilder:
    # A leaf never outlives its CA.
    not_after = min(not_before + dt.timedelta(days=valid_days), issuer.cert.not_valid_after_utc)
    if not_after <= not_before:
        raise ConfigInvalid(
            f"cannot issue {common_name!r}: the CA expires at {not_after.isoformat()}"
        )
    try:
        ca_ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.cert.public_key()  # type: ignore[arg-type]
        )
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(aki, critical=False)
        .add_extension(
            subject_key_id or x509.SubjectKeyIdentifier.from_public_key(public_key),
            critical=False,
        )
    )


def _key_usage_of(*, content_commitment: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _host_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        try:
            names.append(x509.DNSName(host.encode("idna").decode("ascii")))
        except (UnicodeError, ValueError) as exc:
            raise ConfigInvalid(f"host {host!r} is neither an IP address nor a DNS name") from exc
    return names


def _tls_certificate(
    issuer: _Issuer,
    public_key: ec.EllipticCurvePublicKey,
    bureau: str,
    *,
    hosts: list[x509.GeneralName],
    not_before: dt.datetime,
    valid_days: int,
) -> x509.Certificate:
    san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(BUREAU_URI_PREFIX + bureau)]
    builder = (
        _leaf_builder(issuer, public_key, f"Chuanyu Gateway {bureau} TLS", not_before, valid_days)
        .add_extension(_key_usage_of(content_commitment=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([*san, *hosts]), critical=False)
    )
    return issuer.sign(builder)


def _sm2_subject_key_id(spki: bytes) -> x509.SubjectKeyIdentifier:
    # RFC 5280 §4.2.1.2 method 1, as pyca computes it for its own keys: SHA-1 of the
    # subjectPublicKey BIT STRING's value (without the unused-bits byte).
    bit_string = _der_children(spki)[1]
    _, start, end = _der_item(bit_string, 0)
    return x509.SubjectKeyIdentifier(
        hashlib.sha1(bit_string[start + 1 : end], usedforsecurity=False).digest()
    )


def _signing_certificate(
    issuer: _Issuer,
    public_key: ed25519.Ed25519PublicKey | SM2PublicKey,
    bureau: str,
    *,
    not_before: dt.datetime,
    valid_days: int,
) -> x509.Certificate:
    common_name = f"Chuanyu Gateway {bureau} signing"
    if isinstance(public_key, SM2PublicKey):
        spki = public_key.spki_der()
        placeholder = ec.generate_private_key(ec.SECP256R1()).public_key()
        builder = _leaf_builder(
            issuer,
            placeholder,
            common_name,
            not_before,
            valid_days,
            subject_key_id=_sm2_subject_key_id(spki),
        )
    else:
        builder = _leaf_builder(issuer, public_key, common_name, not_before, valid_days)
    builder = builder.add_extension(
        _key_usage_of(content_commitment=True), critical=True
    ).add_extension(
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier(BUREAU_URI_PREFIX + bureau)]),
        critical=False,
    )
    if isinstance(public_key, SM2PublicKey):
        return _issue_for_foreign_key(issuer, builder, spki)
    return issuer.sign(builder)


def _check_signing_suite(suite: str) -> str:
    if suite not in SIGNING_SUITES:
        raise ConfigInvalid(
            f"unknown signing suite {suite!r} (supported: {', '.join(SIGNING_SUITES)})"
        )
    return suite


def _new_signing_key(suite: str) -> ed25519.Ed25519PrivateKey | SM2PrivateKey:
    if _check_signing_suite(suite) == Sm2Sm3Suite.name:
        return SM2PrivateKey.generate()
    return ed25519.Ed25519PrivateKey.generate()


def _suite_of_key(key: SigningKey) -> str | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Ed25519Suite.name
    if isinstance(key, SM2PrivateKey):
        return Sm2Sm3Suite.name
    return None


@dataclass(frozen=True)
class _LeafSpec:
    bureau: str
    role: Literal["tls", "signing"]
    cert_path: Path
    key_path: Path
    hosts: list[x509.GeneralName]
    not_before: dt.datetime
    valid_days: int
    # Signing keys only: the suite of a new key; an existing key of another suite is
    # refused when a suite was asked for explicitly (None: keep whatever exists).
    suite: str | None = None


def _ensure_leaf(issuer: _Issuer, spec: _LeafSpec, created: list[Path]) -> None:
    cert_exists = spec.cert_path.exists()
    if cert_exists and not spec.key_path.exists():
        raise ConfigInvalid(
            f"{spec.cert_path} exists but its key {spec.key_path} is missing; "
            "remove the certificate to issue a new pair"
        )
    # The key is written before its certificate, so an interrupted run leaves a key
    # without a certificate, which the next run completes.
    key: SigningKey
    if spec.key_path.exists():
        key = load_private_key(spec.key_path)
        if spec.role == "signing" and spec.suite not in (None, _suite_of_key(key)):
            raise ConfigInvalid(
                f"existing {spec.key_path} is a {_suite_of_key(key) or 'non-signing'} key, "
                f"not {spec.suite}; switch suites with `certs rotate --suite {spec.suite}`"
            )
    else:
        if spec.role == "tls":
            key = _new_tls_key()
        else:
            key = _new_signing_key(spec.suite or Ed25519Suite.name)
        _write_key(spec.key_path, key)
        created.append(spec.key_path)
    if cert_exists:
        _check_existing_leaf(issuer, spec, key)
        return
    if spec.role == "tls" and isinstance(key, ec.EllipticCurvePrivateKey):
        cert = _tls_certificate(
            issuer,
            key.public_key(),
            spec.bureau,
            hosts=spec.hosts,
            not_before=spec.not_before,
            valid_days=spec.valid_days,
        )
    elif spec.role == "signing" and isinstance(key, ed25519.Ed25519PrivateKey | SM2PrivateKey):
        cert = _signing_certificate(
            issuer,
            key.public_key(),
            spec.bureau,
            not_before=spec.not_before,
            valid_days=spec.valid_days,
        )
    else:
        wanted = "an ECDSA P-256" if spec.role == "tls" else "an Ed25519 or SM2"
        raise ConfigInvalid(f"{spec.key_path} is not {wanted} key, as a {spec.role} key must be")
    _write_cert(spec.cert_path, cert)
    created.append(spec.cert_path)


def _new_tls_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _check_existing_leaf(issuer: _Issuer, spec: _LeafSpec, key: SigningKey) -> None:
    cert = load_certificate(spec.cert_path)
    problem = None
    if not is_issued_by(cert, issuer.cert):
        problem = f"is not issued by {issuer.layout.ca_cert}"
    elif bureau_of(cert) != spec.bureau:
        problem = f"does not bind bureau {spec.bureau}"
    elif not _matches(cert, key):
        problem = f"does not match its key {spec.key_path}"
    if problem is not None:
        raise ConfigInvalid(
            f"existing {spec.cert_path} {problem}; remove it (and its key) to issue a new one"
        )


def init_pki(
    directory: Path,
    bureaus: Sequence[str],
    *,
    hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    valid_days: int = 825,
    now: dt.datetime | None = None,
    signing_suite: str | None = None,
) -> PkiLayout:
    """Make (or complete) a development PKI in ``directory``.

    Idempotent: an existing CA and existing bureau files are kept (after checking
    they fit together); only what is missing is created. A key without its
    certificate gets a certificate; a certificate without its key is refused.
    ``hosts`` (DNS names or IP addresses) go into new TLS certificates' SAN.
    ``signing_suite`` (one of :data:`SIGNING_SUITES`) is the type of new signing
    keys, Ed25519 by default; when given, an existing signing key of another
    suite is refused rather than silently kept.
    The returned layout's ``created`` lists the files written.
    """
    now = _aware(now)
    _check_valid_days(valid_days)
    if signing_suite is not None:
        _check_signing_suite(signing_suite)
    codes = list(dict.fromkeys(_checked_bureau(bureau) for bureau in bureaus))
    host_names = _host_names(hosts)
    layout = PkiLayout.at(directory)
    created: list[Path] = []
    issuer = _ensure_ca(layout, now, created)
    for code in codes:
        paths = layout.bureau(code)
        leaves: tuple[tuple[Literal["tls", "signing"], Path, Path], ...] = (
            ("tls", paths.tls_cert, paths.tls_key),
            ("signing", paths.signing_cert, paths.signing_key),
        )
        for role, cert_path, key_path in leaves:
            spec = _LeafSpec(
                bureau=code,
                role=role,
                cert_path=cert_path,
                key_path=key_path,
                hosts=host_names,
                not_before=now - _BACKDATE,
                valid_days=valid_days,
                suite=signing_suite if role == "signing" else None,
            )
            _ensure_leaf(issuer, spec, created)
    return replace(layout, created=tuple(created))


def issue_signing_certificate(
    layout: PkiLayout,
    bureau: str,
    *,
    not_before: dt.datetime | None = None,
    valid_days: int = 825,
    out_dir: Path | None = None,
    suite: str = Ed25519Suite.name,
) -> BureauPaths:
    """Issue ``bureau`` a fresh signing key (of ``suite``) and certificate from the layout's CA.

    Written to ``out_dir`` (as ``signing.pem`` / ``signing.key``) when given, else
    over the bureau's signing files in the layout (a rotation without overlap; see
    :func:`rotate_signing_key` for one with). The returned paths' TLS entries are
    the bureau's TLS files in the layout. ``not_before`` (default: a few minutes
    ago) makes expired or not-yet-valid certificates for tests.
    """
    paths = layout.bureau(bureau)
    _check_valid_days(valid_days)
    start = _aware(None) - _BACKDATE if not_before is None else _aware(not_before)
    issuer = _Issuer(layout, _load_ca_certificate(layout.ca_cert), None)
    key = _new_signing_key(suite)
    cert = _signing_certificate(
        issuer, key.public_key(), bureau, not_before=start, valid_days=valid_days
    )
    if out_dir is not None:
        paths = replace(
            paths, signing_cert=out_dir / "signing.pem", signing_key=out_dir / "signing.key"
        )
    _write_key(paths.signing_key, key)
    _write_cert(paths.signing_cert, cert)
    return paths


# --------------------------------------------------------------------------- rotation


@dataclass(frozen=True)
class RotatedSigningKey:
    """What :func:`rotate_signing_key` did: the new pair in use, the old one kept."""

    bureau: str
    suite: str
    key_id: str
    previous_key_id: str
    # signing.pem / signing.key, now the new pair.
    cert: Path
    key: Path
    # signing-<keyid8>.pem / .key: the new pair under its own name.
    archived_cert: Path
    archived_key: Path
    # signing-previous.pem / .key: the pair that was in use before.
    previous_cert: Path
    previous_key: Path


def _archive_paths(folder: Path, cert: x509.Certificate) -> tuple[Path, Path]:
    stem = f"signing-{key_id(cert)[:8]}"
    return folder / f"{stem}.pem", folder / f"{stem}.key"


def rotate_signing_key(
    layout: PkiLayout,
    bureau: str,
    *,
    suite: str | None = None,
    valid_days: int = 825,
    now: dt.datetime | None = None,
) -> RotatedSigningKey:
    """Give ``bureau`` a new signing key and certificate while the old one stays valid.

    The old pair is copied to ``signing-previous.*`` and ``signing-<keyid8>.*``, the
    new pair is written to ``signing-<keyid8>.*`` and then over ``signing.*``. Nothing
    is revoked: envelopes signed with the old key carry its certificate and still
    verify against the CA until it expires (or is revoked with
    :func:`revoke_certificate`). ``suite`` defaults to the current key's suite;
    another suite switches the bureau to it. A node signs with the new key from its
    next start.
    """
    now = _aware(now)
    _check_valid_days(valid_days)
    paths = layout.bureau(bureau)
    issuer = _Issuer(layout, _load_ca_certificate(layout.ca_cert), None)
    old_cert = load_certificate(paths.signing_cert)
    old_key = load_private_key(paths.signing_key)
    if not key_matches_certificate(old_cert, old_key):
        # The only way to get here through this module is a rotation interrupted
        # between writing signing.key and signing.pem; both pairs are archived.
        raise ConfigInvalid(
            f"{paths.signing_cert} does not match {paths.signing_key} (an interrupted "
            f"rotation?): copy a matching signing-<keyid8>.pem/.key pair from "
            f"{paths.signing_cert.parent} over signing.pem/.key and rotate again"
        )
    if not is_issued_by(old_cert, issuer.cert) or bureau_of(old_cert) != bureau:
        raise ConfigInvalid(
            f"{paths.signing_cert} is not a signing certificate of bureau {bureau} issued by "
            f"{layout.ca_cert}"
        )
    chosen = _check_signing_suite(suite or _suite_of_key(old_key) or Ed25519Suite.name)
    new_key = _new_signing_key(chosen)
    new_cert = _signing_certificate(
        issuer,
        new_key.public_key(),
        bureau,
        not_before=now - _BACKDATE,
        valid_days=valid_days,
    )
    folder = paths.signing_cert.parent
    archived_cert, archived_key = _archive_paths(folder, new_cert)
    old_archived_cert, old_archived_key = _archive_paths(folder, old_cert)
    # Order matters: every pair is safe under its own name before signing.* changes.
    _write_key(archived_key, new_key)
    _write_cert(archived_cert, new_cert)
    if not old_archived_key.exists():
        _write_key(old_archived_key, old_key)
        _write_cert(old_archived_cert, old_cert)
    _write_key(paths.previous_signing_key, old_key)
    _write_cert(paths.previous_signing_cert, old_cert)
    _write_key(paths.signing_key, new_key)
    _write_cert(paths.signing_cert, new_cert)
    return RotatedSigningKey(
        bureau=bureau,
        suite=chosen,
        key_id=key_id(new_cert),
        previous_key_id=key_id(old_cert),
        cert=paths.signing_cert,
        key=paths.signing_key,
        archived_cert=archived_cert,
        archived_key=archived_key,
        previous_cert=paths.previous_signing_cert,
        previous_key=paths.previous_signing_key,
    )


# --------------------------------------------------------------------------- revocation


def _next_crl_number(crl: x509.CertificateRevocationList | None) -> int:
    if crl is None:
        return 1
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
    except x509.ExtensionNotFound:
        return 1


def _load_own_crl(layout: PkiLayout, ca: x509.Certificate) -> x509.CertificateRevocationList | None:
    if not layout.crl.exists():
        return None
    crls = load_crls(layout.crl)
    if len(crls) != 1 or not is_crl_issued_by(crls[0], ca):
        raise ConfigInvalid(
            f"{layout.crl} is not one CRL signed by {layout.ca_cert}; remove it to start afresh "
            "(its revocations are then lost)"
        )
    return crls[0]


def issue_crl(
    layout: PkiLayout,
    *,
    revoke: Sequence[tuple[x509.Certificate, x509.ReasonFlags]] = (),
    valid_days: int = _CRL_VALID_DAYS,
    now: dt.datetime | None = None,
) -> x509.CertificateRevocationList:
    """Re-issue the CA's CRL at ``layout.crl``, adding the ``revoke`` certificates.

    The whole CRL is rebuilt and re-signed each time: the entries of the current
    ``crl.pem`` (which must be signed by the CA) are kept, the CRL number goes up,
    this-update is ``now`` and next-update ``valid_days`` later (never beyond the
    CA's own expiry). A certificate already listed keeps its first entry. Run it
    before next-update passes, or verifiers holding the CRL fail closed.
    """
    now = _aware(now)
    _check_valid_days(valid_days)
    issuer = _Issuer(layout, _load_ca_certificate(layout.ca_cert), None)
    current = _load_own_crl(layout, issuer.cert)
    entries: dict[int, x509.RevokedCertificate] = {}
    if current is not None:
        entries = {entry.serial_number: entry for entry in current}
    for cert, reason in revoke:
        if not is_issued_by(cert, issuer.cert):
            raise ConfigInvalid(
                f"cannot revoke {_describe(cert)}: it is not issued by {layout.ca_cert}"
            )
        if cert.serial_number in entries:
            continue
        revoked = x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
        revoked = revoked.revocation_date(now)
        # RFC 5280 §5.3.1: leave the reason out rather than say "unspecified".
        if reason is not x509.ReasonFlags.unspecified:
            revoked = revoked.add_extension(x509.CRLReason(reason), critical=False)
        entries[cert.serial_number] = revoked.build()
    next_update = min(now + dt.timedelta(days=valid_days), issuer.cert.not_valid_after_utc)
    ca_ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(now)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(_next_crl_number(current)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )
    for entry in entries.values():
        builder = builder.add_revoked_certificate(entry)
    crl = issuer.sign_crl(builder)
    _write_atomically(layout.crl, crl.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return crl


def revoke_certificate(
    layout: PkiLayout,
    cert: x509.Certificate,
    *,
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
    valid_days: int = _CRL_VALID_DAYS,
    now: dt.datetime | None = None,
) -> x509.CertificateRevocationList:
    """Add ``cert`` (issued by the layout's CA) to the CRL and re-issue it."""
    return issue_crl(layout, revoke=[(cert, reason)], valid_days=valid_days, now=now)


# --------------------------------------------------------------------------- expiry


@dataclass(frozen=True)
class CertificateExpiry:
    """One certificate file and how long it has left."""

    path: Path
    bureau: str | None
    role: CertificateRole
    key_id: str
    not_after: dt.datetime
    remaining: dt.timedelta

    @property
    def expired(self) -> bool:
        return self.remaining < dt.timedelta(0)


def expiring_certificates(
    paths: Iterable[Path], within_days: float, now: dt.datetime | None = None
) -> list[CertificateExpiry]:
    """The certificates among ``paths`` that expire within ``within_days`` (or have expired).

    Soonest first. Meant for the node's log, metrics and health at start and
    periodically; a missing or unreadable file is a ``ConfigInvalid``.
    """
    now = _aware(now)
    horizon = dt.timedelta(days=within_days)
    found: list[CertificateExpiry] = []
    for path in paths:
        cert = load_certificate(path)
        remaining = certificate_expiry(cert, now)
        if remaining <= horizon:
            found.append(
                CertificateExpiry(
                    path=path,
                    bureau=bureau_of(cert),
                    role=certificate_role(cert),
                    key_id=key_id(cert),
                    not_after=cert.not_valid_after_utc,
                    remaining=remaining,
                )
            )
    return sorted(found, key=lambda item: item.remaining)
