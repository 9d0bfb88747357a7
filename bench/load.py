"""The load client: the partner node's side of a measurement, in its own process.

``python -m bench.load baseline|node --target HOST:PORT --config PARTNER.toml ...``

It loads the partner's identity from its configuration (TLS client certificate
and, for ``node``, its signing key), builds every request before timing starts,
warms up, then keeps ``--concurrency`` unary calls in flight (and optionally one
bulk stream with ``--window`` envelopes unacknowledged) for ``--seconds`` or until
the prepared requests run out. Each phase prints one line ``RESULT {json}``.

Responses are checked after the timed window, so checking costs no measured time:
for ``node`` every response must carry a receipt for the message it answers, and a
sample of receipts is verified against the receiver's signing certificate. The
exit status is 1 when any call failed or any check did not pass.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc

from bench.echo_server import ECHO_METHOD, ECHO_STREAM_METHOD
from bench.workload import sealed_envelopes, stream_requests, submit_requests
from chuanyu.exchange.v1 import envelope_pb2 as epb
from chuanyu.exchange.v1 import exchange_service_pb2 as xpb
from gateway.config import load_config
from gateway.envelope import parse_envelope, parse_header, verify_receipt
from gateway.errors import GatewayError
from gateway.node.node import NodeIdentity, load_identity

__all__ = ["PhaseResult", "main", "percentile"]

SUBMIT_METHOD = "/chuanyu.exchange.v1.ExchangeService/Submit"
SUBMIT_STREAM_METHOD = "/chuanyu.exchange.v1.ExchangeService/SubmitStream"
_RECEIPTS_FULLY_VERIFIED = 32
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ("grpc.max_send_message_length", 4 * 1024 * 1024),
]

UnaryCall = Callable[[bytes], Awaitable[bytes]]


@dataclass
class PhaseResult:
    """One measured phase, as printed on the ``RESULT`` line."""

    target: str
    phase: str
    in_flight: int
    request_bytes: int
    calls: int = 0
    ok: int = 0
    failures: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rate: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    client_cpu_cores: float = 0.0
    server_cpu_cores: float | None = None
    server_cpu_us_per_call: float | None = None
    receipts_verified: int = 0


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of every thread of ``pid`` (Linux ``/proc``), or ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    # Fields after the parenthesised command name, which may itself hold spaces.
    fields = stat.rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU used by this process and by the server between ``start`` and ``stop``."""

    def __init__(self, server_pid: int | None) -> None:
        self._server_pid = server_pid
        self._wall = self._client = 0.0
        self._server: float | None = None

    def start(self) -> None:
        self._server = process_cpu_seconds(self._server_pid) if self._server_pid else None
        self._client = time.process_time()
        self._wall = time.perf_counter()

    def stop(self, result: PhaseResult) -> None:
        wall = time.perf_counter() - self._wall
        result.client_cpu_cores = round((time.process_time() - self._client) / wall, 2)
        server_now = process_cpu_seconds(self._server_pid) if self._server_pid else None
        if self._server is not None and server_now is not None:
            used = server_now - self._server
            result.server_cpu_cores = round(used / wall, 2)
            if result.ok:
                result.server_cpu_us_per_call = round(used / result.ok * 1e6, 1)


@dataclass
class _Outcome:
    latencies: list[float] = field(default_factory=list)
    # (request index, response bytes), in completion order.
    responses: list[tuple[int, bytes]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    attempted: int = 0
    seconds: float = 0.0


async def run_unary(
    call: UnaryCall, requests: Sequence[bytes], *, concurrency: int, seconds: float
) -> _Outcome:
    """``concurrency`` workers call until the requests run out or ``seconds`` pass (0: no limit)."""
    outcome = _Outcome()
    deadline = time.monotonic() + seconds if seconds > 0 else float("inf")
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(requests) and time.monotonic() < deadline:
            index = next_index
            next_index += 1
            outcome.attempted += 1
            started = time.perf_counter()
            try:
                response = await call(requests[index])
            except grpc.aio.AioRpcError as exc:
                outcome.errors[exc.code().name] += 1
                continue
            outcome.latencies.append(time.perf_counter() - started)
            outcome.responses.append((index, response))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    outcome.seconds = time.perf_counter() - started
    return outcome


async def run_stream(
    channel: grpc.aio.Channel,
    method: str,
    requests: Sequence[bytes],
    *,
    window: int,
    seconds: float,
    sequence_of: Callable[[int, bytes], int],
) -> _Outcome:
    """One bidi stream with at most ``window`` requests awaiting their response."""
    outcome = _Outcome()
    deadline = time.monotonic() + seconds if seconds > 0 else float("inf")
    multi: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(
        method, request_serializer=None, response_deserializer=None
    )
    call = multi()
    credit = asyncio.Semaphore(window)
    sent_at: list[float] = []
    arrivals: list[tuple[float, bytes]] = []

    async def write() -> None:
        for request in requests:
            await credit.acquire()
            if time.monotonic() >= deadline:
                break
            sent_at.append(time.perf_counter())
            await call.write(request)
        await call.done_writing()

    started = time.perf_counter()
    writer = asyncio.create_task(write())
    try:
        while (response := await call.read()) is not grpc.aio.EOF:
            assert isinstance(response, bytes)
            arrivals.append((time.perf_counter(), response))
            credit.release()
        await writer
    except grpc.aio.AioRpcError as exc:
        outcome.errors[exc.code().name] += max(1, len(sent_at) - len(arrivals))
    finally:
        writer.cancel()
        call.cancel()
    outcome.seconds = time.perf_counter() - started
    outcome.attempted = len(sent_at)
    for ordinal, (arrived, response) in enumerate(arrivals):
        sequence = sequence_of(ordinal, response)
        if 0 <= sequence < len(sent_at):
            outcome.latencies.append(arrived - sent_at[sequence])
        outcome.responses.append((sequence, response))
    return outcome


def _result(target: str, phase: str, in_flight: int, size: int, outcome: _Outcome) -> PhaseResult:
    result = PhaseResult(target=target, phase=phase, in_flight=in_flight, request_bytes=size)
    result.calls = outcome.attempted
    result.ok = len(outcome.responses)
    result.failures = outcome.attempted - result.ok
    result.errors = dict(outcome.errors)
    result.seconds = round(outcome.seconds, 3)
    result.rate = round(result.ok / outcome.seconds, 1) if outcome.seconds > 0 else 0.0
    result.p50_ms = round(percentile(outcome.latencies, 0.50) * 1e3, 2)
    result.p99_ms = round(percentile(outcome.latencies, 0.99) * 1e3, 2)
    return result


def _emit(result: PhaseResult) -> None:
    print("RESULT " + json.dumps(asdict(result), ensure_ascii=False), flush=True)


# ---------------------------------------------------------------------------
# Checking the node's answers


class ReceiptChecker:
    """Checks that each answer is a receipt for the envelope it answers."""

    def __init__(self, identity: NodeIdentity, receiver: str, envelopes: Sequence[bytes]) -> None:
        self._identity = identity
        self._receiver = receiver
        self._envelopes = envelopes
        self.problems: Counter[str] = Counter()
        self.verified = 0

    def check(self, index: int, receipt: epb.Receipt | None) -> bool:
        if receipt is None:
            self.problems["no receipt"] += 1
            return False
        envelope = parse_envelope(self._envelopes[index])
        header = parse_header(envelope.header)
        body = epb.ReceiptBody()
        body.ParseFromString(receipt.body)
        if body.message_id != header.message_id or body.status != epb.RECEIPT_STATUS_ACCEPTED:
            self.problems["receipt for another message"] += 1
            return False
        if self.verified < _RECEIPTS_FULLY_VERIFIED:
            try:
                verify_receipt(
                    receipt,
                    issuer=self._receiver,
                    message_id=header.message_id,
                    payload_sha256=header.payload_sha256,
                    verifier=self._identity.verifier,
                    now=dt.datetime.now(dt.UTC),
                )
            except GatewayError as exc:
                self.problems[f"receipt does not verify: {exc.reason}"] += 1
                return False
            self.verified += 1
        return True


def _count_bad(
    result: PhaseResult,
    outcome: _Outcome,
    good: Callable[[int, bytes], bool],
    *,
    offset: int,
    timed: bool,
) -> None:
    """Move answers that fail ``good`` from ok to failures; warm-up failures count too."""
    bad = sum(1 for index, response in outcome.responses if not good(offset + index, response))
    if bad:
        result.errors["BAD_RESPONSE"] = result.errors.get("BAD_RESPONSE", 0) + bad
    if timed:
        result.ok -= bad
        result.rate = round(result.ok / outcome.seconds, 1) if outcome.seconds > 0 else 0.0
    else:
        bad += outcome.attempted - len(outcome.responses)
        for name, count in outcome.errors.items():
            result.errors[name] = result.errors.get(name, 0) + count
    result.failures += bad


# ---------------------------------------------------------------------------
# The two targets

Runner = Callable[[Sequence[bytes], float], Awaitable[_Outcome]]


async def _measure(
    target: str,
    phase: str,
    *,
    in_flight: int,
    runner: Runner,
    requests: Sequence[bytes],
    args: argparse.Namespace,
    good: Callable[[int, bytes], bool],
) -> PhaseResult:
    """Warm up on the first ``--warmup`` requests, then time the rest."""
    warmup, timed = requests[: args.warmup], requests[args.warmup :]
    warm = await runner(warmup, 0)
    meter = CpuMeter(args.server_pid)
    meter.start()
    outcome = await runner(timed, args.seconds)
    result = _result(target, phase, in_flight, len(timed[0]), outcome)
    meter.stop(result)
    # Checked after the timed window; a refused warm-up envelope is a failure too.
    _count_bad(result, warm, good, offset=0, timed=False)
    _count_bad(result, outcome, good, offset=len(warmup), timed=True)
    return result


def _unary_runner(channel: grpc.aio.Channel, method: str, concurrency: int) -> Runner:
    multi: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        method, request_serializer=None, response_deserializer=None
    )

    async def call(request: bytes) -> bytes:
        return await multi(request)

    async def runner(requests: Sequence[bytes], seconds: float) -> _Outcome:
        return await run_unary(call, requests, concurrency=concurrency, seconds=seconds)

    return runner


def _stream_runner(
    channel: grpc.aio.Channel, method: str, window: int, sequence_of: Callable[[int, bytes], int]
) -> Runner:
    async def runner(requests: Sequence[bytes], seconds: float) -> _Outcome:
        return await run_stream(
            channel, method, requests, window=window, seconds=seconds, sequence_of=sequence_of
        )

    return runner


async def _baseline(args: argparse.Namespace, identity: NodeIdentity) -> list[PhaseResult]:
    payload = os.urandom(args.payload_size)

    def echoed(_: int, response: bytes) -> bool:
        return response == payload

    def in_order(ordinal: int, _: bytes) -> int:
        return ordinal  # an echo answers in order

    results = []
    async with grpc.aio.secure_channel(
        args.target, identity.channel_credentials, options=_CHANNEL_OPTIONS
    ) as channel:
        unary = _unary_runner(channel, ECHO_METHOD, args.concurrency)
        requests = [payload] * (args.warmup + args.max_calls)
        results.append(
            await _measure(
                "baseline",
                "unary",
                in_flight=args.concurrency,
                runner=unary,
                requests=requests,
                args=args,
                good=echoed,
            )
        )
        if args.stream:
            stream = _stream_runner(channel, ECHO_STREAM_METHOD, args.window, in_order)
            requests = [payload] * (args.warmup + args.stream_max)
            results.append(
                await _measure(
                    "baseline",
                    "stream",
                    in_flight=args.window,
                    runner=stream,
                    requests=requests,
                    args=args,
                    good=echoed,
                )
            )
    return results


async def _node(args: argparse.Namespace, identity: NodeIdentity) -> list[PhaseResult]:
    unary_total = args.warmup + args.max_calls
    stream_total = args.warmup + args.stream_max if args.stream else 0
    # Built just before the run: created_at must stay inside the receiver's freshness window.
    envelopes = sealed_envelopes(
        identity.signer,
        receiver=args.receiver,
        agreement_id=args.agreement,
        numbers=range(unary_total + stream_total),
        created_at=dt.datetime.now(dt.UTC),
    )
    checker = ReceiptChecker(identity, args.receiver, envelopes)

    def submitted(index: int, response: bytes) -> bool:
        parsed = xpb.SubmitResponse.FromString(response)
        return checker.check(index, parsed.receipt if parsed.HasField("receipt") else None)

    def sequence_of(_: int, response: bytes) -> int:
        return xpb.SubmitStreamResponse.FromString(response).sequence

    def streamed(index: int, response: bytes) -> bool:
        parsed = xpb.SubmitStreamResponse.FromString(response)
        if parsed.WhichOneof("result") != "receipt":
            checker.problems[f"refused in stream: {parsed.rejection.reason}"] += 1
            return False
        return checker.check(unary_total + index, parsed.receipt)

    results = []
    async with grpc.aio.secure_channel(
        args.target, identity.channel_credentials, options=_CHANNEL_OPTIONS
    ) as channel:
        unary = _unary_runner(channel, SUBMIT_METHOD, args.concurrency)
        requests = submit_requests(envelopes[:unary_total])
        results.append(
            await _measure(
                "node",
                "unary",
                in_flight=args.concurrency,
                runner=unary,
                requests=requests,
                args=args,
                good=submitted,
            )
        )
        if args.stream:
            stream = _stream_runner(channel, SUBMIT_STREAM_METHOD, args.window, sequence_of)
            requests = stream_requests(envelopes[unary_total:])
            results.append(
                await _measure(
                    "node",
                    "stream",
                    in_flight=args.window,
                    runner=stream,
                    requests=requests,
                    args=args,
                    good=streamed,
                )
            )
    for result in results:
        result.receipts_verified = checker.verified
    for problem, count in checker.problems.items():
        print(f"bench.load: {count} x {problem}", file=sys.stderr)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("target_kind", choices=("baseline", "node"))
    parser.add_argument("--target", required=True, help="server address, host:port")
    parser.add_argument("--config", type=Path, required=True, help="the partner's configuration")
    parser.add_argument("--server-pid", type=int, default=0, help="server pid, for its CPU time")
    parser.add_argument("--concurrency", type=int, default=16, help="unary calls in flight")
    parser.add_argument("--window", type=int, default=64, help="stream requests unanswered")
    parser.add_argument("--seconds", type=float, default=6.0, help="per phase; 0: count only")
    parser.add_argument("--max-calls", type=int, default=20_000, help="timed unary requests")
    parser.add_argument("--stream", action="store_true", help="also measure a bulk stream")
    parser.add_argument(
        "--stream-max", type=int, default=0, help="timed stream requests (default: --max-calls)"
    )
    parser.add_argument("--warmup", type=int, default=300, help="untimed requests per phase")
    parser.add_argument("--payload-size", type=int, default=1570, help="baseline request bytes")
    parser.add_argument("--receiver", default="500151", help="node: the receiving bureau")
    parser.add_argument("--agreement", default="", help="node: agreement id (default: config's)")
    args = parser.parse_args(argv)
    if args.max_calls < 1 or args.warmup < 0:
        parser.error("--max-calls must be at least 1 and --warmup at least 0")
    args.stream_max = args.stream_max or args.max_calls

    config = load_config(args.config)
    identity = load_identity(config)
    if not args.agreement:
        partner = config.partner(args.receiver)
        args.agreement = partner.agreement if partner is not None else "BENCH"
    run = _baseline if args.target_kind == "baseline" else _node
    results = asyncio.run(run(args, identity))
    for result in results:
        _emit(result)
    return 1 if any(r.failures for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
