"""How fast the console's transfers page answers on a big node database.

Fills a node database with a hash-chained transfer log of ``--log-rows`` entries
(default 1 000 000: four per message, so 250 000 messages, half outbound in the
outbox and half inbound in the inbox, spread over 90 days), starts a real node
with its console, logs in, and times the transfers API and page under typical
filters, deep keyset pages and searches. Run by hand::

    .venv/bin/python -m bench.console_transfers            # builds .bench/console/ once
    .venv/bin/python -m bench.console_transfers --explain  # also print query plans

The database is kept and reused (``--rebuild`` to make it again). Not a test:
the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import secrets
import sqlite3
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from gateway.app import build_node, console_of, operator_records
from gateway.codec import encode_payload
from gateway.config import parse_config
from gateway.conformance.samples import sample_record
from gateway.console import AccountStore, Role
from gateway.envelope import seal_envelope
from gateway.pki import PkiLayout, init_pki, key_id, load_certificate, load_private_key
from gateway.records import RecordType
from gateway.signing import Ed25519Suite, Signer
from gateway.store import statements as sql
from gateway.store.reads import TransferFilter, TransferPage, encode_cursor
from gateway.store.sqlite import SqliteStore
from gateway.translog import GENESIS_HASH, canonical_detail, canonical_entry_bytes, entry_hash

TONGLIANG, SUINING = "500151", "510900"
AGREEMENTS = Path(__file__).resolve().parents[1] / "agreements"
RECORD_TYPES = [t.value for t in RecordType]


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _signer(pki: PkiLayout, bureau: str) -> Signer:
    paths = pki.bureau(bureau)
    cert = load_certificate(paths.signing_cert)
    from cryptography.hazmat.primitives import serialization

    return Signer(
        bureau=bureau,
        suite=Ed25519Suite(),
        private_key=load_private_key(paths.signing_key),
        certificate_der=cert.public_bytes(serialization.Encoding.DER),
        key_id=key_id(cert),
    )


def _record_key(rng: random.Random, record_type: str, i: int) -> str:
    if record_type == "business_registration":
        return f"91500151MA{i:08d}"[:18]
    if record_type == "consumer_complaint":
        return f"TS5001512026{i:09d}"
    if record_type == "enforcement_referral":
        return f"遂市监移〔2026〕{i}号"
    return f"TS5101002026{rng.randrange(10**9):09d}"


def build_database(path: Path, pki: PkiLayout, log_rows: int) -> None:
    """A node database for Tongliang with ``log_rows`` chained log entries."""
    asyncio.run(_create_schema(path))
    rng = random.Random(20261127)  # noqa: S311 - reproducible test data, not secrets
    envelope = seal_envelope(
        _signer(pki, TONGLIANG),
        message_id=str(uuid.uuid4()),
        receiver=SUINING,
        record_type=RecordType.BUSINESS_REGISTRATION,
        agreement_id="SUI-TONG-MR-2024",
        correlation_id="",
        payload=encode_payload(sample_record(RecordType.BUSINESS_REGISTRATION)),
        created_at=dt.datetime.now(dt.UTC),
    ).SerializeToString()
    messages = log_rows // 4
    end = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    start = end - dt.timedelta(days=90)
    step = (end - start) / max(1, messages)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    seq, head = 0, GENESIS_HASH
    outbox: list[tuple[Any, ...]] = []
    inbox: list[tuple[Any, ...]] = []
    log: list[tuple[Any, ...]] = []
    far = (end + dt.timedelta(days=365)).timestamp()

    def flush() -> None:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO outbox (message_id, receiver, record_type, record_key, correlation_id, "
            "idempotency_key, envelope, created_at, state, attempts, next_attempt_at, last_error, "
            "delivered_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            outbox,
        )
        conn.executemany(
            "INSERT INTO inbox (sender, message_id, record_type, record_key, correlation_id, "
            "envelope, header_sha256, payload_sha256, received_at, delivered_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            inbox,
        )
        conn.executemany("INSERT INTO transfer_log VALUES (?,?,?,?,?,?,?,?,?,?)", log)
        conn.execute("COMMIT")
        outbox.clear()
        inbox.clear()
        log.clear()

    for i in range(messages):
        at = start + step * i
        at_text = _iso(at)
        message_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        record_type = RECORD_TYPES[rng.randrange(4)]
        key = _record_key(rng, record_type, i)
        if i % 2 == 0:
            direction = "outbound"
            roll = rng.random()
            state = "delivered" if roll < 0.97 else "pending" if roll < 0.99 else "dead_lettered"
            error = "" if state == "delivered" else "UNAVAILABLE: connection refused"
            outbox.append(
                (
                    message_id,
                    SUINING,
                    record_type,
                    key,
                    "",
                    None,
                    envelope,
                    at_text,
                    state,
                    1 if state == "delivered" else 7,
                    far,  # never due: the benchmark node must not start delivering
                    error,
                    at_text if state == "delivered" else None,
                )
            )
            kinds = ["accepted_from_local", "signed", "sent", "receipt_stored"]
        else:
            direction = "inbound"
            delivered = rng.random() < 0.95
            inbox.append(
                (
                    SUINING,
                    message_id,
                    record_type,
                    key,
                    "",
                    envelope,
                    secrets.token_bytes(32),
                    secrets.token_bytes(32),
                    at_text,
                    at_text if delivered else None,
                )
            )
            kinds = ["received", "receipt_issued", "delivered_to_local", "received"]
        for n, kind in enumerate(kinds):
            seq += 1
            when = _iso(at + dt.timedelta(milliseconds=n))
            detail = canonical_detail({"n": n})
            digest = entry_hash(
                head,
                canonical_entry_bytes(
                    seq=seq,
                    at=when,
                    kind=kind,
                    direction=direction,
                    peer=SUINING,
                    message_id=message_id,
                    record_type=record_type,
                    detail=detail,
                ),
            )
            log.append(
                (seq, when, kind, direction, SUINING, message_id, record_type, detail, head, digest)
            )
            head = digest
        if len(log) >= 40_000:
            flush()
    flush()
    conn.close()


async def _create_schema(path: Path) -> None:
    async with SqliteStore(path, bureau=TONGLIANG):
        pass


def _config(workdir: Path, pki: PkiLayout, database: Path) -> Any:
    paths = pki.bureau(TONGLIANG)
    return parse_config(
        {
            "node": {"bureau": TONGLIANG, "database": str(database)},
            "tls": {"ca": str(pki.ca_cert), "cert": str(paths.tls_cert), "key": str(paths.tls_key)},
            "signing": {"cert": str(paths.signing_cert), "key": str(paths.signing_key)},
            "agreements": {"directory": str(AGREEMENTS)},
            "listen": {"peer": "127.0.0.1:0", "local": "127.0.0.1:0"},
            "partners": [
                {"bureau": SUINING, "address": "127.0.0.1:1", "agreement": "SUI-TONG-MR-2024"}
            ],
            "retry": {"dead_letter_after_seconds": 10 * 365 * 86400.0},
            "console": {"listen": "127.0.0.1:0", "secure_cookies": False},
        },
        workdir / "node.toml",
    )


def _explain(database: Path) -> None:
    conn = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    for name, f in _filters(conn).items():
        _, queries = sql.transfer_queries(f, SqliteStore._dialect)
        for query, params in queries:
            side = "inbox: " if " FROM inbox " in query else "outbox:"
            plan = conn.execute("EXPLAIN QUERY PLAN " + query, params).fetchall()
            print(f"{name} {side} {'; '.join(r[3] for r in plan)}")
    conn.close()


def _list_transfers(conn: sqlite3.Connection, f: TransferFilter) -> TransferPage:
    """The store's own statements for one page, straight on a connection (no HTTP)."""
    limit, queries = sql.transfer_queries(f, SqliteStore._dialect)
    return sql.page([r for q, p in queries for r in conn.execute(q, p)], limit)


def _filters(conn: sqlite3.Connection) -> dict[str, TransferFilter]:
    """The scenarios, with search terms and a mid-history cursor taken from the data."""
    count = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    mid = conn.execute(
        "SELECT created_at, message_id, record_key FROM outbox ORDER BY rowid LIMIT 1 OFFSET ?",
        (count // 2,),
    ).fetchone()
    inbound = conn.execute(
        "SELECT message_id FROM inbox ORDER BY seq LIMIT 1 OFFSET ?", (count // 3,)
    ).fetchone()
    day = dt.datetime.fromisoformat(mid[0])
    return {
        "first page": TransferFilter(),
        "page in the middle (keyset)": TransferFilter(cursor=encode_cursor(mid[0], mid[1])),
        "direction=inbound": TransferFilter(direction="inbound"),
        "status=dead_lettered": TransferFilter(status="dead_lettered"),
        "status=pending peer=510900": TransferFilter(status="pending", peer=SUINING),
        "type=complaint status=delivered": TransferFilter(
            record_type="consumer_complaint", status="delivered"
        ),
        "one day, type=referral": TransferFilter(
            record_type="enforcement_referral",
            since=_iso(day - dt.timedelta(hours=12)),
            until=_iso(day + dt.timedelta(hours=12)),
        ),
        "status=received (inbound)": TransferFilter(status="received"),
        "peer=510900 type=feedback": TransferFilter(peer=SUINING, record_type="feedback"),
        "search message id": TransferFilter(q=inbound[0]),
        "search USCC / number": TransferFilter(q=mid[2]),
        "search, no match": TransferFilter(q="91510900MA00000000"),
    }


def _query_string(f: TransferFilter) -> dict[str, str]:
    out = {
        k: getattr(f, k)
        for k in ("direction", "peer", "record_type", "status", "q", "cursor")
        if getattr(f, k)
    }
    for k in ("since", "until"):
        if getattr(f, k):
            out[k] = getattr(f, k)
    return out


async def _measure(workdir: Path, pki: PkiLayout, database: Path, repeat: int) -> list[str]:
    password = secrets.token_urlsafe(18)
    config = _config(workdir, pki, database)
    async with operator_records(config) as records:
        accounts = AccountStore(records)
        if await accounts.get("bench-viewer") is not None:
            await accounts.remove("bench-viewer")
        await accounts.add("bench-viewer", Role.VIEWER, password)
    conn = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    log_rows = conn.execute("SELECT max(seq) FROM transfer_log").fetchone()[0]
    scenarios = _filters(conn)
    conn.close()
    lines = [f"transfer log: {log_rows:,} entries; {repeat} requests per line (ms)"]
    lines.append(f"{'scenario':<34} {'rows':>5} {'median':>8} {'p95':>8} {'max':>8}")
    started = time.perf_counter()
    async with build_node(config) as node:
        console = console_of(node)
        assert console is not None
        lines.insert(
            0, f"node start with console (indexes ready): {time.perf_counter() - started:.1f} s"
        )
        base = f"http://127.0.0.1:{console.port}"
        # unsafe=True: aiohttp keeps no cookies from bare IP addresses otherwise.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.post(
                f"{base}/login", json={"username": "bench-viewer", "password": password}
            ) as r:
                r.raise_for_status()
            targets = [(name, "/api/transfers", _query_string(f)) for name, f in scenarios.items()]
            targets.append(("HTML page /transfers (first page)", "/transfers", {}))
            targets.append(
                ("HTML page, type=complaint", "/transfers", {"record_type": "consumer_complaint"})
            )
            targets.append(("overview API (all counts)", "/api/overview", {}))
            for name, path, params in targets:
                timings: list[float] = []
                rows = 0
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    async with http.get(base + path, params=params) as r:
                        body = await r.read()
                        r.raise_for_status()
                    timings.append((time.perf_counter() - t0) * 1000)
                if path == "/api/transfers":
                    rows = len(json.loads(body)["items"])
                timings.sort()
                p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
                lines.append(
                    f"{name:<34} {rows:>5} {statistics.median(timings):>8.1f} {p95:>8.1f} "
                    f"{timings[-1]:>8.1f}"
                )
            # Walk 20 pages deep through the whole union with the cursor the API hands out.
            cursor, t0 = "", time.perf_counter()
            for _ in range(20):
                async with http.get(
                    base + "/api/transfers", params={"cursor": cursor} if cursor else {}
                ) as r:
                    cursor = (await r.json())["next_cursor"]
            lines.append(
                f"{'20 pages in a row, following cursor':<34} {'':>5} "
                f"{(time.perf_counter() - t0) * 1000 / 20:>8.1f} (mean)"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path(".bench/console"))
    parser.add_argument("--log-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args(argv)
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    pki = init_pki(workdir / "pki", [TONGLIANG, SUINING])
    database = workdir / f"{TONGLIANG}-{args.log_rows}.db"
    if args.rebuild:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
    if not database.exists():
        t0 = time.perf_counter()
        build_database(database, pki, args.log_rows)
        print(f"built {database} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    lines = asyncio.run(_measure(workdir, pki, database, args.repeat))
    if args.explain:
        _explain(database)
    print("\n".join(lines))
    # Same query without HTTP, for comparison with the API figures above.
    conn = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        _list_transfers(conn, TransferFilter())
    mean = (time.perf_counter() - t0) * 1000 / args.repeat
    print(f"list_transfers() first page, no HTTP: {mean:.1f} ms")
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
