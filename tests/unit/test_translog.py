"""The transfer log's hash chain: entry hashes and chain verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from gateway.translog import (
    GENESIS_HASH,
    Direction,
    EventKind,
    LogEntry,
    canonical_detail,
    entry_hash,
    verify_chain,
)

EVENTS: list[tuple[EventKind, Direction, str, dict[str, Any]]] = [
    (EventKind.ACCEPTED_FROM_LOCAL, Direction.LOCAL, "", {"record_key": "TL12315-2024-050001"}),
    (EventKind.SIGNED, Direction.OUTBOUND, "510900", {"payload_sha256": "ab" * 32}),
    (EventKind.SENT, Direction.OUTBOUND, "510900", {"attempt": 1, "备注": "送达"}),
    (EventKind.RECEIVED, Direction.INBOUND, "510900", {}),
    (EventKind.RECEIPT_ISSUED, Direction.INBOUND, "510900", {"header_sha256": "cd" * 32}),
]


def build_chain(count: int = len(EVENTS), first_seq: int = 1) -> list[LogEntry]:
    """Entries as the store writes them: each hash over the previous one and its own content."""
    entries: list[LogEntry] = []
    prev = GENESIS_HASH
    for i, (kind, direction, peer, detail) in enumerate(EVENTS[:count]):
        entry = LogEntry(
            seq=first_seq + i,
            at=f"2024-05-20T01:30:0{i}.000000+00:00",
            kind=kind.value,
            direction=direction.value,
            peer=peer,
            message_id="6f1c1a52-3b0e-4c57-9d4e-0b6a3f3c2a10" if peer else "",
            record_type="consumer_complaint",
            detail=canonical_detail(detail),
            prev_hash=prev,
            hash=b"",
        )
        entry = replace(entry, hash=entry_hash(prev, entry.canonical_bytes()))
        entries.append(entry)
        prev = entry.hash
    return entries


def test_entry_hash_is_sha256_of_prev_hash_and_canonical_json() -> None:
    entry = build_chain(1)[0]
    canonical = entry.canonical_bytes()
    assert entry.hash == hashlib.sha256(GENESIS_HASH + canonical).digest()
    assert entry_hash(GENESIS_HASH, canonical) == entry.hash
    assert bytes(32) == GENESIS_HASH
    # Canonical JSON: sorted keys, no spaces, UTF-8 (not \\u escapes).
    assert json.loads(canonical) == {
        "seq": 1,
        "at": entry.at,
        "kind": "accepted_from_local",
        "direction": "local",
        "peer": "",
        "message_id": "",
        "record_type": "consumer_complaint",
        "detail": '{"record_key":"TL12315-2024-050001"}',
    }
    assert canonical == json.dumps(
        json.loads(canonical), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def test_canonical_detail_is_stable_and_utf8() -> None:
    assert canonical_detail({"b": 1, "a": "送达"}) == '{"a":"送达","b":1}'
    assert canonical_detail({"a": "送达", "b": 1}) == canonical_detail({"b": 1, "a": "送达"})


def test_intact_chain() -> None:
    entries = build_chain()
    verdict = verify_chain(entries)
    assert verdict.ok
    assert verdict.entries == len(entries)
    assert verdict.head == entries[-1].hash
    assert verdict.first_bad_seq is None
    assert verdict.problem == ""


def test_empty_chain() -> None:
    verdict = verify_chain([])
    assert verdict.ok
    assert (verdict.entries, verdict.head) == (0, GENESIS_HASH)


def test_chain_is_consumed_as_an_iterator() -> None:
    entries = build_chain()
    assert verify_chain(iter(entries)).ok


Tamper = Callable[[LogEntry], LogEntry]

ALTERATIONS: list[tuple[str, Tamper]] = [
    ("kind", lambda e: replace(e, kind=EventKind.REJECTED.value)),
    ("peer", lambda e: replace(e, peer="510100")),
    ("at", lambda e: replace(e, at=e.at.replace("01:30", "01:31"))),
    ("detail", lambda e: replace(e, detail=canonical_detail({"forged": True}))),
    ("detail-spacing", lambda e: replace(e, detail=e.detail.replace(":", ": "))),
    ("message-id", lambda e: replace(e, message_id="00000000-0000-4000-8000-000000000000")),
    ("record-type", lambda e: replace(e, record_type="feedback")),
    ("hash", lambda e: replace(e, hash=bytes(32))),
]


@pytest.mark.parametrize("index", [0, 1, 4])
@pytest.mark.parametrize("tamper", [a[1] for a in ALTERATIONS], ids=[a[0] for a in ALTERATIONS])
def test_altered_entry_is_named_by_seq(index: int, tamper: Tamper) -> None:
    entries = build_chain()
    altered = tamper(entries[index])
    assert altered != entries[index]
    entries[index] = altered
    verdict = verify_chain(entries)
    assert not verdict.ok
    assert verdict.first_bad_seq == entries[index].seq
    assert verdict.entries == index
    assert verdict.head == (entries[index - 1].hash if index else GENESIS_HASH)
    assert "altered" in verdict.problem


def test_altered_entry_with_a_recomputed_hash_breaks_the_next_link() -> None:
    entries = build_chain()
    forged = replace(entries[2], peer="510100")
    entries[2] = replace(forged, hash=entry_hash(forged.prev_hash, forged.canonical_bytes()))
    verdict = verify_chain(entries)
    assert not verdict.ok
    assert verdict.first_bad_seq == entries[3].seq
    assert "prev_hash" in verdict.problem


@pytest.mark.parametrize("index", [0, 2])
def test_broken_prev_hash(index: int) -> None:
    entries = build_chain()
    broken = replace(entries[index], prev_hash=b"\x01" * 32)
    # Rehash so only the link, not the content check, can catch it.
    entries[index] = replace(broken, hash=entry_hash(broken.prev_hash, broken.canonical_bytes()))
    verdict = verify_chain(entries)
    assert not verdict.ok
    assert verdict.first_bad_seq == entries[index].seq
    assert verdict.entries == index
    assert "prev_hash" in verdict.problem


def test_first_entry_removed() -> None:
    verdict = verify_chain(build_chain()[1:])
    assert not verdict.ok
    assert verdict.first_bad_seq == 2
    assert "prev_hash" in verdict.problem


def test_sequence_gap() -> None:
    entries = build_chain()
    del entries[2]
    verdict = verify_chain(entries)
    assert not verdict.ok
    assert verdict.first_bad_seq == 4
    assert verdict.entries == 2
    assert verdict.head == entries[1].hash
    assert "sequence gap: expected 3" in verdict.problem


def test_entries_out_of_order() -> None:
    entries = build_chain()
    entries[1], entries[2] = entries[2], entries[1]
    verdict = verify_chain(entries)
    assert not verdict.ok
    assert verdict.first_bad_seq == 3
    assert "sequence gap" in verdict.problem


def test_repeated_entry() -> None:
    entries = build_chain()
    entries.insert(2, entries[1])
    verdict = verify_chain(entries)
    assert not verdict.ok
    assert verdict.first_bad_seq == 2
