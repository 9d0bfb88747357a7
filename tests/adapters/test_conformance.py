"""The conformance kit passes on the shipped adapters and fails, readably, on broken ones."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import pytest

from adapters.suining import SuiningAdapter
from adapters.tongliang import TongliangAdapter
from gateway.adapter import Batch, EncodeContext
from gateway.cli import main
from gateway.conformance import check_adapter
from gateway.conformance.pytest_plugin import AdapterConformance
from gateway.records import EnforcementReferral, Record

SAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "samples"


@pytest.mark.parametrize("name", ["tongliang", "suining"])
def test_shipped_adapters_conform(name: str, adapter_conformance: AdapterConformance) -> None:
    report = adapter_conformance(name, SAMPLES / name, max_examples=15)
    assert report.passed
    checks = {result.check for result in report.results}
    assert checks == {
        "contract",
        "samples",
        "local round trip",
        "streaming",
        "canonical round trip",
        "code tables",
        "encoding",
        "refusal",
    }


class ForgetsItems(TongliangAdapter):
    """Drops 涉案物品 when writing: a lossy adapter."""

    def encode(self, records: Sequence[Record], context: EncodeContext) -> bytes:
        stripped = [
            r.model_copy(update={"items": ()}) if isinstance(r, EnforcementReferral) else r
            for r in records
        ]
        return super().encode(stripped, context)


class CrashesOnGarbage(SuiningAdapter):
    """Lets a foreign exception escape on input that is not XML."""

    def decode(self, data: bytes) -> Batch:
        if not data.startswith(b"<?xml"):
            raise ValueError("cannot parse")
        return super().decode(data)


class DeclaresTheWrongEncoding(TongliangAdapter):
    encoding = "gb18030"


def test_lossy_adapter_fails_the_round_trips() -> None:
    report = check_adapter(ForgetsItems(), SAMPLES / "tongliang", max_examples=10)
    assert not report.passed
    failed = {(r.check, r.subject) for r in report.failures}
    assert ("local round trip", "referrals_and_feedback.json") in failed
    assert ("canonical round trip", "enforcement_referral (10 generated records)") in failed
    text = report.render()
    assert text.startswith("Conformance of adapter 'tongliang': FAIL (")
    assert "record #1 (enforcement_referral) changed in: items" in text


def test_crashing_adapter_fails_the_refusals() -> None:
    report = check_adapter(CrashesOnGarbage(), SAMPLES / "suining", max_examples=5)
    failures = {r.subject: r.detail for r in report.failures}
    assert failures["random bytes"] == "raised ValueError: cannot parse instead of LocalFileInvalid"
    assert "empty file" in failures


def test_wrong_encoding_fails_the_encoding_checks() -> None:
    report = check_adapter(DeclaresTheWrongEncoding(), SAMPLES / "tongliang", max_examples=5)
    failed = {r.check for r in report.failures}
    assert "encoding" in failed
    assert "local round trip" in failed  # UTF-8 bytes are not what it declares


def test_missing_samples_fail_the_check(tmp_path: Path) -> None:
    report = check_adapter("tongliang", tmp_path)
    assert not report.passed
    assert f"no *.json files in {tmp_path}" in report.render()


def test_samples_must_cover_every_record_type(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_bytes((SAMPLES / "tongliang" / "spec_example.json").read_bytes())
    report = check_adapter("tongliang", tmp_path, max_examples=5)
    assert [r.detail for r in report.failures] == [
        "no sample holds a enforcement_referral, feedback"
    ]


def test_cli_check_passes(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        [
            "adapter",
            "check",
            "suining",
            "--samples",
            str(SAMPLES / "suining"),
            "--max-examples",
            "10",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.startswith("Conformance of adapter 'suining': PASS")


def test_cli_check_fails_non_zero(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["adapter", "check", "tongliang", "--samples", str(tmp_path)]) == 1
    assert "[FAIL] samples" in capsys.readouterr().out


def test_cli_check_of_an_unknown_adapter(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["adapter", "check", "wanzhou", "--samples", str(tmp_path)]) == 1
    assert "no adapter named 'wanzhou'" in capsys.readouterr().out


class StreamsBadly(TongliangAdapter):
    """Streams only the first record of a file: large files would lose the rest."""

    def iter_decode(self, stream: BinaryIO) -> Iterator[Record]:
        yield from list(super().iter_decode(stream))[:1]


def test_a_stream_decoder_that_loses_records_fails_the_kit() -> None:
    report = check_adapter(StreamsBadly(), SAMPLES / "tongliang", max_examples=5)
    assert not report.passed
    failed = {result.check for result in report.results if not result.passed}
    assert failed == {"streaming"}


# Hypothesis is an extra: a finder that refuses it stands in for an environment without it.
_WITHOUT_HYPOTHESIS = """
import sys
from importlib.abc import MetaPathFinder


class NoHypothesis(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "hypothesis" or name.startswith("hypothesis."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoHypothesis())
import gateway.conformance
from gateway.cli import main

sys.exit(main(["adapter", "check", "tongliang", "--samples", sys.argv[1]]))
"""


def test_the_kit_runs_without_hypothesis_and_says_what_it_skipped() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_HYPOTHESIS, str(SAMPLES / "tongliang")],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[skip] canonical round trip" in done.stdout
    assert "Hypothesis is not installed" in done.stdout
    assert "[ok  ] refusal" in done.stdout
    assert "hypothesis" not in done.stderr.lower()
