"""``make bench``: the node's inbound throughput against a bare gRPC floor, as a ratio.

One run starts, in separate processes on loopback (PERFORMANCE.md):

* a bare ``grpc.aio`` mutual-TLS echo server (:mod:`bench.echo_server`) with the
  receiving node's certificates, echoing raw bytes the size of a real ``SubmitRequest``;
* a real receiving node (``chuanyu-gateway serve``) on a fresh SQLite store;
* for each server, a load client (:mod:`bench.load`) acting as the partner node.

Absolute figures vary from day to day; the ratio node/baseline measured in one run
is the number to compare. Nothing here asserts on speed.
"""

from __future__ import annotations

__all__: list[str] = []
