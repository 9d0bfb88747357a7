"""Where errors become HTTP statuses: one table for the console's own refusals and for
every :class:`~gateway.errors.GatewayError` that can reach a handler.

::

    Refusal                      the console refuses the request itself
    ├── BadRequest       400       a query or body the API does not take
    ├── Unauthenticated  401       no session (pages redirect to the log-in form)
    ├── Forbidden        403       the operator's role may not
    ├── CsrfRejected     403       CSRF token or Origin wrong
    ├── NoSuchRecord     404       no such message in this node's store
    ├── NotDeadLettered  409       re-drive of a message that is no dead letter
    └── TooManyAttempts  429       log-in throttled (carries retry_after)

A gateway error is looked up by its class and then its bases, so a new subclass is
mapped by its family (a peer's fault 400, ours 503) until it gets a row of its own;
none becomes a 500 with a traceback. Faults are logged and answered with a message
that names no internals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.errors import (
    CertificateRejected,
    ConfigInvalid,
    EnvelopeMalformed,
    GatewayError,
    GatewayFault,
    NotFound,
    Overloaded,
    PeerError,
    PeerUnavailable,
    RecordInvalid,
    StoreUnavailable,
    UnknownPeer,
)

__all__ = [
    "HTTP_ERRORS",
    "BadRequest",
    "CsrfRejected",
    "Forbidden",
    "HttpError",
    "NoSuchRecord",
    "NotDeadLettered",
    "Refusal",
    "TooManyAttempts",
    "Unauthenticated",
    "http_error",
]

_log = logging.getLogger("chuanyu.console")


class Refusal(Exception):
    """A request the console refuses; ``message`` is shown to the operator."""

    code = "refused"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(Refusal):
    code = "bad_request"


class Unauthenticated(Refusal):
    code = "unauthenticated"


class Forbidden(Refusal):
    code = "forbidden"


class CsrfRejected(Refusal):
    code = "csrf"


class NoSuchRecord(Refusal):
    code = "not_found"


class NotDeadLettered(Refusal):
    code = "not_dead_lettered"


class TooManyAttempts(Refusal):
    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class HttpError:
    """How one error is answered: status, the API's ``error`` code, and the message."""

    status: int
    code: str
    message: str
    retry_after: float | None = None  # seconds, sent as Retry-After


@dataclass(frozen=True, slots=True)
class _Row:
    status: int
    message: str = ""  # empty: the error's own message (peer errors: safe to show)


HTTP_ERRORS: dict[type[Exception], _Row] = {
    Refusal: _Row(400),
    BadRequest: _Row(400),
    Unauthenticated: _Row(401),
    Forbidden: _Row(403),
    CsrfRejected: _Row(403),
    NoSuchRecord: _Row(404),
    NotDeadLettered: _Row(409),
    TooManyAttempts: _Row(429),
    # The peer's (here: the caller's) fault: what it asked for is refused as it stands.
    PeerError: _Row(400),
    RecordInvalid: _Row(400),
    EnvelopeMalformed: _Row(400),
    CertificateRejected: _Row(400),
    NotFound: _Row(404),
    UnknownPeer: _Row(404),
    # Ours: retrying later may help.
    GatewayFault: _Row(503, "暂时无法完成，请稍后重试"),
    StoreUnavailable: _Row(503, "数据库暂时不可用"),
    PeerUnavailable: _Row(503, "对方节点暂时无法连接"),
    Overloaded: _Row(503, "对方节点繁忙，请稍后重试"),
    ConfigInvalid: _Row(500, "节点配置有误，请联系管理员"),
    GatewayError: _Row(500, "内部错误"),
}


def _row_of(kind: type[BaseException]) -> _Row | None:
    for cls in kind.__mro__:
        row = HTTP_ERRORS.get(cls)
        if row is not None:
            return row
    return None


def http_error(exc: Refusal | GatewayError) -> HttpError:
    """The answer to ``exc``: from the nearest class in :data:`HTTP_ERRORS`."""
    row = _row_of(type(exc))
    assert row is not None, "Refusal and GatewayError are both in the table"
    if isinstance(exc, Refusal):
        code = exc.code
    else:
        code = exc.reason.lower()
        if row.status >= 500:
            _log.error("console: %s: %s", exc.reason, exc.message)
    retry_after = getattr(exc, "retry_after", None)
    return HttpError(
        row.status,
        code,
        row.message or exc.message,
        None if retry_after is None else float(retry_after),
    )
