"""The conformance report: one result per check, rendered for people."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CheckResult", "ConformanceReport"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check: which, on what, whether it passed, and why not.

    A skipped check did not run (``detail`` says why); it counts as passed, and the
    rendered report marks it so nobody mistakes it for a proof.
    """

    check: str
    subject: str
    passed: bool
    detail: str = ""
    skipped: bool = False


@dataclass(frozen=True)
class ConformanceReport:
    adapter: str
    results: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(result.passed for result in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(result for result in self.results if not result.passed)

    @property
    def skipped(self) -> tuple[CheckResult, ...]:
        return tuple(result for result in self.results if result.skipped)

    def render(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        lines = [
            f"Conformance of adapter {self.adapter!r}: {verdict} "
            f"({len(self.results)} checks, {len(self.failures)} failed"
            + (f", {len(self.skipped)} skipped)" if self.skipped else ")")
        ]
        for result in self.results:
            mark = "skip" if result.skipped else "ok  " if result.passed else "FAIL"
            lines.append(f"  [{mark}] {result.check}: {result.subject}")
            if (result.skipped or not result.passed) and result.detail:
                lines.extend(f"         {line}" for line in result.detail.splitlines())
        return "\n".join(lines)
