"""Canonical records: the one shape every region's data takes inside the gateway.

Adapters turn local files into these models and back; the node turns them into
protobuf payloads (:mod:`gateway.codec`). Validation lives here, once:

* USCC (GB 32100 + GB 11714), resident id (GB 11643), GB/T 2260 division codes;
* money is :class:`~decimal.Decimal` yuan with at most two decimals — a float is
  refused, never rounded;
* times are timezone-aware; dates are plain dates;
* fields holding personal information carry a :class:`~gateway.privacy.PersonalInfo`
  marker, and no error message ever repeats their value unmasked.

:func:`parse_record` validates untrusted data and raises
:class:`~gateway.errors.RecordInvalid` with one violation per broken rule.
"""

from __future__ import annotations

from gateway.clock import BEIJING as BEIJING
from gateway.records.models import (
    BusinessRegistration,
    Complainant,
    ConsumerComplaint,
    EnforcementReferral,
    Evidence,
    Feedback,
    Party,
    Record,
    Respondent,
    record_key,
)
from gateway.records.validation import (
    parse_record,
    parse_records_json,
    personal_info_paths,
    record_to_json,
    records_to_json,
    violations_from,
)
from gateway.records.vocabulary import (
    Channel,
    ConsumptionCategory,
    FeedbackStatus,
    IdType,
    OriginalType,
    RecordType,
    RegistrationStatus,
)

__all__ = [
    "BusinessRegistration",
    "Channel",
    "Complainant",
    "ConsumerComplaint",
    "ConsumptionCategory",
    "EnforcementReferral",
    "Evidence",
    "Feedback",
    "FeedbackStatus",
    "IdType",
    "OriginalType",
    "Party",
    "Record",
    "RecordType",
    "RegistrationStatus",
    "Respondent",
    "parse_record",
    "parse_records_json",
    "personal_info_paths",
    "record_key",
    "record_to_json",
    "records_to_json",
    "violations_from",
]
