"""pytest plugin of the conformance kit (entry point ``pytest11: chuanyu_conformance``).

It loads in every pytest run of an environment where Chuanyu Gateway is
installed, so it imports nothing heavy until a test asks for the fixture.

Use it from an adapter package's own tests::

    def test_my_adapter_conforms(adapter_conformance):
        adapter_conformance("chengdu", "samples/")   # raises AssertionError with the report
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from gateway.adapter import LocalAdapter
    from gateway.conformance import ConformanceReport

__all__ = ["AdapterConformance", "adapter_conformance"]


class AdapterConformance(Protocol):
    def __call__(
        self, adapter: LocalAdapter | str, samples: Path | str, *, max_examples: int = ...
    ) -> ConformanceReport: ...


@pytest.fixture
def adapter_conformance() -> AdapterConformance:
    """``(adapter, samples_dir, *, max_examples=25) -> report``; fails on any failed check."""
    from gateway.conformance import assert_conformant

    return assert_conformant
