"""Observation hooks: what the node reports as it works, one frozen dataclass per event.

Metrics, audit and alerting implement :class:`NodeHooks` and are chained with
:class:`HookChain`; adding a field to an event never breaks an existing hook.
Hooks run on the event loop and must not block or raise: an exception from a
hook is logged and swallowed so that observing the node can never break it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "DeliveryAttempt",
    "HookChain",
    "InboundHandled",
    "LocalSendHandled",
    "NodeHooks",
]

_log = logging.getLogger("chuanyu.hooks")


@dataclass(frozen=True, slots=True)
class InboundHandled:
    """An envelope from a partner was accepted, recognised as a duplicate, or refused."""

    peer: str
    record_type: str  # empty when the header did not parse
    outcome: str  # "accepted", "duplicate", or the refusal reason, e.g. "SIGNATURE_INVALID"
    seconds: float


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """The node tried to deliver one outbound envelope."""

    peer: str
    record_type: str
    outcome: str  # "delivered", "retry", "rejected", "dead_lettered"
    seconds: float  # this attempt
    attempts: int  # attempts so far, this one included
    age_seconds: float  # since the record entered the outbox


@dataclass(frozen=True, slots=True)
class LocalSendHandled:
    """A local system handed over a record (or it was refused)."""

    record_type: str
    outcome: str  # "queued", "duplicate", or the refusal reason


class NodeHooks(Protocol):
    def inbound_handled(self, event: InboundHandled) -> None: ...

    def delivery_attempted(self, event: DeliveryAttempt) -> None: ...

    def local_send_handled(self, event: LocalSendHandled) -> None: ...


class HookChain:
    """Calls every hook in order; a failing hook is logged, never propagated."""

    def __init__(self, hooks: Sequence[NodeHooks] = ()) -> None:
        self._hooks: list[NodeHooks] = list(hooks)

    def add(self, hook: NodeHooks) -> None:
        self._hooks.append(hook)

    def _each(self, method: str, event: object) -> None:
        for hook in self._hooks:
            try:
                getattr(hook, method)(event)
            except Exception:
                _log.exception("hook %s.%s failed", type(hook).__name__, method)

    def inbound_handled(self, event: InboundHandled) -> None:
        self._each("inbound_handled", event)

    def delivery_attempted(self, event: DeliveryAttempt) -> None:
        self._each("delivery_attempted", event)

    def local_send_handled(self, event: LocalSendHandled) -> None:
        self._each("local_send_handled", event)
