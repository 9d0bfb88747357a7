"""The committed generated package matches proto/: regenerate and compare byte for byte."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _genproto() -> object:
    spec = importlib.util.spec_from_file_location("genproto", ROOT / "tools" / "genproto.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["genproto"] = module
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_current(tmp_path: Path) -> None:
    genproto = _genproto()
    written = genproto.generate(tmp_path)  # type: ignore[attr-defined]
    assert written, "protoc wrote nothing"
    stale = []
    for fresh in written:
        relative = fresh.relative_to(tmp_path)
        committed = ROOT / relative
        if not committed.is_file() or committed.read_bytes() != fresh.read_bytes():
            stale.append(str(relative))
    committed_files = {
        p.relative_to(ROOT)
        for p in (ROOT / "chuanyu").rglob("*")
        if p.suffix in (".py", ".pyi") and "__pycache__" not in p.parts
    }
    extra = sorted(str(p) for p in committed_files - {p.relative_to(tmp_path) for p in written})
    assert not stale and not extra, (
        f"generated code is stale (run `make proto`): changed {stale}, no longer generated {extra}"
    )
