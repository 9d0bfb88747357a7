"""Local file ⇄ canonical records ⇄ another local file: the one path every conversion takes.

The node and the ``convert`` command both read local files with :func:`read_local`
(decode, then validate every record again so a third-party adapter cannot hand
over a record that skipped validation) and write them with :func:`write_local`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

from pydantic import BaseModel

from gateway.adapter import (
    Batch,
    EncodeContext,
    LocalAdapter,
    LocalFileInvalid,
    LocalProblem,
    RecordNotEncodable,
    load_adapter,
    localize_violations,
)
from gateway.clock import BEIJING
from gateway.errors import RecordInvalid
from gateway.records import Record, parse_record, record_key

__all__ = ["convert", "default_context", "read_local", "write_local"]


def _adapter(adapter: LocalAdapter | str) -> LocalAdapter:
    return load_adapter(adapter) if isinstance(adapter, str) else adapter


def read_local(data: bytes, *, adapter: LocalAdapter | str) -> Batch:
    """Decode ``data`` with ``adapter`` and re-validate every record it returns.

    Raises :class:`~gateway.adapter.LocalFileInvalid` for a file the adapter
    refuses or a record that fails canonical validation.
    """
    reader = _adapter(adapter)
    batch = reader.decode(data)
    problems: list[LocalProblem] = []
    checked: list[Record] = []
    for position, record in enumerate(batch.records, start=1):
        if not isinstance(record, BaseModel):
            problems.append(
                LocalProblem(
                    "adapter.output",
                    f"the adapter returned a {type(record).__name__}, not a canonical record",
                    position=position,
                )
            )
            continue
        try:
            checked.append(parse_record(record))
        except RecordInvalid as exc:
            problems.extend(
                localize_violations(
                    exc,
                    position=position,
                    record_type=str(getattr(record, "record_type", "")) or None,
                    record_id=_safe_key(record),
                    local_field=lambda path: None,
                )
            )
    if problems:
        raise LocalFileInvalid(problems, adapter=reader.name)
    return Batch(
        records=tuple(checked),
        batch_id=batch.batch_id,
        sender_bureau=batch.sender_bureau,
        sent_at=batch.sent_at,
    )


def _safe_key(record: BaseModel) -> str | None:
    for name in ("uscc", "complaint_number", "referral_number", "original_number"):
        value = getattr(record, name, None)
        if isinstance(value, str) and value:
            return value[:60]
    return None


def write_local(
    records: Sequence[Record], *, adapter: LocalAdapter | str, context: EncodeContext
) -> bytes:
    """Encode canonical ``records`` into one local file of ``adapter``."""
    return _adapter(adapter).encode(records, context)


def default_context(
    batch: Batch,
    *,
    source: LocalAdapter,
    data: bytes,
    now: dt.datetime | None = None,
) -> EncodeContext:
    """Header values for writing ``batch`` when the caller gives none.

    The batch's own header wins; otherwise the sender is the bureau of the
    source format, the batch id is derived from the input bytes (so converting
    the same file twice gives the same id, and the receiver can spot the
    duplicate), and the sent-at time is now.
    """
    sent_at = batch.sent_at or (now or dt.datetime.now(BEIJING)).replace(microsecond=0)
    batch_id = batch.batch_id or "CY" + hashlib.sha256(data).hexdigest()[:16].upper()
    return EncodeContext(
        sender_bureau=batch.sender_bureau or source.bureau, batch_id=batch_id, sent_at=sent_at
    )


def convert(
    data: bytes, *, source: str, target: str, context: EncodeContext | None = None
) -> bytes:
    """Convert a local file of adapter ``source`` into one of adapter ``target``.

    ``context`` overrides the header values :func:`default_context` would
    choose; a field left ``None`` in it keeps the default. Raises the errors of
    :func:`read_local` and :func:`write_local`; a refused input produces no
    output.
    """
    reader, writer = _adapter(source), _adapter(target)
    batch = read_local(data, adapter=reader)
    chosen = default_context(batch, source=reader, data=data)
    if context is not None:
        chosen = EncodeContext(
            sender_bureau=context.sender_bureau or chosen.sender_bureau,
            batch_id=context.batch_id or chosen.batch_id,
            sent_at=context.sent_at or chosen.sent_at,
        )
    unsupported = [
        LocalProblem(
            "record.type",
            f"the {writer.name} format cannot carry a {record.record_type.value}",
            position=position,
            record_id=record_key(record),
            record_type=record.record_type.value,
        )
        for position, record in enumerate(batch.records, start=1)
        if record.record_type not in writer.record_types
    ]
    if unsupported:
        raise RecordNotEncodable(unsupported, adapter=writer.name)
    return write_local(batch.records, adapter=writer, context=chosen)
