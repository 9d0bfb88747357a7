"""Checking a peer's signing certificate and TLS certificate against the cooperation CAs."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from gateway.errors import CertificateRejected, ConfigInvalid
from gateway.pki.certificates import (
    _HOSTILE_DER,
    BUREAU_URI_PREFIX,
    CERTIFICATE_EXPIRED,
    CERTIFICATE_MALFORMED,
    CERTIFICATE_NO_BUREAU,
    CERTIFICATE_NOT_YET_VALID,
    CERTIFICATE_REVOKED,
    CERTIFICATE_UNTRUSTED,
    CERTIFICATE_USAGE,
    CRL_EXPIRED,
    _aware,
    _describe,
    _key_usage,
    _tls_ekus,
    bureau_of,
    certificate_role,
    is_issued_by,
    key_id,
)
from gateway.pki.der import _verification_key
from gateway.signing import VerificationKey

_CACHE_SIZE = 256


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
