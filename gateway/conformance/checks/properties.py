"""The property-based canonical round trips (the only checks that need Hypothesis)."""

from __future__ import annotations

from functools import partial

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st

from gateway.conformance.checks.common import (
    _CheckFailed,
    _compare,
    _describe,
    _KitBase,
)
from gateway.conformance.strategies import record_strategy, records_strategy
from gateway.records import Record


def canonical_round_trips(kit: _KitBase) -> None:
    currencies = kit.currencies()
    for record_type in kit.record_types:
        strategy = record_strategy(record_type, currencies=currencies).map(lambda r: [r])
        kit.check(
            "canonical round trip",
            f"{record_type.value} ({kit.max_examples} generated records)",
            partial(_property, kit, strategy),
        )
    mixed = records_strategy(kit.record_types, currencies=currencies)
    kit.check(
        "canonical round trip",
        f"mixed batches ({kit.max_examples} generated batches)",
        partial(_property, kit, mixed),
    )


def _property(kit: _KitBase, strategy: st.SearchStrategy[list[Record]]) -> None:
    last_failure: list[str] = []

    @settings(
        max_examples=kit.max_examples,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
        print_blob=False,
    )
    @given(strategy)
    def round_trip(records: list[Record]) -> None:
        try:
            _compare(records, kit.round_trip(records).records)
        except Exception as exc:
            last_failure[:] = [_describe(exc) if not isinstance(exc, _CheckFailed) else str(exc)]
            raise

    try:
        round_trip()
    except Exception as exc:
        raise _CheckFailed(last_failure[0] if last_failure else _describe(exc)) from exc
