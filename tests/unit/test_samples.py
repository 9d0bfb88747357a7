"""The conformance kit's sample records: valid, distinct, deterministic."""

from __future__ import annotations

import pytest

from gateway.conformance.samples import (
    SAMPLE_DATA,
    complete_uscc,
    sample_data,
    sample_feedback,
    sample_key,
    sample_record,
    sample_records,
)
from gateway.identifiers import check_uscc
from gateway.records import Feedback, FeedbackStatus, OriginalType, RecordType, record_key


@pytest.mark.parametrize("record_type", list(RecordType))
def test_every_record_type_has_a_valid_sample(record_type: RecordType) -> None:
    record = sample_record(record_type)
    assert record.record_type is record_type
    assert sample_data(record_type) == dict(SAMPLE_DATA[record_type])


def test_sample_data_is_a_copy() -> None:
    data = sample_data(RecordType.ENFORCEMENT_REFERRAL)
    data["evidence"][0]["pages"] = 99
    assert SAMPLE_DATA[RecordType.ENFORCEMENT_REFERRAL]["evidence"][0]["pages"] == 3


@pytest.mark.parametrize("record_type", list(RecordType))
def test_sample_records_have_distinct_ids(record_type: RecordType) -> None:
    records = sample_records(record_type, 50, start=7)
    keys = [record_key(r) for r in records]
    assert len(set(keys)) == 50
    assert keys[0] == sample_key(record_type, 7)


@pytest.mark.parametrize("record_type", list(RecordType))
def test_a_seed_varies_records_the_same_way_every_time(record_type: RecordType) -> None:
    first = sample_records(record_type, 20, seed=5)
    assert first == sample_records(record_type, 20, seed=5)
    assert first != sample_records(record_type, 20, seed=6)
    assert first != sample_records(record_type, 20)


def test_keys_and_changes_apply_to_every_record() -> None:
    records = sample_records(
        RecordType.CONSUMER_COMPLAINT, 2, keys=["A-1", "A-2"], subject="电视机"
    )
    assert [record_key(r) for r in records] == ["A-1", "A-2"]
    assert {getattr(r, "subject", None) for r in records} == {"电视机"}
    with pytest.raises(ValueError, match="3 keys for 2 records"):
        sample_records(RecordType.CONSUMER_COMPLAINT, 2, keys=["a", "b", "c"])


def test_registration_keys_are_valid_usccs() -> None:
    for index in (0, 1, 30, 31, 10**6, 31**8 - 1):
        assert check_uscc(sample_key(RecordType.BUSINESS_REGISTRATION, index)) is None
    with pytest.raises(ValueError, match="too large"):
        sample_key(RecordType.BUSINESS_REGISTRATION, 31**8)
    assert check_uscc(complete_uscc("9251090300000000")) is None
    with pytest.raises(ValueError, match="USCC alphabet"):
        complete_uscc("925109030000000I")


def test_feedback_answers_its_original() -> None:
    referral = sample_record(RecordType.ENFORCEMENT_REFERRAL)
    feedback = sample_feedback(referral)
    assert isinstance(feedback, Feedback)
    assert feedback.original_number == record_key(referral)
    assert feedback.original_type is OriginalType.ENFORCEMENT_REFERRAL
    assert feedback.status.answers is OriginalType.ENFORCEMENT_REFERRAL
    closed = sample_feedback(
        sample_record(RecordType.CONSUMER_COMPLAINT), "complaint_accepted", officer="周七"
    )
    assert closed.status is FeedbackStatus.COMPLAINT_ACCEPTED
    assert closed.officer == "周七"
    with pytest.raises(ValueError, match="not feedback"):
        sample_feedback(feedback)
