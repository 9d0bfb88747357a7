"""``envelope export``: write a stored envelope and its receipt as files a third party can check.

The files are exactly the bytes that were signed (docs/signature.md shows the
``openssl`` commands that verify them); nothing is re-serialised.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from chuanyu.exchange.v1 import envelope_pb2 as epb
from gateway.cli.log import db_arguments, open_reader
from gateway.envelope import parse_envelope, parse_header
from gateway.store import OfflineReader

__all__ = ["ExportedFiles", "export_envelope", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    envelope = subparsers.add_parser("envelope", help="inspect stored envelopes and receipts")
    commands = envelope.add_subparsers(dest="envelope_command", required=True, metavar="COMMAND")
    export = commands.add_parser(
        "export", help="write an envelope and its receipt as files for openssl verification"
    )
    db_arguments(export)
    export.add_argument("--message-id", required=True)
    export.add_argument("--out", type=Path, required=True, help="directory to write into")
    export.add_argument(
        "--key-file",
        type=Path,
        help="the node's at-rest key file (default: the configuration's, or <db>.keys.json "
        "beside a SQLite database)",
    )
    export.set_defaults(handler=_export)


@dataclass(frozen=True, slots=True)
class ExportedFiles:
    directory: Path
    names: tuple[str, ...]


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def export_envelope(reader: OfflineReader, message_id: str, out: Path) -> ExportedFiles:
    """Write the stored envelope ``message_id`` (either direction) and its receipt."""
    stored = reader.envelope(message_id)
    envelope = parse_envelope(stored.envelope)
    files: dict[str, bytes] = {
        "envelope.bin": stored.envelope,
        "header.bin": envelope.header,
        "payload.bin": envelope.payload,
        "signature.bin": envelope.signature.value,
        "signer.pem": _pem(envelope.signer_certificate),
        "payload_sha256.hex": parse_header(envelope.header).payload_sha256.hex().encode() + b"\n",
    }
    if stored.receipt:
        receipt = epb.Receipt()
        receipt.ParseFromString(stored.receipt)
        files |= {
            "receipt.bin": stored.receipt,
            "receipt-body.bin": receipt.body,
            "receipt-signature.bin": receipt.signature.value,
            "receipt-signer.pem": _pem(receipt.signer_certificate),
        }
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    return ExportedFiles(out, tuple(files))


def _export(args: argparse.Namespace) -> int:
    with open_reader(args, key_file=args.key_file) as reader:
        exported = export_envelope(reader, args.message_id, args.out)
    for name in exported.names:
        print(exported.directory / name)
    if "receipt.bin" not in exported.names:
        print("(no receipt stored for this message yet)")
    return 0
