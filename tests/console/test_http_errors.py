"""The console's HTTP error table: every refusal and every gateway error has a status."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

import gateway
from gateway.console.errors import (
    HTTP_ERRORS,
    NoSuchRecord,
    Refusal,
    TooManyAttempts,
    http_error,
)
from gateway.errors import (
    ConfigInvalid,
    GatewayError,
    GatewayFault,
    NotFound,
    PeerError,
    StoreUnavailable,
)

E = TypeVar("E", bound=Exception)


def _subclasses(root: type[E]) -> set[type[E]]:
    found: set[type[E]] = set()
    todo = [root]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def _import_gateway() -> None:
    # Subclasses live across the package (adapters, the store, ...): load every module.
    for info in pkgutil.walk_packages(gateway.__path__, "gateway."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)


def _instance(kind: type[GatewayError]) -> GatewayError:
    # Constructors differ (violations, retry_after, ...); the table needs only the class,
    # its reason and a message.
    exc = kind.__new__(kind)
    exc.message = "something went wrong"
    return exc


def test_every_gateway_error_has_a_status_and_no_internals_in_faults() -> None:
    _import_gateway()
    kinds = _subclasses(GatewayError)
    assert StoreUnavailable in kinds and len(kinds) > 15
    for kind in sorted(kinds, key=lambda k: k.__qualname__):
        error = http_error(_instance(kind))
        if issubclass(kind, PeerError):
            assert 400 <= error.status < 500, kind
        elif issubclass(kind, ConfigInvalid):
            assert error.status == 500, kind
        else:
            assert issubclass(kind, GatewayFault), f"{kind} is neither a peer's fault nor ours"
            assert error.status == 503, kind
        if error.status >= 500:
            assert "something went wrong" not in error.message, kind
        assert error.code == kind.reason.lower()


def test_every_refusal_has_its_own_row() -> None:
    for kind in _subclasses(Refusal):
        assert kind in HTTP_ERRORS, kind
        assert kind.code != Refusal.code, kind
    assert http_error(NoSuchRecord("没有这条记录")).status == 404
    locked = http_error(TooManyAttempts("wait", retry_after=4.0))
    assert (locked.status, locked.retry_after) == (429, 4.0)


def test_named_gateway_errors() -> None:
    assert http_error(StoreUnavailable("disk full")).status == 503
    assert http_error(StoreUnavailable("disk full")).message == "数据库暂时不可用"
    assert http_error(NotFound("no such message")).status == 404
    assert http_error(NotFound("no such message")).message == "no such message"
