"""The floor: a bare ``grpc.aio`` mutual-TLS server that echoes raw bytes.

Run as ``python -m bench.echo_server --config NODE.toml``: it loads the node's TLS
identity exactly as the node does (same CA, certificate and key, client
certificates required), listens on a free loopback port, prints
``echo ready on port N`` and serves until SIGTERM. Handlers take and return
``bytes`` (no deserialiser), so nothing but gRPC, HTTP/2 and TLS costs CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc

from gateway.config import load_config
from gateway.node.node import load_identity

__all__ = ["ECHO_METHOD", "ECHO_SERVICE", "ECHO_STREAM_METHOD", "main"]

ECHO_SERVICE = "chuanyu.bench.v1.Echo"
ECHO_METHOD = f"/{ECHO_SERVICE}/Echo"
ECHO_STREAM_METHOD = f"/{ECHO_SERVICE}/EchoStream"


async def _echo(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    return request


async def _echo_stream(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request


def echo_handler() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        ECHO_SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(
                _echo, request_deserializer=None, response_serializer=None
            ),
            "EchoStream": grpc.stream_stream_rpc_method_handler(
                _echo_stream, request_deserializer=None, response_serializer=None
            ),
        },
    )


async def serve(config_path: Path, listen: str) -> None:
    identity = load_identity(load_config(config_path))
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([echo_handler()])
    port = server.add_secure_port(listen, identity.server_credentials)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"echo ready on port {port}", flush=True)
    await stop.wait()
    await server.stop(1.0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.echo_server", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="node configuration (TOML)")
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port (default: free port)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.config, args.listen))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
