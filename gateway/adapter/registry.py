"""Finding adapters: the built-in one and those registered through entry points."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable

from gateway.adapter.canonical import (
    CANONICAL,
    CanonicalJsonAdapter,
)
from gateway.adapter.contract import LocalAdapter
from gateway.adapter.problems import (
    AdapterBroken,
    AdapterNotFound,
)

ENTRY_POINT_GROUP = "chuanyu_gateway.adapters"


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def available_adapters() -> tuple[str, ...]:
    """Names of every installed adapter, ``canonical`` included, sorted."""
    return tuple(sorted({CANONICAL, *(ep.name for ep in _entry_points())}))


def load_adapter(name: str) -> LocalAdapter:
    """An instance of the adapter registered as ``name``.

    Raises :class:`AdapterNotFound` (listing the installed names) for an
    unknown name, and :class:`AdapterBroken` when the entry point fails to load
    or does not name a :class:`LocalAdapter` subclass.
    """
    if name == CANONICAL:
        return CanonicalJsonAdapter()
    matches = [ep for ep in _entry_points() if ep.name == name]
    if not matches:
        raise AdapterNotFound(
            f"no adapter named {name!r}; installed: {', '.join(available_adapters())}"
        )
    targets = {ep.value for ep in matches}
    if len(targets) > 1:
        raise AdapterBroken(
            f"adapter name {name!r} is registered more than once: {', '.join(sorted(targets))}"
        )
    entry_point = matches[0]
    try:
        loaded = entry_point.load()
    except Exception as exc:  # any import-time failure of third-party code
        raise AdapterBroken(
            f"adapter {name!r} ({entry_point.value}) failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, LocalAdapter)):
        raise AdapterBroken(
            f"adapter {name!r} ({entry_point.value}) is not a gateway.adapter.LocalAdapter"
        )
    try:
        adapter = loaded()
    except Exception as exc:  # a constructor of third-party code
        raise AdapterBroken(
            f"adapter {name!r} ({entry_point.value}) cannot be created: {type(exc).__name__}: {exc}"
        ) from exc
    return adapter
