"""The adapter contract itself: discovery, the canonical pseudo-adapter, errors, code tables."""

from __future__ import annotations

import importlib.metadata
import json

import pytest

from adapters.suining import SuiningAdapter
from adapters.tongliang import TongliangAdapter
from gateway.adapter import (
    AdapterBroken,
    AdapterNotFound,
    CanonicalJsonAdapter,
    CodeTable,
    EncodeContext,
    LocalFileInvalid,
    LocalProblem,
    available_adapters,
    load_adapter,
    registry,
)
from gateway.errors import PeerError, RecordInvalid
from gateway.records import RecordType


def test_shipped_adapters_are_found_by_entry_point() -> None:
    assert {"canonical", "suining", "tongliang"} <= set(available_adapters())
    assert isinstance(load_adapter("tongliang"), TongliangAdapter)
    assert isinstance(load_adapter("suining"), SuiningAdapter)
    assert isinstance(load_adapter("canonical"), CanonicalJsonAdapter)


def test_unknown_adapter_lists_the_installed_ones() -> None:
    with pytest.raises(
        AdapterNotFound, match=r"no adapter named 'nanchong'; installed: canonical, .*suining"
    ):
        load_adapter("nanchong")


def _fake_entry_points(monkeypatch: pytest.MonkeyPatch, *values: str) -> None:
    points = [
        importlib.metadata.EntryPoint(name="fake", value=value, group=registry.ENTRY_POINT_GROUP)
        for value in values
    ]
    monkeypatch.setattr(registry, "_entry_points", lambda: points)


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        (("json:loads",), "is not a gateway.adapter.LocalAdapter"),
        (("no_such_module_anywhere:Adapter",), "failed to load: ModuleNotFoundError"),
        (
            ("adapters.tongliang:TongliangAdapter", "adapters.suining:SuiningAdapter"),
            "registered more than once",
        ),
    ],
)
def test_broken_entry_points_are_reported(
    monkeypatch: pytest.MonkeyPatch, values: tuple[str, ...], needle: str
) -> None:
    _fake_entry_points(monkeypatch, *values)
    with pytest.raises(AdapterBroken, match=needle):
        load_adapter("fake")


def test_local_file_errors_are_record_invalid_peer_errors() -> None:
    error = LocalFileInvalid(
        [LocalProblem("r", "m", position=1, record_id="X", field="f")], adapter="a"
    )
    assert isinstance(error, RecordInvalid) and isinstance(error, PeerError)
    assert error.reason == "LOCAL_FILE_INVALID"
    assert error.violations[0].field == "record #1 (X), field f"
    assert error.message == "a file refused (1 problem): record #1 (X), field f: m (rule r)"


def test_many_problems_are_summarised() -> None:
    problems = [LocalProblem("r", f"m{n}", position=n) for n in range(1, 9)]
    assert LocalFileInvalid(problems, adapter="a").message.endswith("; and 3 more")


def test_code_table_must_be_one_to_one() -> None:
    with pytest.raises(ValueError, match="two codes to one value"):
        CodeTable("X", RecordType.FEEDBACK, "status", {"1": "a", "2": "a"})
    with pytest.raises(ValueError, match="default"):
        CodeTable("X", RecordType.FEEDBACK, "status", {"1": "a"}, default="9")


def test_canonical_adapter_round_trips_and_refuses() -> None:
    canonical = CanonicalJsonAdapter()
    feedback = {
        "记录类型": "办理反馈",
        "原记录编号": "TS1",
        "原记录类型": "消费投诉",
        "办理状态": "已受理",
        "办理时间": "2026-11-28 09:00:00",
        "承办人": "吴十",
    }
    records = load_adapter("tongliang").decode(json.dumps([feedback]).encode()).records
    assert canonical.decode(canonical.encode(records, EncodeContext())).records == records
    with pytest.raises(LocalFileInvalid) as caught:
        canonical.decode(b'[{"record_type": "feedback", "original_number": "TS1"}]')
    assert {p.canonical_field for p in caught.value.problems} >= {"status", "officer"}
    assert all(p.position == 1 and p.record_id == "TS1" for p in caught.value.problems)
    with pytest.raises(LocalFileInvalid) as caught:
        canonical.decode(
            b'[{"record_type": "consumer_complaint", "complaint_number": "T", "amount": 2999.0}]'
        )
    amount = [p for p in caught.value.problems if p.canonical_field == "amount"]
    assert [p.rule for p in amount] == ["money.float"]
