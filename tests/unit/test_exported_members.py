"""The packages made of several modules say exactly what they export.

Each re-exports its public names from the modules it is made of; ``__all__`` is the
whole list, so ``from gateway.pki import X`` works for every X it names and for
nothing else that looks public by accident.
"""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "adapters._schema",
    "adapters.suining",
    "adapters.tongliang",
    "gateway.adapter",
    "gateway.agreements",
    "gateway.conformance.checks",
    "gateway.pki",
    "gateway.records",
]

# Kept importable from where they used to live; the clock owns them now.
COMPATIBILITY = {"gateway.agreements": {"BEIJING"}, "gateway.records": {"BEIJING"}}


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_every_public_member(name: str) -> None:
    package = importlib.import_module(name)
    exported = list(package.__all__)
    assert len(exported) == len(set(exported))
    public = {
        member
        for member, value in vars(package).items()
        if not member.startswith("_")
        and not isinstance(value, types.ModuleType)
        and member != "annotations"
    }
    assert public - COMPATIBILITY.get(name, set()) == set(exported)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_is_defined_in_the_package(name: str) -> None:
    package = importlib.import_module(name)
    for member in package.__all__:
        value = getattr(package, member)
        owner = getattr(value, "__module__", None)
        if isinstance(owner, str) and isinstance(value, type | types.FunctionType):
            # Defined in one of the package's own modules (or re-exported from the core).
            assert owner.startswith((name, "gateway.")), (member, owner)


def test_the_clock_owns_beijing_time() -> None:
    from gateway import agreements, clock, records

    assert records.BEIJING is clock.BEIJING
    assert agreements.BEIJING is clock.BEIJING
