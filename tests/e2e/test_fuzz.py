"""Property-based fuzzing of everything that parses bytes from outside the node.

(a) the envelope opener (``parse_envelope`` + ``open_envelope``, then the agreement check
    the node runs next) on arbitrary bytes, on byte-level mutations of a valid envelope
    (bit flips, truncations, insertions, deletions, duplications), and on mutated header
    and payload bytes *re-signed with a genuine key* (so the mutation reaches the record
    decoder instead of dying at the signature check);
(b) both region adapters' ``decode`` on arbitrary bytes, byte-level mutations of the shipped
    samples in ``adapters/samples/``, and structure-aware mutations (a JSON value or an XML
    text node replaced);
(c) a live node's ``Submit`` over real mutual-TLS gRPC with mutated envelopes: never
    ``UNKNOWN`` or ``INTERNAL``, and a good envelope gets a receipt after every input.

Only :class:`gateway.errors.GatewayError` may escape (for the adapters: ``LocalFileInvalid``,
as their contract says).

Budget: a few hundred examples in all by default (a few seconds per test); set
``CHUANYU_FUZZ_EXAMPLES=20000`` for a long run (each pure test gets that many examples, the
live-node test a tenth of it), e.g.::

    CHUANYU_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/e2e/test_fuzz.py -k fuzz
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import re
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.utils import CryptographyDeprecationWarning
from exchange_support import (
    AGREEMENTS,
    COMPLAINT,
    REGISTRATION,
    SUINING,
    TONGLIANG,
    exchange_stub,
    node_config,
    peer_channel,
    record,
    sealed,
    signer_for,
    submit,
)
from hostile_support import forge, raw_submit, reason_of, submit_request_bytes
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chuanyu.exchange.v1 import envelope_pb2 as epb
from chuanyu.exchange.v1 import records_pb2 as rpb
from gateway.adapter import LocalAdapter, LocalFileInvalid, load_adapter
from gateway.agreements import AgreementBook, load_agreements
from gateway.envelope import Freshness, open_envelope, parse_envelope
from gateway.errors import CertificateRejected, GatewayError
from gateway.node import GatewayNode
from gateway.pki import PkiLayout, SigningCertificateVerifier, load_certificate
from gateway.records import parse_record
from gateway.signing import Signer, sha256

_LONG = int(os.environ.get("CHUANYU_FUZZ_EXAMPLES", "0") or 0)
SAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "samples"
FORBIDDEN = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})

# A long run must not be cut by the suite's 120 s per-test timeout.
pytestmark = pytest.mark.timeout(0 if _LONG else 120)


def fuzz(default: int, *, live: bool = False) -> settings:
    """``default`` examples in ``make test``; ``CHUANYU_FUZZ_EXAMPLES`` (a tenth for live)."""
    examples = max(default, _LONG // 10 if live else _LONG) if _LONG else default
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
        ],
    )


# ---------------------------------------------------------------------------
# Mutations

_INTERESTING = [
    b"\x00",
    b"\x7f",
    b"\x80",
    b"\xff",
    b"\xff\xff\xff\xff\x0f",  # a varint of 2**32 - 1
    b"\xff" * 10,  # a varint too long
    b"\x0a\x80\x80\x80\x80\x08",  # field 1, length 2**31
    b"\x3a\x00",  # field 7 (created_at), empty
    b"\x0b",  # a start-group
    b"\x0c",  # an end-group
    b"\xf8\xff\xff\xff\x0f\x01",  # the largest field number
]


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` after one to four random edits."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "duplicate"]))
        at = draw(st.integers(0, len(buf)))
        if op == "flip" and at < len(buf):
            buf[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and at < len(buf):
            buf[at] = draw(st.integers(0, 255))
        elif op == "truncate":
            del buf[at:]
        elif op == "insert":
            buf[at:at] = draw(
                st.one_of(st.sampled_from(_INTERESTING), st.binary(min_size=1, max_size=24))
            )
        elif op == "delete":
            del buf[at : at + draw(st.integers(1, 16))]
        elif op == "duplicate":
            end = min(len(buf), at + draw(st.integers(1, 64)))
            buf[end:end] = buf[at:end]
    return bytes(buf)


@contextlib.contextmanager
def _pyca_name_warnings_ignored() -> Iterator[None]:
    # pyca warns about oddities it still parses (a name attribute of the wrong length, a
    # negative serial number); the suite turns warnings into errors, a node only logs them.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Attribute's length must be", category=UserWarning
        )
        warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)
        yield


def _expect_only_gateway_errors(action: Callable[[], object]) -> None:
    try:
        with _pyca_name_warnings_ignored():
            action()
    except GatewayError as exc:
        event(f"refused: {type(exc).__name__} {exc.reason}")
    else:
        event("accepted")


# ---------------------------------------------------------------------------
# (a) the envelope opener


@dataclass(frozen=True, repr=False)
class Opener:
    signer: Signer
    verifier: SigningCertificateVerifier
    agreements: AgreementBook
    good: epb.Envelope
    now: dt.datetime

    def open(self, data: bytes) -> None:
        envelope = parse_envelope(data)
        opened = open_envelope(
            envelope,
            receiver=TONGLIANG,
            tls_peer=SUINING,
            verifier=self.verifier,
            now=self.now,
            freshness=Freshness(),
        )
        self.agreements.check_inbound(
            opened.header.agreement_id,
            opened.header.sender,
            TONGLIANG,
            opened.record_type,
            opened.record,
            now=self.now,
            suite=opened.header.suite,
        )


@pytest.fixture(scope="module")
def opener(pki: PkiLayout) -> Opener:
    signer = signer_for(pki, SUINING)
    now = dt.datetime.now(dt.UTC)
    return Opener(
        signer=signer,
        verifier=SigningCertificateVerifier([load_certificate(pki.ca_cert)]),
        agreements=load_agreements(AGREEMENTS),
        good=sealed(signer, record(COMPLAINT), created_at=now),
        now=now,
    )


def test_fuzz_the_valid_envelope_opens(opener: Opener) -> None:
    """The seed of the mutations is itself accepted (else the fuzzers test nothing)."""
    opener.open(opener.good.SerializeToString())


@fuzz(100)
@given(data=st.binary(max_size=4096))
def test_fuzz_open_envelope_arbitrary_bytes(opener: Opener, data: bytes) -> None:
    _expect_only_gateway_errors(lambda: opener.open(data))


@fuzz(120)
@given(data=st.data())
def test_fuzz_open_envelope_mutated(opener: Opener, data: st.DataObject) -> None:
    envelope = data.draw(mutated(opener.good.SerializeToString()))
    _expect_only_gateway_errors(lambda: opener.open(envelope))


@fuzz(120)
@given(data=st.data())
def test_fuzz_open_envelope_mutated_and_resigned(opener: Opener, data: st.DataObject) -> None:
    envelope = data.draw(resigned(opener.signer, opener.good))
    _expect_only_gateway_errors(lambda: opener.open(envelope.SerializeToString()))


@st.composite
def resigned(draw: st.DrawFn, signer: Signer, good: epb.Envelope) -> epb.Envelope:
    """Mutated header and/or payload bytes, genuinely signed (payload digest kept right)."""
    payload = good.payload
    if draw(st.booleans()):
        payload = draw(mutated(payload))
    header = epb.EnvelopeHeader.FromString(good.header)
    header.payload_sha256 = sha256(payload)
    header_bytes = header.SerializeToString()
    if draw(st.booleans()):
        header_bytes = draw(mutated(header_bytes))
    return forge(signer, header_bytes, payload)


_OUT_OF_RANGE = st.one_of(
    st.tuples(st.integers(253402300800, 2**63 - 1), st.just(0)),
    st.tuples(st.integers(-(2**63), -62135596801), st.just(0)),
    st.tuples(st.just(1_700_000_000), st.integers(-(2**31), -1)),
    st.tuples(st.just(1_700_000_000), st.integers(1_000_000_000, 2**31 - 1)),
)


@fuzz(40)
@given(created_at=_OUT_OF_RANGE, where=st.sampled_from(["header", "payload"]))
def test_fuzz_timestamps_out_of_range(
    opener: Opener, created_at: tuple[int, int], where: str
) -> None:
    """A Timestamp Python cannot represent is refused, in the header or in the record
    (regression test for H-1, fixed in 8f7755a: it used to escape as ValueError)."""
    header = epb.EnvelopeHeader.FromString(opener.good.header)
    payload = opener.good.payload
    if where == "header":
        header.created_at.seconds, header.created_at.nanos = created_at
    else:
        message = rpb.Record.FromString(payload)
        stamp = message.consumer_complaint.registered_at
        stamp.seconds, stamp.nanos = created_at
        payload = message.SerializeToString()
        header.payload_sha256 = sha256(payload)
    envelope = forge(opener.signer, header.SerializeToString(), payload)
    with pytest.raises(GatewayError):
        opener.open(envelope.SerializeToString())


@fuzz(120)
@given(data=st.data())
def test_fuzz_signing_certificate_mutated(opener: Opener, data: st.DataObject) -> None:
    """The signer certificate alone, mutated: the verifier refuses with CertificateRejected."""
    der = data.draw(mutated(opener.signer.certificate_der))
    _expect_only_gateway_errors(lambda: opener.verifier.verify(der, now=opener.now))


# One-byte edits of a genuine signing certificate that pyca parses lazily: each must be
# refused as a certificate, never escape as a pyca exception.
_CERTIFICATE_EDITS = [
    (b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x07"),  # X.509 version 8
    (b"\x06\x03\x55\x1d\x0e", b"\x06\x03\x55\x1d\x23"),  # a second authorityKeyIdentifier
    (b"\x86\x19urn:chuanyu:bureau:", b"\xa3\x19urn:chuanyu:bureau:"),  # x400Address SAN
    (b"\x0c\x1bChuanyu Cooperation Root CA", b"\x03\x1bChuanyu Cooperation Root CA"),
]


@settings(fuzz(8), report_multiple_bugs=False)
@given(edit=st.sampled_from(_CERTIFICATE_EDITS))
def test_fuzz_malformed_signing_certificates(opener: Opener, edit: tuple[bytes, bytes]) -> None:
    der = opener.signer.certificate_der.replace(*edit, 1)
    with pytest.raises(CertificateRejected) as caught:
        opener.verifier.verify(der, now=opener.now)
    assert caught.value.reason in {"CERTIFICATE_MALFORMED", "CERTIFICATE_UNTRUSTED"}


# ---------------------------------------------------------------------------
# (b) the region adapters


@functools.cache
def _adapter(name: str) -> LocalAdapter:
    # Once: the entry points are re-read on every load_adapter (a concurrent reinstall of the
    # package can hide them for a moment); a node, too, loads its adapter once at start.
    return load_adapter(name)


def _samples(adapter: str) -> list[bytes]:
    return [path.read_bytes() for path in sorted((SAMPLES / adapter).iterdir())]


ADAPTERS = ["tongliang", "suining"]
_DECLARATION = b'<?xml version="1.0" encoding="GB18030"?>\n'


def _decode(adapter: LocalAdapter, data: bytes) -> None:
    try:
        batch = adapter.decode(data)
    except LocalFileInvalid as exc:
        event(f"refused: {exc.problems[0].rule}")
        return
    event(f"accepted: {len(batch.records)} record(s)")
    for rec in batch.records:
        parse_record(rec)  # what decode returns passes canonical validation again


@pytest.mark.parametrize("name", ADAPTERS)
@fuzz(50)
@given(data=st.data())
def test_fuzz_adapter_arbitrary_bytes(name: str, data: st.DataObject) -> None:
    adapter = _adapter(name)
    prefix = data.draw(st.sampled_from([b"", b"\xef\xbb\xbf", _DECLARATION]))
    body = data.draw(
        st.one_of(
            st.binary(max_size=2048),
            st.text(max_size=512).map(lambda t: t.encode("utf-8", "surrogatepass")),
        )
    )
    _decode(adapter, prefix + body)


@pytest.mark.parametrize("name", ADAPTERS)
@fuzz(75)
@given(data=st.data())
def test_fuzz_adapter_mutated_samples(name: str, data: st.DataObject) -> None:
    sample = data.draw(st.sampled_from(_samples(name)))
    _decode(_adapter(name), data.draw(mutated(sample)))


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["", " ", "\x00", "9" * 400, "2026-02-30", "1e999", "－１", "𠀀"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))] + [path]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))] + [path]
    return [path]


@fuzz(60)
@given(data=st.data())
def test_fuzz_tongliang_structure(data: st.DataObject) -> None:
    """A JSON value anywhere in a Tongliang sample replaced (or a key deleted)."""
    tree = json.loads(data.draw(st.sampled_from(_samples("tongliang"))).decode("utf-8-sig"))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_leaves(tree)))
        if not path:
            tree = data.draw(_JSON)
            continue
        parent = tree
        for part in path[:-1]:
            parent = parent[part]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(_JSON)
    _decode(_adapter("tongliang"), json.dumps(tree, ensure_ascii=False).encode("utf-8"))


_TEXT_NODE = re.compile(rb">([^<]*)<")
_XML_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    st.sampled_from(["", "&amp;", "&lt;", "&#0;", "&#x1F600;", "]]>", "<![CDATA[x]]>", "&xxe;"]),
    st.sampled_from(["99999999", "20260230", "-1", "1e9", "0x10", "１２３", "  ", "\t"]),
)


@fuzz(60)
@given(data=st.data())
def test_fuzz_suining_structure(data: st.DataObject) -> None:
    """The text of a random element of a Suining sample replaced (GB18030, raw or escaped)."""
    sample = data.draw(st.sampled_from(_samples("suining")))
    spans = list(_TEXT_NODE.finditer(sample))
    for _ in range(data.draw(st.integers(1, 3))):
        match = data.draw(st.sampled_from(spans))
        text = data.draw(_XML_TEXT)
        encoded = text.encode("gb18030", errors="replace")
        start, end = match.span(1)
        sample = sample[:start] + encoded + sample[end:]
        spans = list(_TEXT_NODE.finditer(sample))
        if not spans:
            break
    _decode(_adapter("suining"), sample)


# ---------------------------------------------------------------------------
# (c) a live node


@dataclass(repr=False)
class Live:
    node: GatewayNode
    channel: grpc.aio.Channel
    signer: Signer
    good: epb.Envelope


@pytest.fixture
async def live(pki: PkiLayout, tmp_path: Path) -> AsyncIterator[Live]:
    node = GatewayNode(node_config(pki, TONGLIANG, SUINING, tmp_path))
    async with node, peer_channel(pki, SUINING, node.peer_port) as channel:
        signer = signer_for(pki, SUINING)
        yield Live(node, channel, signer, sealed(signer, record(REGISTRATION)))


@st.composite
def live_input(draw: st.DrawFn, good: epb.Envelope, signer: Signer) -> bytes:
    kind = draw(st.sampled_from(["request", "resigned", "arbitrary"]))
    if kind == "request":
        return draw(mutated(submit_request_bytes(good)))
    if kind == "resigned":
        return submit_request_bytes(draw(resigned(signer, good)))
    return draw(st.binary(max_size=1024))


@pytest.mark.e2e
@fuzz(40, live=True)
@given(data=st.data())
async def test_fuzz_live_node_submit(
    live: Live, data: st.DataObject, caplog: pytest.LogCaptureFixture
) -> None:
    request = data.draw(live_input(live.good, live.signer))
    try:
        with _pyca_name_warnings_ignored():
            await raw_submit(live.channel, request)
        event("accepted")
    except grpc.aio.AioRpcError as error:
        assert error.code() not in FORBIDDEN, (error.code(), error.details(), request)
        event(f"refused: {error.code().name} {reason_of(error)}")
    # After every input: a fresh good envelope still gets a receipt naming it.
    fresh = sealed(live.signer, record(REGISTRATION))
    receipt = await submit(exchange_stub(live.channel), fresh)
    body = epb.ReceiptBody.FromString(receipt.body)
    assert body.message_id == epb.EnvelopeHeader.FromString(fresh.header).message_id
