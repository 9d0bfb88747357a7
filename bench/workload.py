"""The partner's workload: distinct, valid, signed consumer complaints, serialised once.

Each complaint is the conformance kit's sample with its own number and a long statement
of facts, so a request is the size of a real one.

Pure: no I/O, no gRPC. The load client builds every request before timing starts
so the measured window holds only the calls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from chuanyu.exchange.v1 import exchange_service_pb2 as xpb
from gateway.clock import beijing_date
from gateway.codec import encode_payload
from gateway.conformance.samples import sample_record
from gateway.envelope import new_message_id, seal_envelope
from gateway.records import ConsumerComplaint, RecordType
from gateway.signing import Signer

__all__ = ["complaint", "sealed_envelopes", "stream_requests", "submit_requests"]

_FACTS = (
    "消费者于{purchased}在被投诉方门店购买变频空调一台，安装后第三天出现制冷效果差、"
    "室外机异响等问题。经售后人员两次上门检修未能解决，被投诉方以超过七日无理由退货期限为由"
    "拒绝退货，仅同意再次维修。消费者认为产品存在质量问题，要求依照《消费者权益保护法》"
    "第二十四条及“三包”规定予以退货并退还货款。投诉编号 {number}。"
)


def complaint(number: int, registered_at: dt.datetime) -> ConsumerComplaint:
    """A valid complaint whose number (and so record key) is ``number``."""
    purchased = beijing_date(registered_at) - dt.timedelta(days=7)
    complaint_number = f"BENCH-510900-{number:09d}"
    record = sample_record(
        RecordType.CONSUMER_COMPLAINT,
        complaint_number=complaint_number,
        registered_at=registered_at,
        subject="空调制冷效果差、异响，要求退货",
        purchased_on=purchased,
        facts=_FACTS.format(purchased=purchased.isoformat(), number=complaint_number),
        request="退货并退还货款2999元",
    )
    assert isinstance(record, ConsumerComplaint)
    return record


def sealed_envelopes(
    signer: Signer,
    *,
    receiver: str,
    agreement_id: str,
    numbers: Sequence[int],
    created_at: dt.datetime,
) -> list[bytes]:
    """One serialised, signed ``Envelope`` per complaint number, each with its own message id."""
    envelopes = []
    for number in numbers:
        envelope = seal_envelope(
            signer,
            message_id=new_message_id(),
            receiver=receiver,
            record_type=RecordType.CONSUMER_COMPLAINT,
            agreement_id=agreement_id,
            correlation_id="",
            payload=encode_payload(complaint(number, created_at)),
            created_at=created_at,
        )
        envelopes.append(envelope.SerializeToString())
    return envelopes


def submit_requests(envelopes: Sequence[bytes]) -> list[bytes]:
    """Serialised ``SubmitRequest`` messages, one per serialised envelope."""
    # An embedded message's wire bytes equal its serialised form: wrap without re-encoding.
    return [_wrap(xpb.SubmitRequest, envelope) for envelope in envelopes]


def stream_requests(envelopes: Sequence[bytes]) -> list[bytes]:
    """Serialised ``SubmitStreamRequest`` messages, one per serialised envelope."""
    return [_wrap(xpb.SubmitStreamRequest, envelope) for envelope in envelopes]


def _wrap(
    message_type: type[xpb.SubmitRequest] | type[xpb.SubmitStreamRequest], envelope: bytes
) -> bytes:
    message = message_type()
    message.envelope.MergeFromString(envelope)
    return message.SerializeToString()
