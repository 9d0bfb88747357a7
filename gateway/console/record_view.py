"""What the record-detail page shows: a stored envelope decoded, checked again, PI masked.

Pure: bytes and a verifier in, plain dictionaries out. Personal information is
masked here, before anything reaches a template or a JSON response, unless the
caller has decided (and logged) that this operator may see it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError

from chuanyu.exchange.v1 import envelope_pb2 as epb
from gateway.codec import decode_payload, record_type_from_proto
from gateway.envelope import Freshness, open_envelope, parse_envelope, parse_header, verify_receipt
from gateway.errors import GatewayError
from gateway.pki import SigningCertificateVerifier
from gateway.privacy import PIKind, mask
from gateway.records import Record, personal_info_paths

__all__ = ["RecordView", "build_record_view", "mask_record"]


@dataclass(slots=True)
class RecordView:
    header: dict[str, str] = field(default_factory=dict)
    signature: dict[str, str] = field(default_factory=dict)
    receipt: dict[str, str] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    personal_fields: list[str] = field(default_factory=list)  # PI fields present in the record
    masked: bool = True
    problem: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "header": self.header,
            "signature": self.signature,
            "receipt": self.receipt,
            "record": self.record,
            "personal_fields": self.personal_fields,
            "masked": self.masked,
            "problem": self.problem,
        }


def _mask_at(node: Any, parts: list[str], kind: PIKind, found: list[str], path: str) -> Any:
    if isinstance(node, list):
        return [_mask_at(item, parts, kind, found, path) for item in node]
    if not isinstance(node, dict) or parts[0] not in node:
        return node
    head, rest = parts[0], parts[1:]
    value = node[head]
    if rest:
        node[head] = _mask_at(value, rest, kind, found, path)
    elif value is not None and value != "":
        found.append(path)
        node[head] = mask(kind, value if isinstance(value, str) else str(value))
    return node


def mask_record(data: dict[str, Any], paths: Mapping[str, PIKind]) -> list[str]:
    """Mask ``data`` in place at every PI path; returns the paths that held a value."""
    found: list[str] = []
    for path, kind in sorted(paths.items()):
        _mask_at(data, path.split("."), kind, found, path)
    return found


def _pi_present(data: dict[str, Any], paths: Mapping[str, PIKind]) -> list[str]:
    copy: dict[str, Any] = _deep_copy(data)
    return mask_record(copy, paths)


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _when(ts: Any) -> str:
    return str(ts.ToDatetime(tzinfo=dt.UTC).isoformat()) if ts.ByteSize() else ""


def build_record_view(
    envelope_bytes: bytes,
    receipt_bytes: bytes,
    *,
    receipt_issuer: str,
    verifier: SigningCertificateVerifier,
    unmask: bool,
) -> RecordView:
    """Decode, re-verify (as of the envelope's own created-at) and mask a stored message."""
    view = RecordView(masked=not unmask)
    try:
        envelope = parse_envelope(envelope_bytes)
        header = parse_header(envelope.header)
    except GatewayError as exc:
        view.problem = f"信封无法解析：{exc.message}"
        return view
    created_at = header.created_at.ToDatetime(tzinfo=dt.UTC)
    try:
        record_type = record_type_from_proto(header.record_type).value
    except GatewayError:
        record_type = str(header.record_type)
    view.header = {
        "message_id": header.message_id,
        "sender": header.sender,
        "receiver": header.receiver,
        "record_type": record_type,
        "agreement_id": header.agreement_id,
        "correlation_id": header.correlation_id,
        "created_at": created_at.isoformat(),
        "payload_sha256": header.payload_sha256.hex(),
        "suite": header.suite,
        "key_id": header.key_id,
    }
    try:
        # Checked as of its own created-at: a week-old envelope is not "stale" on this page.
        opened = open_envelope(
            envelope,
            receiver=header.receiver,
            tls_peer=None,
            verifier=verifier,
            now=created_at,
            freshness=Freshness(),
        )
        verdict, signer_bureau = "valid", opened.signer.bureau
    except GatewayError as exc:
        verdict, signer_bureau = f"invalid: {exc.reason}", ""
    view.signature = {
        "suite": envelope.signature.suite,
        "key_id": envelope.signature.key_id,
        "value": envelope.signature.value.hex(),
        "signer_bureau": signer_bureau,
        "verdict": verdict,
    }
    view.receipt = _receipt_view(
        receipt_bytes,
        issuer=receipt_issuer,
        message_id=header.message_id,
        payload_sha256=header.payload_sha256,
        verifier=verifier,
    )
    try:
        record: Record = decode_payload(envelope.payload)
    except GatewayError as exc:
        view.problem = f"记录无法解析：{exc.message}"
        return view
    data: dict[str, Any] = record.model_dump(mode="json")
    paths = personal_info_paths(type(record))
    if unmask:
        view.personal_fields = _pi_present(data, paths)
    else:
        view.personal_fields = mask_record(data, paths)
    view.record = data
    return view


def _receipt_view(
    receipt_bytes: bytes,
    *,
    issuer: str,
    message_id: str,
    payload_sha256: bytes,
    verifier: SigningCertificateVerifier,
) -> dict[str, str]:
    if not receipt_bytes:
        return {"status": "none"}
    receipt = epb.Receipt()
    body = epb.ReceiptBody()
    try:
        receipt.ParseFromString(receipt_bytes)
        body.ParseFromString(receipt.body)
    except DecodeError:
        return {"status": "malformed"}
    received_at = body.received_at.ToDatetime(tzinfo=dt.UTC)
    try:
        verify_receipt(
            receipt,
            issuer=issuer,
            message_id=message_id,
            payload_sha256=payload_sha256,
            verifier=verifier,
            now=received_at,
        )
        verdict = "valid"
    except GatewayError as exc:
        verdict = f"invalid: {exc.reason}"
    return {
        "status": epb.ReceiptStatus.Name(body.status),
        "issuer": body.receiver,
        "received_at": _when(body.received_at),
        "header_sha256": body.header_sha256.hex(),
        "key_id": body.key_id,
        "verdict": verdict,
    }
