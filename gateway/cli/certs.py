"""``chuanyu-gateway certs``: make, inspect, rotate and revoke the development cooperation PKI.

``status`` is the one sub-command meant for monitoring: it exits 1 when a certificate
in use (CA, TLS, current signing) has expired or is revoked, or the CRL is past its
next-update (verifiers fail closed then). The previous signing certificate kept by
``rotate`` is listed but never fails the check: its expiry or revocation is the
normal end of a rotation.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from gateway.clock import utc_now
from gateway.errors import ConfigInvalid
from gateway.pki import (
    SIGNING_SUITES,
    PkiLayout,
    bureau_of,
    certificate_expiry,
    certificate_role,
    init_pki,
    is_crl_issued_by,
    is_issued_by,
    issue_crl,
    key_id,
    load_certificate,
    load_crls,
    revocation_reason,
    revoke_certificate,
    rotate_signing_key,
    signing_suite_of,
)

__all__ = ["register"]

DEFAULT_BUREAUS = ("500151", "510900")
DEFAULT_HOSTS = ("localhost", "127.0.0.1")
_CERT_FILES = ("tls.pem", "signing.pem")
_STATUS_FILES = ("tls.pem", "signing.pem", "signing-previous.pem")
_REASONS = {
    flag.value: flag
    for flag in x509.ReasonFlags
    if flag not in (x509.ReasonFlags.remove_from_crl, x509.ReasonFlags.certificate_hold)
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    certs = subparsers.add_parser("certs", help="make and inspect the cooperation PKI")
    commands = certs.add_subparsers(dest="certs_command", required=True, metavar="ACTION")

    init = commands.add_parser(
        "init",
        help="create a CA and per-bureau TLS and signing certificates (keeps existing files; "
        "re-issues a TLS certificate that lacks its bureau DNS name, for the same key)",
    )
    init.add_argument("directory", type=Path, metavar="DIR")
    init.add_argument(
        "--bureau",
        dest="bureaus",
        action="append",
        metavar="CODE",
        help=f"bureau division code, repeatable (default: {' '.join(DEFAULT_BUREAUS)})",
    )
    init.add_argument(
        "--host",
        dest="hosts",
        action="append",
        metavar="HOST",
        help=f"TLS certificate DNS name or IP, repeatable (default: {' '.join(DEFAULT_HOSTS)})",
    )
    init.add_argument(
        "--days", type=int, default=825, metavar="N", help="leaf validity in days (default: 825)"
    )
    init.add_argument(
        "--suite",
        "--signing-suite",
        dest="suite",
        choices=SIGNING_SUITES,
        help="signature suite of new signing keys (default: ed25519; "
        "given explicitly, an existing key of another suite is an error)",
    )
    init.set_defaults(handler=_init)

    show = commands.add_parser("show", help="list the certificates of a PKI directory")
    show.add_argument("directory", type=Path, metavar="DIR")
    show.set_defaults(handler=_show)

    rotate = commands.add_parser(
        "rotate",
        help="issue a bureau a new signing key; the old certificate stays valid (overlap)",
    )
    rotate.add_argument("directory", type=Path, metavar="DIR")
    rotate.add_argument("--bureau", required=True, metavar="CODE")
    rotate.add_argument(
        "--suite", choices=SIGNING_SUITES, help="suite of the new key (default: the current one)"
    )
    rotate.add_argument(
        "--days", type=int, default=825, metavar="N", help="validity in days (default: 825)"
    )
    rotate.set_defaults(handler=_rotate)

    revoke = commands.add_parser(
        "revoke", help="add a certificate to DIR/crl.pem and re-sign the CRL"
    )
    revoke.add_argument("directory", type=Path, metavar="DIR")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--bureau", metavar="CODE", help="the bureau whose certificate to revoke")
    which.add_argument(
        "--cert",
        type=Path,
        metavar="PATH",
        help="revoke this certificate file (e.g. DIR/<bureau>/signing-previous.pem)",
    )
    revoke.add_argument(
        "--role", choices=("tls", "signing"), help="with --bureau: which certificate"
    )
    revoke.add_argument(
        "--reason",
        choices=sorted(_REASONS),
        default=x509.ReasonFlags.unspecified.value,
        help="CRL reason code (default: unspecified)",
    )
    revoke.add_argument(
        "--crl-days",
        type=int,
        default=30,
        metavar="N",
        help="next-update of the re-issued CRL, in days (default: 30)",
    )
    revoke.set_defaults(handler=_revoke)

    crl = commands.add_parser(
        "crl", help="re-issue DIR/crl.pem with a fresh next-update (creates an empty one)"
    )
    crl.add_argument("directory", type=Path, metavar="DIR")
    crl.add_argument(
        "--days", type=int, default=30, metavar="N", help="next-update in days (default: 30)"
    )
    crl.set_defaults(handler=_crl)

    status = commands.add_parser(
        "status",
        help="validity and revocation of every certificate; exit 1 if one in use is "
        "expired or revoked",
    )
    status.add_argument("directory", type=Path, metavar="DIR")
    status.add_argument(
        "--warn-days",
        type=int,
        default=30,
        metavar="N",
        help="print WARN for certificates expiring within N days (default: 30)",
    )
    status.add_argument(
        "--crl-warn-days",
        type=int,
        default=7,
        metavar="N",
        help="print WARN when the CRL's next update is due within N days (default: 7)",
    )
    status.set_defaults(handler=_status)


def _init(args: argparse.Namespace) -> int:
    layout = init_pki(
        args.directory,
        args.bureaus or DEFAULT_BUREAUS,
        hosts=args.hosts or DEFAULT_HOSTS,
        valid_days=args.days,
        signing_suite=args.suite,
    )
    if not layout.created:
        print(f"nothing to create: {layout.directory} already holds every file")
        return 0
    for path in layout.created:
        if path.suffix == ".key":
            print(f"created {path}  (private key, mode 0600, never commit it)")
        else:
            print(f"created {path}  {_summary(load_certificate(path))}")
    return 0


def _existing_layout(directory: Path) -> PkiLayout:
    layout = PkiLayout.at(directory)
    if not layout.ca_cert.exists():
        raise ConfigInvalid(f"{layout.ca_cert} does not exist; run `certs init` first")
    return layout


def _show(args: argparse.Namespace) -> int:
    layout = _existing_layout(args.directory)
    ca = load_certificate(layout.ca_cert)
    now = utc_now()
    print(f"{layout.ca_cert}  {_summary(ca, now=now)}")
    for folder in sorted(p for p in layout.directory.iterdir() if p.is_dir()):
        for name in _CERT_FILES:
            path = folder / name
            if not path.exists():
                continue
            cert = load_certificate(path)
            chain = "issued by ca.pem" if is_issued_by(cert, ca) else "NOT issued by ca.pem"
            print(f"{path}  {_summary(cert, now=now)}  {chain}")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    layout = _existing_layout(args.directory)
    rotated = rotate_signing_key(layout, args.bureau, suite=args.suite, valid_days=args.days)
    print(f"bureau {rotated.bureau}: new {rotated.suite} signing key {rotated.key_id}")
    print(f"  in use:   {rotated.cert}, {rotated.key}  (copy: {rotated.archived_cert.name})")
    print(
        f"  previous: {rotated.previous_cert}, {rotated.previous_key}  "
        f"(key id {rotated.previous_key_id}, still valid: revoke it with "
        f"`certs revoke {layout.directory} --cert {rotated.previous_cert}` if it was compromised)"
    )
    print("  restart the bureau's node to sign with the new key")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    layout = _existing_layout(args.directory)
    if args.cert is not None:
        if args.role is not None:
            raise ConfigInvalid("--role goes with --bureau, not with --cert")
        path = args.cert
    else:
        if args.role is None:
            raise ConfigInvalid("--bureau needs --role tls|signing")
        paths = layout.bureau(args.bureau)
        path = paths.tls_cert if args.role == "tls" else paths.signing_cert
    cert = load_certificate(path)
    reason = _REASONS[args.reason]
    crl = revoke_certificate(layout, cert, reason=reason, valid_days=args.crl_days)
    print(
        f"revoked {path}  bureau={bureau_of(cert) or '-'}  serial={cert.serial_number:x}  "
        f"reason={reason.value}"
    )
    print(f"{layout.crl}  {_crl_summary(crl)}")
    return 0


def _crl(args: argparse.Namespace) -> int:
    layout = _existing_layout(args.directory)
    crl = issue_crl(layout, valid_days=args.days)
    print(f"{layout.crl}  {_crl_summary(crl)}")
    return 0


@dataclass(frozen=True)
class _StatusLine:
    path: Path
    cert: x509.Certificate
    in_use: bool


def _status(args: argparse.Namespace) -> int:
    layout = _existing_layout(args.directory)
    now = utc_now()
    warn = dt.timedelta(days=args.warn_days)
    # A CRL is re-issued far more often than certificates: its own, shorter horizon.
    crl_warn = dt.timedelta(days=args.crl_warn_days)
    crl = load_crls(layout.crl)[0] if layout.crl.exists() else None
    lines = _status_lines(layout)
    ca = lines[0].cert
    failed = False
    warnings: list[str] = []
    if crl is not None and not is_crl_issued_by(crl, ca):
        # A CRL we cannot trust says nothing about revocation: show that, do not guess.
        print(f"{layout.crl}  NOT issued by ca.pem: ignored")
        crl, failed = None, True
    view = _StatusView(layout, ca, crl, now)
    for line in lines:
        failed = _certificate_status(view, line, warn, warnings) or failed
    failed = _crl_status(view, crl_warn, warnings) or failed
    for warning in warnings:
        print(warning)
    return 1 if failed else 0


@dataclass(frozen=True)
class _StatusView:
    layout: PkiLayout
    ca: x509.Certificate
    crl: x509.CertificateRevocationList | None
    now: dt.datetime


def _status_lines(layout: PkiLayout) -> list[_StatusLine]:
    lines = [_StatusLine(layout.ca_cert, load_certificate(layout.ca_cert), in_use=True)]
    for folder in sorted(p for p in layout.directory.iterdir() if p.is_dir()):
        for name in _STATUS_FILES:
            path = folder / name
            if path.exists():
                lines.append(_StatusLine(path, load_certificate(path), name != _STATUS_FILES[-1]))
    return lines


def _certificate_status(
    view: _StatusView, line: _StatusLine, warn: dt.timedelta, warnings: list[str]
) -> bool:
    """Print one certificate's line; whether it fails the check."""
    cert = line.cert
    left = certificate_expiry(cert, view.now)
    revoked = None
    if view.crl is not None and view.crl.issuer == cert.issuer and line.path != view.layout.ca_cert:
        revoked = revocation_reason(view.crl, cert)
    state = _validity(cert, revoked, left, view.now)
    failed = False
    if not line.in_use:
        state += "  (previous, not in use)"
    elif state != "ok":
        failed = True
    if line.path != view.layout.ca_cert and not is_issued_by(cert, view.ca):
        state += "  NOT issued by ca.pem"
        failed = failed or line.in_use
    print(
        f"{line.path}  bureau={bureau_of(cert) or '-'}  role={certificate_role(cert)}  "
        f"suite={signing_suite_of(cert) or '-'}  key_id={key_id(cert)}  "
        f"not_after={cert.not_valid_after_utc.isoformat()}  days_left={left.days}  {state}"
    )
    if line.in_use and revoked is None and dt.timedelta(0) <= left <= warn:
        warnings.append(f"WARN {line.path} expires in {left.days} days")
    return failed


def _validity(
    cert: x509.Certificate,
    revoked: x509.ReasonFlags | None,
    left: dt.timedelta,
    now: dt.datetime,
) -> str:
    if revoked is not None:
        return f"REVOKED ({revoked.value})"
    if left < dt.timedelta(0):
        return "EXPIRED"
    if now < cert.not_valid_before_utc:
        return "NOT YET VALID"
    return "ok"


def _crl_status(view: _StatusView, crl_warn: dt.timedelta, warnings: list[str]) -> bool:
    """Print the CRL's line; whether it fails the check."""
    layout, crl, now = view.layout, view.crl, view.now
    if crl is None:
        if not layout.crl.exists():
            print(f"{layout.crl}  absent: no certificate is revoked (`certs crl` makes one)")
        return False
    print(f"{layout.crl}  {_crl_summary(crl)}")
    next_update = crl.next_update_utc
    if next_update is not None and next_update < now:
        print(f"{layout.crl}  EXPIRED: verifiers holding it refuse every certificate")
        return True
    if next_update is not None and next_update - now <= crl_warn:
        warnings.append(
            f"WARN {layout.crl} next update due in {(next_update - now).days} days "
            "(run `certs crl`)"
        )
    return False


def _crl_summary(crl: x509.CertificateRevocationList) -> str:
    try:
        number = str(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        number = "-"
    next_update = crl.next_update_utc.isoformat() if crl.next_update_utc else "-"
    return (
        f"crl_number={number}  revoked={len(crl)}  "
        f"this_update={crl.last_update_utc.isoformat()}  next_update={next_update}"
    )


def _summary(cert: x509.Certificate, *, now: dt.datetime | None = None) -> str:
    parts = [
        f"bureau={bureau_of(cert) or '-'}",
        f"role={certificate_role(cert)}",
    ]
    suite = signing_suite_of(cert)
    if suite is not None:
        parts.append(f"suite={suite}")
    parts.append(f"key_id={key_id(cert)}")
    if now is not None:
        parts.append(f"not_before={cert.not_valid_before_utc.isoformat()}")
    parts.append(f"not_after={cert.not_valid_after_utc.isoformat()}")
    if now is not None:
        if now > cert.not_valid_after_utc:
            parts.append("EXPIRED")
        elif now < cert.not_valid_before_utc:
            parts.append("NOT YET VALID")
    return "  ".join(parts)
