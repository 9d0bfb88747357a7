"""The adapter conformance kit: proves a region adapter keeps the contract.

:func:`check_adapter` runs every check against an adapter and the integrator's
own sample files and returns a :class:`ConformanceReport`;
``chuanyu-gateway adapter check NAME --samples DIR`` prints it, and the pytest
plugin (:mod:`gateway.conformance.pytest_plugin`) offers it as the
``adapter_conformance`` fixture. The checks:

* **contract** — the class attributes are set and make sense; code tables are
  :class:`~gateway.adapter.CodeTable` objects;
* **samples** — every sample decodes, and together they hold every record type
  the adapter supports;
* **local round trip** — local → canonical → local → canonical gives equal
  records and an equal batch header;
* **canonical round trip** — canonical → local → canonical is the identity on
  property-generated records of every supported type, alone and in batches
  (these need Hypothesis, the ``conformance`` extra: without it they are reported
  as skipped, with the reason, and every other check still runs);
* **code tables** — every table is one-to-one, covers every value of its
  canonical field, and every code survives encode → decode;
* **encoding** — text outside the BMP is written in the declared encoding
  (and an XML declaration names it);
* **refusals** — corrupted files (a broken USCC check character, a blanked
  required field, negative money, a bad resident id, garbage bytes, bytes the
  encoding cannot hold, an oversized file, an entity bomb for XML, and the
  adapter's own :meth:`~gateway.adapter.LocalAdapter.corruptions`) are refused
  with :class:`~gateway.adapter.LocalFileInvalid` naming record and field,
  without personal information in clear.

The valid records the kit starts from are public: :mod:`gateway.conformance.samples`.

Corruptions are made through canonical records and the adapter's own encoder,
so the kit needs no knowledge of the format. That asks one thing of ``encode``:
it writes the values it is given (validating is decode's job).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gateway.conformance.report import CheckResult, ConformanceReport

if TYPE_CHECKING:
    from gateway.adapter import LocalAdapter

__all__ = ["CheckResult", "ConformanceReport", "assert_conformant", "check_adapter"]


def check_adapter(
    adapter: LocalAdapter | str,
    samples: Path | str,
    *,
    max_examples: int = 25,
) -> ConformanceReport:
    """Run every conformance check on ``adapter`` with the sample files in ``samples``.

    Never raises for a misbehaving adapter: every failure, crash included, is a
    failed :class:`CheckResult` in the report. ``max_examples`` bounds the
    property-based round trips per record type.
    """
    # The checks load the canonical models (and Hypothesis, when installed); the pytest
    # plugin imports this package in every test run, so they load only when a check runs.
    from gateway.conformance.checks import run_checks

    return run_checks(adapter, Path(samples), max_examples)


def assert_conformant(
    adapter: LocalAdapter | str, samples: Path | str, *, max_examples: int = 25
) -> ConformanceReport:
    """:func:`check_adapter`, raising ``AssertionError`` with the report when a check fails."""
    report = check_adapter(adapter, samples, max_examples=max_examples)
    if not report.passed:
        raise AssertionError(report.render())
    return report
