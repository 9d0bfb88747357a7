"""Child processes of one bench run: started, awaited, and always stopped.

:class:`ChildProcesses` is a context manager; every process it started is sent
SIGTERM on exit, then SIGKILL if it has not gone within a grace period, whether
the run succeeded or not. Each child's stdout is read line by line on a thread so
the parent can wait for a readiness line with a timeout; stderr goes to a file
whose tail is shown when something fails.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["REPO_ROOT", "BenchError", "Child", "ChildProcesses", "python_module"]

REPO_ROOT = Path(__file__).resolve().parent.parent
_STOP_GRACE_SECONDS = 10.0


class BenchError(Exception):
    """The run could not be completed; the message says which step failed."""


class Child:
    """One running child process and the lines it has printed on stdout."""

    def __init__(self, name: str, process: subprocess.Popen[str], stderr_path: Path) -> None:
        self.name = name
        self.process = process
        self.stderr_path = stderr_path
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, name=f"stdout-{name}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        for line in stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first stdout line matching ``pattern``; lines before it are discarded."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(
                    f"{self.name}: no line matching {pattern!r} within {timeout:.0f} s"
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.process.wait()
                raise BenchError(
                    f"{self.name} exited with status {self.process.returncode} before printing "
                    f"{pattern!r}{self.stderr_tail()}"
                )
            match = compiled.search(line)
            if match is not None:
                return match

    def output_lines(self, timeout: float) -> list[str]:
        """Wait for the process to finish; every stdout line it printed."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"{self.name} did not finish within {timeout:.0f} s") from exc
        self._reader.join(timeout=5)
        lines: list[str] = []
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                lines.append(line)
        return lines

    def stderr_tail(self, lines: int = 20) -> str:
        try:
            text = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        tail = text.strip().splitlines()[-lines:]
        return "".join(f"\n    {line}" for line in tail)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; idempotent."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)


class ChildProcesses:
    """Starts children with the bench's environment and stops them all on exit."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._children: list[Child] = []

    def __enter__(self) -> ChildProcesses:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def start(self, name: str, argv: Sequence[str]) -> Child:
        env = dict(os.environ)
        # Children import bench (and the gateway) from this checkout, whatever the cwd.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        stderr_path = self._log_dir / f"{name}.stderr"
        with stderr_path.open("w", encoding="utf-8") as stderr:
            process = subprocess.Popen(
                list(argv),
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                encoding="utf-8",
            )
        child = Child(name, process, stderr_path)
        self._children.append(child)
        return child

    def stop(self, child: Child) -> None:
        child.stop()
        if child in self._children:
            self._children.remove(child)

    def stop_all(self) -> None:
        while self._children:
            self._children.pop().stop()


def python_module(module: str, *args: str) -> list[str]:
    """argv running ``module`` with this interpreter."""
    return [sys.executable, "-m", module, *args]
