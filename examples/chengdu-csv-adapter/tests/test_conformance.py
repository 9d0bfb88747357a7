"""The integrator's own proof: the Chuanyu conformance kit passes on our samples."""

from __future__ import annotations

from pathlib import Path

from gateway.conformance.pytest_plugin import AdapterConformance

SAMPLES = Path(__file__).parent.parent / "samples"


def test_chengdu_adapter_conforms(adapter_conformance: AdapterConformance) -> None:
    report = adapter_conformance("chengdu", SAMPLES)
    assert report.passed
