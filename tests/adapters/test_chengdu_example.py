"""The example third-party adapter: installed with pip, found by entry point, conformant."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.adapter import available_adapters, load_adapter
from gateway.convert import convert

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "chengdu-csv-adapter"
CLI = "import sys; from gateway.cli import main; sys.exit(main())"


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True,
        capture_output=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def chengdu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # Build from a copy so the example directory gets no build/ or egg-info litter.
    source = tmp_path_factory.mktemp("example") / "chengdu-csv-adapter"
    shutil.copytree(
        EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    _pip("install", "--no-deps", "--no-build-isolation", str(source))
    importlib.invalidate_caches()
    try:
        yield source
    finally:
        _pip("uninstall", "-y", "chengdu-adapter")
        importlib.invalidate_caches()


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


def test_entry_point_discovery(chengdu: Path) -> None:
    assert "chengdu" in available_adapters()
    adapter = load_adapter("chengdu")
    assert (adapter.name, adapter.media_type, adapter.bureau) == ("chengdu", "text/csv", "510100")
    listing = _cli("adapter", "list")
    assert listing.returncode == 0, listing.stderr
    assert any(line.startswith("chengdu ") for line in listing.stdout.splitlines())


def test_adapter_check_passes(chengdu: Path) -> None:
    result = _cli(
        "adapter", "check", "chengdu", "--samples", str(chengdu / "samples"), "--max-examples", "15"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Conformance of adapter 'chengdu': PASS")


def test_converts_with_the_shipped_adapters(chengdu: Path) -> None:
    data = (chengdu / "samples" / "chengdu_all_types.csv").read_bytes()
    original = load_adapter("chengdu").decode(data).records
    xml = convert(data, source="chengdu", target="suining")
    back = convert(xml, source="suining", target="chengdu")
    assert load_adapter("chengdu").decode(back).records == original
    assert b"<FSDW>510100</FSDW>" in xml


def test_chengdu_refuses_with_column_names(chengdu: Path) -> None:
    data = (chengdu / "samples" / "chengdu_all_types.csv").read_bytes()
    broken = data.replace(b"92510903MA6AB7Q52D", b"92510903MA6AB7Q52E", 1)
    result = subprocess.run(
        [sys.executable, "-c", CLI, "convert", "--from", "chengdu", "--to", "tongliang", "-", "-"],
        input=broken,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "field respondent.uscc" in result.stderr.decode()
    assert result.stdout == b""


def test_integrators_own_pytest_run_uses_the_plugin(chengdu: Path) -> None:
    result = subprocess.run(
        # The project venv also holds pytest-asyncio, which the example does not use.
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:asyncio",
            "tests",
        ],
        cwd=chengdu,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
