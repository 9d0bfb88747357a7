"""The error tree: every ``GatewayError`` subclass drawn in ``gateway.errors`` and mapped
to a gRPC status, found by walking the subclasses of every gateway module."""

from __future__ import annotations

import importlib
import pkgutil
import re

import grpc
import pytest

import gateway
from gateway import errors
from gateway.errors import GatewayError
from gateway.node.status import STATUS_CODES, status_code_for

# A line of the tree: the box-drawing prefix (four columns per level), then the name.
_TREE_LINE = re.compile(r"^    (?P<prefix>(?:[│ ]   |[├└]── )*)(?P<name>[A-Z]\w+)\b")


def _all_subclasses() -> set[type[GatewayError]]:
    for module in pkgutil.walk_packages(gateway.__path__, "gateway."):
        if not module.name.endswith(".__main__"):  # running it parses the command line
            importlib.import_module(module.name)
    found: set[type[GatewayError]] = set()
    todo: list[type[GatewayError]] = [GatewayError]
    while todo:
        cls = todo.pop()
        if cls in found:
            continue
        found.add(cls)
        todo.extend(cls.__subclasses__())
    # Only the gateway's own classes (a test may define its own subclasses).
    return {c for c in found if c.__module__.startswith("gateway.")}


def _drawn_tree() -> dict[str, str]:
    """Class name -> the name of its parent, as drawn in the module docstring."""
    assert errors.__doc__ is not None
    parents: dict[str, str] = {}
    stack: list[str] = []
    for line in errors.__doc__.splitlines():
        match = _TREE_LINE.match(line)
        if match is None:
            continue
        depth = len(match["prefix"]) // 4
        del stack[depth:]
        name = match["name"]
        assert name not in parents, f"{name} drawn twice"
        parents[name] = stack[-1] if stack else ""
        stack.append(name)
    return parents


def _instance(cls: type[GatewayError]) -> GatewayError:
    error = cls.__new__(cls)
    GatewayError.__init__(error, "x")
    return error


SUBCLASSES = sorted(_all_subclasses(), key=lambda c: c.__name__)


def test_the_walk_finds_the_errors_outside_gateway_errors() -> None:
    names = {c.__name__ for c in SUBCLASSES}
    assert {"AgreementRefused", "LocalFileInvalid", "AdapterBroken", "VaultError"} <= names


@pytest.mark.parametrize("cls", SUBCLASSES, ids=lambda c: c.__name__)
def test_every_error_is_drawn_under_its_parent(cls: type[GatewayError]) -> None:
    tree = _drawn_tree()
    assert cls.__name__ in tree, f"{cls.__name__} is missing from the tree in gateway.errors"
    parent = "" if cls is GatewayError else cls.__bases__[0].__name__
    assert tree[cls.__name__] == parent


def test_the_tree_draws_nothing_that_does_not_exist() -> None:
    assert set(_drawn_tree()) == {c.__name__ for c in SUBCLASSES}


@pytest.mark.parametrize("cls", SUBCLASSES, ids=lambda c: c.__name__)
def test_every_error_has_its_own_grpc_code(cls: type[GatewayError]) -> None:
    assert cls in STATUS_CODES, f"{cls.__name__} is not in gateway.node.status.STATUS_CODES"
    code = status_code_for(_instance(cls))
    assert code is STATUS_CODES[cls]
    assert code not in {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


def test_a_peer_error_is_never_answered_as_our_fault() -> None:
    retryable = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN}
    for cls in SUBCLASSES:
        if issubclass(cls, errors.PeerError):
            assert STATUS_CODES[cls] not in retryable, cls
        elif issubclass(cls, errors.GatewayFault):
            assert STATUS_CODES[cls] in {
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            }, cls
