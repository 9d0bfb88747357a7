"""The client side of one partner: its channel, its circuit, and what its answers mean.

:class:`PartnerClient` is the only code that calls a partner node. It owns the
channel, turns every ``grpc.aio.AioRpcError`` (and every in-stream rejection) into
an outcome of :mod:`gateway.transfer` in one place, :func:`~gateway.node.answers.classify`
(re-exported here), and keeps the
one account of the partner's health: every call's result updates it, and
:meth:`PartnerClient.probe` adds a standard ``grpc.health.v1`` check over the same
channel. The circuit is part of that account: after a failed call the next one
waits for capped exponential backoff, so an unreachable partner is probed, not
hammered.

Every call checks whom it talks to: the channel verifies the server's certificate
against the partner's bureau DNS name (:func:`gateway.pki.bureau_dns_name`, set as
``grpc.ssl_target_name_override``), not against the address dialled. A server whose
certificate names another bureau fails the handshake before any request is written;
that failure is told apart from an unreachable partner (``TLS_SERVERNOT_PARTNER``)
by the handshake's error. grpc.aio gives a client no access to the server's
certificate after the handshake, so the name is the check; the bureau DNS name and
the ``urn:chuanyu:bureau:`` URI are issued together (:func:`gateway.pki.init_pki`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chuanyu.exchange.v1 import envelope_pb2 as epb
from chuanyu.exchange.v1 import exchange_service_pb2 as xpb
from chuanyu.exchange.v1 import exchange_service_pb2_grpc as xgrpc
from gateway.clock import utc_now
from gateway.config import ExchangeSettings, PartnerConfig, RetrySettings
from gateway.errors import PeerUnavailable, TlsServerNotPartner
from gateway.node.answers import (
    NOT_PARTNER,
    TRANSPORT_CODES,
    Answer,
    CallStatus,
    classify,
    code_named,
    from_error,
    is_server_not_partner,
    status_details,
)
from gateway.pki import bureau_dns_name
from gateway.transfer import (
    Failed,
    backoff_delay,
)

__all__ = [
    "Answer",
    "CallStatus",
    "PartnerClient",
    "PartnerHealth",
    "classify",
    "is_server_not_partner",
]

_log = logging.getLogger("chuanyu.partner")

_NAME_OVERRIDE = "grpc.ssl_target_name_override"
_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class PartnerHealth:
    """What this node knows of one partner, from its calls and its probes."""

    bureau: str
    address: str
    reachable: bool | None = None  # None: not tried yet
    checked_at: dt.datetime | None = None  # the last call or probe
    error: str = ""  # the last failure, "" after a success
    last_success_at: dt.datetime | None = None
    last_failure_at: dt.datetime | None = None
    consecutive_failures: int = 0  # failed calls in a row (the circuit)
    next_attempt_at: dt.datetime | None = None  # the circuit lets the next call through then


class PartnerClient:
    """Calls one partner node over one channel; the one source of its health."""

    def __init__(
        self,
        partner: PartnerConfig,
        credentials: grpc.ChannelCredentials,
        *,
        exchange: ExchangeSettings,
        retry: RetrySettings,
        channel_options: Sequence[tuple[str, int | str]] = (),
    ) -> None:
        self.bureau = partner.bureau
        self._credentials = credentials
        self._exchange = exchange
        self._retry = retry
        # Whatever address it dials, the channel accepts only this bureau's certificate.
        self._options = [
            *(option for option in channel_options if option[0] != _NAME_OVERRIDE),
            (_NAME_OVERRIDE, bureau_dns_name(partner.bureau)),
        ]
        self._channel: grpc.aio.Channel | None = None
        self._health = PartnerHealth(self.bureau, partner.address)

    @property
    def address(self) -> str:
        return self._health.address

    def health(self) -> PartnerHealth:
        return self._health

    def blocked_until(self) -> dt.datetime:
        """Until then the circuit holds calls back (the partner failed the last one)."""
        return self._health.next_attempt_at or _NEVER

    def route(self, address: str) -> None:
        """Point at another address, with a fresh channel and a closed circuit."""
        self._health = PartnerHealth(self.bureau, address)
        if self._channel is not None:
            channel, self._channel = self._channel, None
            # Closing is async; do it in the background so route() stays synchronous.
            asyncio.get_running_loop().create_task(channel.close())

    def _open(self) -> grpc.aio.Channel:
        if self._channel is None:
            self._channel = grpc.aio.secure_channel(
                self.address, self._credentials, options=self._options
            )
        return self._channel

    async def close(self) -> None:
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close()

    # -- health ------------------------------------------------------------------

    def _succeeded(self, now: dt.datetime) -> None:
        if self._health.reachable is False:
            _log.info("partner %s reachable again", self.bureau)
        self._health = replace(
            self._health,
            reachable=True,
            checked_at=now,
            error="",
            last_success_at=now,
            consecutive_failures=0,
            next_attempt_at=now,
        )

    def _not_partner(self, status: CallStatus) -> str:
        """Log a server that is not the partner; the error its account keeps."""
        _log.error(
            "the server at %s is not bureau %s: its TLS certificate does not name %s; "
            "nothing was sent [%s]: %s",
            self.address,
            self.bureau,
            bureau_dns_name(self.bureau),
            NOT_PARTNER,
            status.message,
        )
        return f"{NOT_PARTNER}: the server at {self.address} is not bureau {self.bureau}"

    def note_failure(self, error: str) -> None:
        """A call failed without an answer from the partner: open the circuit."""
        now = utc_now()
        failures = self._health.consecutive_failures + 1
        retry_at = now + dt.timedelta(seconds=backoff_delay(failures - 1, self._retry))
        self._health = replace(
            self._health,
            reachable=False,
            checked_at=now,
            error=error[:300],
            last_failure_at=now,
            consecutive_failures=failures,
            next_attempt_at=retry_at,
        )
        _log.info(
            "partner %s unreachable (%d in a row): %s; next probe at %s",
            self.bureau,
            failures,
            error,
            retry_at.isoformat(timespec="seconds"),
        )

    async def probe(self) -> PartnerHealth:
        """A ``grpc.health.v1`` check over the partner channel; the circuit is left alone."""
        error = ""
        try:
            response = await health_pb2_grpc.HealthStub(self._open()).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=3
            )
            if response.status != health_pb2.HealthCheckResponse.SERVING:
                error = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        except grpc.aio.AioRpcError as exc:
            status = from_error(exc)
            if is_server_not_partner(status):
                error = self._not_partner(status)
            else:
                error = f"{exc.code().name}: {(exc.details() or '')[:200]}"
        now = utc_now()
        self._health = replace(
            self._health,
            reachable=not error,
            checked_at=now,
            error=error,
            last_success_at=self._health.last_success_at if error else now,
            last_failure_at=now if error else self._health.last_failure_at,
        )
        return self._health

    # -- calls -------------------------------------------------------------------

    async def reconcile(self, request: xpb.ReconcileRequest) -> xpb.ReconcileResponse:
        """Ask the partner for its signed account of a period."""
        try:
            response: xpb.ReconcileResponse = await xgrpc.ExchangeServiceStub(
                self._open()
            ).Reconcile(request, timeout=self._exchange.call_timeout_seconds * 3)
        except grpc.aio.AioRpcError as exc:
            status = from_error(exc)
            if is_server_not_partner(status):
                error = self._not_partner(status)
                self.note_failure(error)
                raise TlsServerNotPartner(
                    f"the reconciliation was not asked: {error} (its TLS certificate does "
                    f"not name {bureau_dns_name(self.bureau)})"
                ) from exc
            if exc.code() in TRANSPORT_CODES:
                self.note_failure(f"{exc.code().name}: {exc.details() or ''}")
            else:
                self._succeeded(utc_now())
            raise PeerUnavailable(
                f"bureau {self.bureau} did not answer the reconciliation: "
                f"{exc.code().name}: {exc.details()}"
            ) from exc
        self._succeeded(utc_now())
        return response

    async def submit(
        self,
        envelopes: Sequence[tuple[str, epb.Envelope]],
        on_answer: Callable[[str, Answer], None],
    ) -> None:
        """Submit ``(message id, envelope)`` pairs: one as a unary call, more as a stream.

        ``on_answer`` hears each envelope's answer exactly once, as soon as it is known:
        receipts and refusals while the call runs, failures of the link once the call
        has ended and the circuit has taken them into account.
        """
        wanted = {message_id for message_id, _ in envelopes}
        link_failures: dict[str, CallStatus] = {}

        def answer(message_id: str, result: epb.Receipt | CallStatus) -> None:
            if message_id not in wanted:
                return  # an answer for something not sent in this call, or a second one
            if isinstance(result, CallStatus) and result.code in TRANSPORT_CODES:
                link_failures.setdefault(message_id, result)
                return
            wanted.discard(message_id)
            link_failures.pop(message_id, None)
            if isinstance(result, epb.Receipt):
                on_answer(message_id, result)
            else:
                on_answer(message_id, classify(result, retry_at=utc_now()))

        sent = len(wanted)
        if len(envelopes) == 1:
            await self._unary(*envelopes[0], answer)
        else:
            await self._stream(envelopes, answer)
        now = utc_now()
        # One answer proves the link, whatever the others say.
        if len(wanted) < sent or not link_failures:
            self._succeeded(now)
        else:
            first = next(iter(link_failures.values()))
            if is_server_not_partner(first):
                self.note_failure(self._not_partner(first))
            else:
                self.note_failure(f"{first.code.name}: {first.message}")
        retry_at = self.blocked_until()
        for message_id in list(wanted):
            status = link_failures.get(message_id)
            wanted.discard(message_id)
            if status is None:
                on_answer(message_id, Failed("UNKNOWN", "", "no answer for this envelope"))
            else:
                on_answer(message_id, classify(status, retry_at=retry_at))

    async def _unary(
        self,
        message_id: str,
        envelope: epb.Envelope,
        answer: Callable[[str, epb.Receipt | CallStatus], None],
    ) -> None:
        try:
            response = await xgrpc.ExchangeServiceStub(self._open()).Submit(
                xpb.SubmitRequest(envelope=envelope), timeout=self._exchange.call_timeout_seconds
            )
        except grpc.aio.AioRpcError as exc:
            answer(message_id, from_error(exc))
        else:
            answer(message_id, response.receipt)

    async def _stream(
        self,
        envelopes: Sequence[tuple[str, epb.Envelope]],
        answer: Callable[[str, epb.Receipt | CallStatus], None],
    ) -> None:
        window = asyncio.Semaphore(self._exchange.stream_window)
        call = xgrpc.ExchangeServiceStub(self._open()).SubmitStream(
            timeout=self._exchange.call_timeout_seconds * max(1, len(envelopes) // 64 + 1)
        )

        async def write_all() -> None:
            for _, envelope in envelopes:
                await window.acquire()
                await call.write(xpb.SubmitStreamRequest(envelope=envelope))
            await call.done_writing()

        writer = asyncio.create_task(write_all())
        failure: CallStatus | None = None
        try:
            async for response in call:
                window.release()
                if response.HasField("receipt"):
                    answer(response.message_id, response.receipt)
                else:
                    rejection = response.rejection
                    status = CallStatus(
                        code_named(rejection.code), rejection.message, rejection.reason
                    )
                    answer(response.message_id, status)
        except grpc.aio.AioRpcError as exc:
            failure = from_error(exc)
        finally:
            if not writer.done():
                writer.cancel()
            # The writer fails too when the call ends early; the call's status says why.
            with contextlib.suppress(
                asyncio.CancelledError, asyncio.InvalidStateError, grpc.aio.AioRpcError
            ):
                await writer
        if failure is None and await call.code() != grpc.StatusCode.OK:
            reason, retry_after = status_details(await call.trailing_metadata())
            failure = CallStatus(await call.code(), await call.details() or "", reason, retry_after)
        if failure is not None:
            for message_id, _ in envelopes:
                answer(message_id, failure)  # only those still unanswered
