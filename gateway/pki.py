"""The cooperation PKI: dev certificates, loading, and signing-certificate checks.

A cooperation root CA issues every bureau two certificates, both binding the
bureau's division code in a URI subject alternative name
(``urn:chuanyu:bureau:500151``):

- a **TLS** certificate (ECDSA P-256, serverAuth + clientAuth) for mutual-TLS gRPC;
- a **signing** certificate (Ed25519, digitalSignature + contentCommitment, no TLS
  extended key usage) for envelopes and receipts.

Layout of a PKI directory made by :func:`init_pki`::

    DIR/ca.pem, DIR/ca.key
    DIR/<bureau>/tls.pem, DIR/<bureau>/tls.key
    DIR/<bureau>/signing.pem, DIR/<bureau>/signing.key

Private keys are unencrypted PKCS#8 PEM with mode 0600: they are development keys
made on the machine that uses them and are never committed.

The module has two halves. :func:`init_pki`, :func:`issue_signing_certificate`,
:func:`load_certificate` and :func:`load_private_key` read and write files and
report problems as :class:`~gateway.errors.ConfigInvalid`. Everything else —
:class:`SigningCertificateVerifier`, :func:`bureau_of`, :func:`key_id` — works on
bytes and certificate objects only and reports a peer's bad certificate as
:class:`~gateway.errors.CertificateRejected` with one of the ``CERTIFICATE_*``
reasons below. No ``cryptography`` exception escapes this module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.errors import CertificateRejected, ConfigInvalid
from gateway.identifiers import check_division_code

__all__ = [
    "BUREAU_URI_PREFIX",
    "CERTIFICATE_EXPIRED",
    "CERTIFICATE_MALFORMED",
    "CERTIFICATE_NOT_YET_VALID",
    "CERTIFICATE_NO_BUREAU",
    "CERTIFICATE_UNTRUSTED",
    "CERTIFICATE_USAGE",
    "BureauPaths",
    "CertificateRole",
    "PkiLayout",
    "SigningCertificateVerifier",
    "VerifiedSigner",
    "bureau_of",
    "bureau_of_pem",
    "certificate_role",
    "init_pki",
    "is_issued_by",
    "issue_signing_certificate",
    "key_id",
    "load_certificate",
    "load_certificates",
    "load_private_key",
]

BUREAU_URI_PREFIX = "urn:chuanyu:bureau:"

# Reasons carried by CertificateRejected (google.rpc.ErrorInfo.reason).
CERTIFICATE_MALFORMED = "CERTIFICATE_MALFORMED"
CERTIFICATE_UNTRUSTED = "CERTIFICATE_UNTRUSTED"
CERTIFICATE_EXPIRED = "CERTIFICATE_EXPIRED"
CERTIFICATE_NOT_YET_VALID = "CERTIFICATE_NOT_YET_VALID"
CERTIFICATE_USAGE = "CERTIFICATE_USAGE"
CERTIFICATE_NO_BUREAU = "CERTIFICATE_NO_BUREAU"

_ORGANIZATION = "Chuanyu Cooperation"
_CA_COMMON_NAME = "Chuanyu Cooperation Root CA"
_CA_VALID_DAYS = 3650
# Certificates start a little in the past so that a partner whose clock runs
# slightly behind ours still accepts them straight after `certs init`.
_BACKDATE = dt.timedelta(minutes=5)
_TLS_EKUS = frozenset({ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH})
_CACHE_SIZE = 256

CertificateRole = Literal["ca", "tls", "signing", "other"]


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class BureauPaths:
    """Where one bureau's certificates and private keys live."""

    tls_cert: Path
    tls_key: Path
    signing_cert: Path
    signing_key: Path


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

    def bureau(self, bureau: str) -> BureauPaths:
        """The paths of ``bureau``'s files; the bureau id must be a division code."""
        folder = self.directory / _checked_bureau(bureau)
        return BureauPaths(
            tls_cert=folder / "tls.pem",
            tls_key=folder / "tls.key",
            signing_cert=folder / "signing.pem",
            signing_key=folder / "signing.key",
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
    """A signing certificate that chains to a cooperation CA and binds a bureau."""

    bureau: str
    key_id: str
    public_key: CertificatePublicKeyTypes
    not_after: dt.datetime
    certificate: x509.Certificate


@dataclass(frozen=True)
class _Trusted:
    signer: VerifiedSigner
    issuer: x509.Certificate


class SigningCertificateVerifier:
    """Checks a peer's signing certificate against the cooperation CAs.

    Pure: it takes DER bytes and a time and returns a :class:`VerifiedSigner` or
    raises :class:`~gateway.errors.CertificateRejected`. The time-independent part
    (parsing, chain, usage, bureau) is cached by DER digest; validity periods of the
    certificate and its issuer are checked against ``now`` on every call.
    Safe to share between threads.
    """

    def __init__(
        self, ca_certificates: Sequence[x509.Certificate], *, cache_size: int = _CACHE_SIZE
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
        self._lock = threading.Lock()

    def verify(self, der: bytes, *, now: dt.datetime) -> VerifiedSigner:
        """Accept ``der`` as a signing certificate valid at ``now`` or raise.

        Reasons: ``CERTIFICATE_MALFORMED``, ``CERTIFICATE_UNTRUSTED``,
        ``CERTIFICATE_USAGE``, ``CERTIFICATE_NO_BUREAU``, ``CERTIFICATE_EXPIRED``,
        ``CERTIFICATE_NOT_YET_VALID``. ``now`` must be timezone-aware (a naive
        datetime is a programming error: :class:`ValueError`).
        """
        now = _aware(now)
        digest = hashlib.sha256(der).digest()
        with self._lock:
            trusted = self._cache.get(digest)
            if trusted is not None:
                self._cache.move_to_end(digest)
        if trusted is None:
            trusted = self._check_static(der)
            with self._lock:
                self._cache[digest] = trusted
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        _check_period(trusted.signer.certificate, now, what="signing certificate")
        _check_period(trusted.issuer, now, what="issuing CA certificate")
        return trusted.signer

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
        signer = VerifiedSigner(
            bureau=bureau,
            key_id=key_id(cert),
            public_key=cert.public_key(),
            not_after=cert.not_valid_after_utc,
            certificate=cert,
        )
        return _Trusted(signer=signer, issuer=issuer)


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


def load_private_key(path: Path) -> PrivateKeyTypes:
    """An unencrypted PEM private key."""
    data = _read(path, "private key file")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigInvalid(f"{path} is not a usable unencrypted PEM private key: {exc}") from exc


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


def _write_key(path: Path, key: PrivateKeyTypes) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomically(path, pem, mode=0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    _write_atomically(path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _matches(cert: x509.Certificate, key: PrivateKeyTypes) -> bool:
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public == cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _hash_for(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return hashes.SHA256()


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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
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


def _signing_certificate(
    issuer: _Issuer,
    public_key: ed25519.Ed25519PublicKey,
    bureau: str,
    *,
    not_before: dt.datetime,
    valid_days: int,
) -> x509.Certificate:
    builder = (
        _leaf_builder(
            issuer, public_key, f"Chuanyu Gateway {bureau} signing", not_before, valid_days
        )
        .add_extension(_key_usage_of(content_commitment=True), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(BUREAU_URI_PREFIX + bureau)]
            ),
            critical=False,
        )
    )
    return issuer.sign(builder)


@dataclass(frozen=True)
class _LeafSpec:
    bureau: str
    role: Literal["tls", "signing"]
    cert_path: Path
    key_path: Path
    hosts: list[x509.GeneralName]
    not_before: dt.datetime
    valid_days: int


def _ensure_leaf(issuer: _Issuer, spec: _LeafSpec, created: list[Path]) -> None:
    cert_exists = spec.cert_path.exists()
    if cert_exists and not spec.key_path.exists():
        raise ConfigInvalid(
            f"{spec.cert_path} exists but its key {spec.key_path} is missing; "
            "remove the certificate to issue a new pair"
        )
    # The key is written before its certificate, so an interrupted run leaves a key
    # without a certificate, which the next run completes.
    if spec.key_path.exists():
        key = load_private_key(spec.key_path)
    else:
        key = _new_tls_key() if spec.role == "tls" else ed25519.Ed25519PrivateKey.generate()
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
    elif spec.role == "signing" and isinstance(key, ed25519.Ed25519PrivateKey):
        cert = _signing_certificate(
            issuer,
            key.public_key(),
            spec.bureau,
            not_before=spec.not_before,
            valid_days=spec.valid_days,
        )
    else:
        wanted = "ECDSA P-256" if spec.role == "tls" else "Ed25519"
        raise ConfigInvalid(f"{spec.key_path} is not an {wanted} key, as a {spec.role} key must be")
    _write_cert(spec.cert_path, cert)
    created.append(spec.cert_path)


def _new_tls_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _check_existing_leaf(issuer: _Issuer, spec: _LeafSpec, key: PrivateKeyTypes) -> None:
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
) -> PkiLayout:
    """Make (or complete) a development PKI in ``directory``.

    Idempotent: an existing CA and existing bureau files are kept (after checking
    they fit together); only what is missing is created. A key without its
    certificate gets a certificate; a certificate without its key is refused.
    ``hosts`` (DNS names or IP addresses) go into new TLS certificates' SAN.
    The returned layout's ``created`` lists the files written.
    """
    now = _aware(now)
    _check_valid_days(valid_days)
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
) -> BureauPaths:
    """Issue ``bureau`` a fresh Ed25519 signing key and certificate from the layout's CA.

    Written to ``out_dir`` (as ``signing.pem`` / ``signing.key``) when given, else
    over the bureau's signing files in the layout (a key rotation). The returned
    paths' TLS entries are the bureau's TLS files in the layout. ``not_before``
    (default: a few minutes ago) makes expired or not-yet-valid certificates for tests.
    """
    paths = layout.bureau(bureau)
    _check_valid_days(valid_days)
    start = _aware(None) - _BACKDATE if not_before is None else _aware(not_before)
    issuer = _Issuer(layout, _load_ca_certificate(layout.ca_cert), None)
    key = ed25519.Ed25519PrivateKey.generate()
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
