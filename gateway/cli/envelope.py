"""``envelope export``: write a stored envelope and its receipt as files a third party can check.

The files are exactly the bytes that were signed (docs/signature.md shows the
``openssl`` commands that verify them); nothing is re-serialised.
"""

from __future__ import annotations

import argparse
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from chuanyu.exchange.v1 import envelope_pb2 as epb
from gateway.envelope import parse_envelope, parse_header
from gateway.errors import ConfigInvalid, NotFound, StoreUnavailable
from gateway.store.at_rest import AtRest, default_key_file
from gateway.vault import Vault

__all__ = ["ExportedFiles", "export_envelope", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    envelope = subparsers.add_parser("envelope", help="inspect stored envelopes and receipts")
    commands = envelope.add_subparsers(dest="envelope_command", required=True, metavar="COMMAND")
    export = commands.add_parser(
        "export", help="write an envelope and its receipt as files for openssl verification"
    )
    export.add_argument("--db", type=Path, required=True, help="a node's SQLite database")
    export.add_argument("--message-id", required=True)
    export.add_argument("--out", type=Path, required=True, help="directory to write into")
    export.add_argument(
        "--key-file",
        type=Path,
        help="the node's at-rest key file (default: <db>.keys.json beside the database)",
    )
    export.set_defaults(handler=_export)


@dataclass(frozen=True, slots=True)
class ExportedFiles:
    directory: Path
    names: tuple[str, ...]


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def _load(db: Path, message_id: str, at_rest: AtRest) -> tuple[bytes, bytes]:
    if not db.is_file():
        raise StoreUnavailable(f"no node database at {db}")
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot open {db}: {exc}") from exc
    try:
        row = conn.execute(
            "SELECT o.envelope, r.receipt FROM outbox o LEFT JOIN receipts r "
            "ON r.message_id = o.message_id AND r.direction = 'received' WHERE o.message_id = ?",
            (message_id,),
        ).fetchone()
        if row is not None:
            row = (at_rest.open_outbound(message_id, bytes(row[0])), row[1])
        else:
            row = conn.execute(
                "SELECT i.envelope, r.receipt, i.sender FROM inbox i LEFT JOIN receipts r "
                "ON r.message_id = i.message_id AND r.direction = 'issued' WHERE i.message_id = ?",
                (message_id,),
            ).fetchone()
            if row is not None:
                row = (at_rest.open_inbound(row[2], message_id, bytes(row[0])), row[1])
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot read {db}: {exc}") from exc
    finally:
        conn.close()
    if row is None:
        raise NotFound(f"{db} holds no envelope {message_id}")
    return bytes(row[0]), bytes(row[1] or b"")


def export_envelope(
    db: Path, message_id: str, out: Path, key_file: Path | None = None
) -> ExportedFiles:
    key_file = key_file or default_key_file(db)
    if not key_file.is_file():
        raise ConfigInvalid(f"no at-rest key file {key_file}: stored envelopes are encrypted")
    envelope_bytes, receipt_bytes = _load(db, message_id, AtRest(Vault.load(key_file)))
    envelope = parse_envelope(envelope_bytes)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {
        "envelope.bin": envelope_bytes,
        "header.bin": envelope.header,
        "payload.bin": envelope.payload,
        "signature.bin": envelope.signature.value,
        "signer.pem": _pem(envelope.signer_certificate),
        "payload_sha256.hex": parse_header(envelope.header).payload_sha256.hex().encode() + b"\n",
    }
    if receipt_bytes:
        receipt = epb.Receipt()
        receipt.ParseFromString(receipt_bytes)
        files |= {
            "receipt.bin": receipt_bytes,
            "receipt-body.bin": receipt.body,
            "receipt-signature.bin": receipt.signature.value,
            "receipt-signer.pem": _pem(receipt.signer_certificate),
        }
    for name, data in files.items():
        (out / name).write_bytes(data)
    return ExportedFiles(out, tuple(files))


def _export(args: argparse.Namespace) -> int:
    exported = export_envelope(args.db, args.message_id, args.out, args.key_file)
    for name in exported.names:
        print(exported.directory / name)
    if "receipt.bin" not in exported.names:
        print("(no receipt stored for this message yet)")
    return 0
