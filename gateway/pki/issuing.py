"""Issuing bureau certificates: a development PKI, and fresh signing certificates."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.errors import ConfigInvalid
from gateway.pki.certificates import (
    BUREAU_DNS_SUFFIX,
    BUREAU_URI_PREFIX,
    SIGNING_SUITES,
    _aware,
    _checked_bureau,
    bureau_dns_name,
    bureau_of,
    is_issued_by,
    tls_name_problem,
)
from gateway.pki.der import _sm2_subject_key_id
from gateway.pki.issuer import (
    _BACKDATE,
    _check_valid_days,
    _ensure_ca,
    _issue_for_foreign_key,
    _Issuer,
    _load_ca_certificate,
    _matches,
    _name,
    _write_cert,
    _write_key,
)
from gateway.pki.layout import (
    BureauPaths,
    PkiLayout,
)
from gateway.pki.loading import (
    load_certificate,
    load_private_key,
)
from gateway.signing import (
    Ed25519Suite,
    SigningKey,
    SM2PrivateKey,
    SM2PublicKey,
    Sm2Sm3Suite,
)


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
    san: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(BUREAU_URI_PREFIX + bureau),
        x509.DNSName(bureau_dns_name(bureau)),
    ]
    # A host name under the bureau suffix would let this certificate pass for another bureau.
    hosts = [
        host
        for host in hosts
        if not (isinstance(host, x509.DNSName) and host.value.lower().endswith(BUREAU_DNS_SUFFIX))
    ]
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
    hosts = spec.hosts
    if cert_exists:
        existing = _check_existing_leaf(issuer, spec, key)
        if spec.role != "tls" or tls_name_problem(existing, spec.bureau) is None:
            return
        # Issued before TLS certificates named their bureau: re-issue it for the same key
        # and host names, since partners now refuse a certificate without the name.
        hosts = _hosts_of(existing)
    if spec.role == "tls" and isinstance(key, ec.EllipticCurvePrivateKey):
        cert = _tls_certificate(
            issuer,
            key.public_key(),
            spec.bureau,
            hosts=hosts,
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


def _hosts_of(cert: x509.Certificate) -> list[x509.GeneralName]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [name for name in san if isinstance(name, x509.DNSName | x509.IPAddress)]


def _check_existing_leaf(issuer: _Issuer, spec: _LeafSpec, key: SigningKey) -> x509.Certificate:
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
    return cert


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
    they fit together); only what is missing is created. A TLS certificate without
    its bureau DNS name (:func:`~gateway.pki.bureau_dns_name`) is re-issued for the
    same key and host names. A key without its
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
