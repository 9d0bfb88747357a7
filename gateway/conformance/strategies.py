"""Hypothesis strategies for valid canonical records (the fixed examples: :mod:`.samples`).

Every generated record has passed :func:`gateway.records.parse_record`. Values
are in the normal form adapters produce when decoding: an empty optional value
is ``None`` (never ``""``), times are whole seconds. Text mixes CJK, characters
outside the BMP (𠮷 𪚥), line breaks and arbitrary printable Unicode, so an
adapter that mangles encodings or whitespace is caught.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from gateway.clock import BEIJING
from gateway.conformance.samples import complete_uscc, example_record
from gateway.identifiers import USCC_ALPHABET, check_resident_id
from gateway.records import (
    Channel,
    ConsumptionCategory,
    FeedbackStatus,
    IdType,
    Record,
    RecordType,
    RegistrationStatus,
    parse_record,
)

__all__ = ["example_record", "record_strategy", "records_strategy"]

_CHARACTERS = st.one_of(
    st.characters(
        codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters="\ufffe\uffff"
    ),
    st.sampled_from(list("铜梁遂宁龙乡优品市场监督管理局𠮷𪚥 ")),
    st.sampled_from(["\n", "\t", "\r"]),
)
_DIVISIONS = ("500151", "500224", "510900", "510903", "510904", "510981", "510100")
_ZONES = (BEIJING, dt.UTC, dt.timezone(dt.timedelta(hours=-5)), dt.timezone(dt.timedelta(hours=9)))


def _text(max_size: int = 24) -> st.SearchStrategy[str]:
    return st.text(_CHARACTERS, min_size=1, max_size=max_size).filter(lambda s: bool(s.strip()))


def _optional_text() -> st.SearchStrategy[str | None]:
    return st.none() | _text()


@st.composite
def _uscc(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(("91", "92", "93", "11", "Y1")))
    division = draw(st.sampled_from(_DIVISIONS))
    body = draw(st.text(st.sampled_from(USCC_ALPHABET), min_size=8, max_size=8))
    return complete_uscc(head + division + body)


@st.composite
def _resident_id(draw: st.DrawFn) -> str:
    area = draw(st.sampled_from(("110105", "500224", "510228", "510903")))
    born = draw(st.dates(dt.date(1930, 1, 1), dt.date(2008, 12, 31)))
    serial = draw(st.integers(0, 999))
    first17 = f"{area}{born:%Y%m%d}{serial:03d}"
    for check in "0123456789X":
        if check_resident_id(first17 + check) is None:
            return first17 + check
    raise AssertionError("no GB 11643 check character fits")  # pragma: no cover


def _phone() -> st.SearchStrategy[str]:
    mobile = st.integers(10**9, 10**10 - 1).map(lambda n: f"1{n}")
    landline = st.integers(1_000_000, 99_999_999).map(lambda n: f"0825-{n}")
    return mobile | landline


def _yuan() -> st.SearchStrategy[Decimal]:
    # Built from integer fen: money never passes through a float.
    return st.integers(0, 10**15).map(lambda fen: Decimal(fen).scaleb(-2))


def _moment() -> st.SearchStrategy[dt.datetime]:
    return st.datetimes(
        dt.datetime(2000, 1, 1), dt.datetime(2035, 12, 31), timezones=st.sampled_from(_ZONES)
    ).map(lambda moment: moment.replace(microsecond=0))


def _dates() -> st.SearchStrategy[dt.date]:
    return st.dates(dt.date(1950, 1, 1), dt.date(2035, 12, 31))


@st.composite
def _registration(draw: st.DrawFn, currencies: Sequence[str]) -> dict[str, Any]:
    id_type = draw(st.sampled_from(IdType))
    id_number = draw(_resident_id() if id_type is IdType.RESIDENT_ID else _text(18))
    return {
        "record_type": RecordType.BUSINESS_REGISTRATION,
        "uscc": draw(_uscc()),
        "name": draw(_text()),
        "entity_type": draw(_text()),
        "legal_representative": draw(_text(6)),
        "legal_representative_id_type": id_type,
        "legal_representative_id_number": id_number,
        "registered_capital": draw(_yuan()),
        "registered_capital_currency": draw(st.sampled_from(currencies)),
        "established_on": draw(_dates()),
        "address": draw(_text()),
        "address_division": draw(st.sampled_from(_DIVISIONS)),
        "business_scope": draw(_text(60)),
        "registration_authority": draw(_text()),
        "status": draw(st.sampled_from(RegistrationStatus)),
        "approved_on": draw(_dates()),
        "actual_business_address": draw(_optional_text()),
    }


@st.composite
def _complaint(draw: st.DrawFn) -> dict[str, Any]:
    registered_at = draw(_moment())
    registered_on = registered_at.astimezone(BEIJING).date()
    purchased_on = registered_on - dt.timedelta(days=draw(st.integers(0, 800)))
    return {
        "record_type": RecordType.CONSUMER_COMPLAINT,
        "complaint_number": draw(_text(40)),
        "registered_at": registered_at,
        "channel": draw(st.sampled_from(Channel)),
        "complainant": {
            "name": draw(_text(6)),
            "phone": draw(_phone()),
            "id_number": draw(st.none() | _resident_id()),
            "address": draw(_optional_text()),
        },
        "respondent": {
            "name": draw(_text()),
            "uscc": draw(st.none() | _uscc()),
            "address": draw(_text()),
            "division": draw(st.sampled_from(_DIVISIONS)),
        },
        "subject": draw(_text()),
        "category": draw(st.sampled_from(ConsumptionCategory)),
        "amount": draw(_yuan()),
        "purchased_on": purchased_on,
        "facts": draw(_text(80)),
        "request": draw(_text()),
    }


@st.composite
def _referral(draw: st.DrawFn) -> dict[str, Any]:
    uscc, id_number = draw(
        st.one_of(
            st.tuples(_uscc(), st.none()),
            st.tuples(st.none(), _resident_id()),
            st.tuples(_uscc(), _resident_id()),
        )
    )
    evidence = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "name": _text(),
                    "pages": st.integers(0, 100_000),
                    "sha256": st.binary(min_size=32, max_size=32).map(bytes.hex),
                }
            ),
            max_size=3,
        )
    )
    return {
        "record_type": RecordType.ENFORCEMENT_REFERRAL,
        "referral_number": draw(_text(40)),
        "referring_bureau": draw(_text()),
        "receiving_bureau": draw(_text()),
        "party": {
            "name": draw(_text()),
            "uscc": uscc,
            "id_number": id_number,
            "address": draw(_text()),
        },
        "violation": draw(_text()),
        "facts": draw(_text(80)),
        "legal_basis": draw(_text()),
        "found_on": draw(_dates()),
        "evidence": evidence,
        "items": draw(st.lists(_text(), max_size=3)),
        "contact_name": draw(_text(6)),
        "contact_phone": draw(_phone()),
    }


@st.composite
def _feedback(draw: st.DrawFn) -> dict[str, Any]:
    status = draw(st.sampled_from(FeedbackStatus))
    return {
        "record_type": RecordType.FEEDBACK,
        "original_number": draw(_text(40)),
        "original_type": status.answers,
        "status": status,
        "note": draw(_optional_text()),
        "handled_at": draw(_moment()),
        "officer": draw(_text(6)),
    }


def record_strategy(
    record_type: RecordType, *, currencies: Sequence[str] = ("CNY",)
) -> st.SearchStrategy[Record]:
    """Valid canonical records of one type; ``currencies`` limits registered-capital codes."""
    if record_type is RecordType.BUSINESS_REGISTRATION:
        raw: st.SearchStrategy[dict[str, Any]] = _registration(tuple(currencies))
    elif record_type is RecordType.CONSUMER_COMPLAINT:
        raw = _complaint()
    elif record_type is RecordType.ENFORCEMENT_REFERRAL:
        raw = _referral()
    else:
        raw = _feedback()
    return raw.map(parse_record)


def records_strategy(
    record_types: Sequence[RecordType], *, currencies: Sequence[str] = ("CNY",), max_size: int = 4
) -> st.SearchStrategy[list[Record]]:
    """Batches mixing the given record types."""
    one = st.one_of([record_strategy(t, currencies=currencies) for t in record_types])
    return st.lists(one, min_size=1, max_size=max_size)
