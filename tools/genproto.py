"""Generate the Python protobuf, gRPC and mypy-stub code for proto/ (``make proto``).

The generated package ``chuanyu`` is committed; ``tests/unit/test_generated_code.py``
regenerates into a temporary directory and fails when the committed copy is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE_INIT = '"""Generated from proto/ by ``make proto``; do not edit."""\n'


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Write generated modules under ``out_dir``; returns every file written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    grpc_include = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{grpc_include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *(str(p.relative_to(PROTO_ROOT)) for p in proto_files()),
    ]
    # protoc-gen-mypy and protoc-gen-mypy_grpc live beside this interpreter.
    import os

    bindir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for package_dir in {p.parent for p in out_dir.rglob("*_pb2.py")}:
        current = package_dir
        while current != out_dir:
            (current / "__init__.py").write_text(PACKAGE_INIT)
            current = current.parent
    return sorted(p for p in out_dir.rglob("*") if p.is_file())


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
