"""``chuanyu-gateway certs``: make and inspect the development cooperation PKI."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from cryptography import x509

from gateway.errors import ConfigInvalid
from gateway.pki import (
    PkiLayout,
    bureau_of,
    certificate_role,
    init_pki,
    is_issued_by,
    key_id,
    load_certificate,
)

__all__ = ["register"]

DEFAULT_BUREAUS = ("500151", "510900")
DEFAULT_HOSTS = ("localhost", "127.0.0.1")
_CERT_FILES = ("tls.pem", "signing.pem")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    certs = subparsers.add_parser("certs", help="make and inspect the cooperation PKI")
    commands = certs.add_subparsers(dest="certs_command", required=True, metavar="ACTION")

    init = commands.add_parser(
        "init",
        help="create a CA and per-bureau TLS and signing certificates (keeps existing files)",
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
    init.set_defaults(handler=_init)

    show = commands.add_parser("show", help="list the certificates of a PKI directory")
    show.add_argument("directory", type=Path, metavar="DIR")
    show.set_defaults(handler=_show)


def _init(args: argparse.Namespace) -> int:
    layout = init_pki(
        args.directory,
        args.bureaus or DEFAULT_BUREAUS,
        hosts=args.hosts or DEFAULT_HOSTS,
        valid_days=args.days,
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


def _show(args: argparse.Namespace) -> int:
    layout = PkiLayout.at(args.directory)
    if not layout.ca_cert.exists():
        raise ConfigInvalid(f"{layout.ca_cert} does not exist; run `certs init` first")
    ca = load_certificate(layout.ca_cert)
    now = dt.datetime.now(dt.UTC)
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


def _summary(cert: x509.Certificate, *, now: dt.datetime | None = None) -> str:
    parts = [
        f"bureau={bureau_of(cert) or '-'}",
        f"role={certificate_role(cert)}",
        f"key_id={key_id(cert)}",
    ]
    if now is not None:
        parts.append(f"not_before={cert.not_valid_before_utc.isoformat()}")
    parts.append(f"not_after={cert.not_valid_after_utc.isoformat()}")
    if now is not None:
        if now > cert.not_valid_after_utc:
            parts.append("EXPIRED")
        elif now < cert.not_valid_before_utc:
            parts.append("NOT YET VALID")
    return "  ".join(parts)
