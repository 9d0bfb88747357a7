"""The checks of the conformance kit, imported only when a check runs.

``common`` holds the kit's plumbing, ``kit`` the checks in order and
:func:`run_checks`, ``refusals`` the corrupted inputs, and ``properties`` the
property-based round trips, the only module that imports Hypothesis (lazily, so
the kit runs without it and reports those checks as skipped).
"""

from __future__ import annotations

from gateway.conformance.checks.kit import run_checks

__all__ = ["run_checks"]
