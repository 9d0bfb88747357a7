"""Cooperation agreements as data: which records and fields may cross, and for how long.

One TOML file per agreement (format: ``agreements/README.md``). :func:`load_agreements`
reads a directory once, at start, and refuses the whole set if any file breaks a rule —
a node must never run with an agreement it misread. Everything after loading is pure:
:class:`AgreementBook` takes records and times and returns records or decisions.

::

    PeerError
    └── AgreementRefused      a record outside the agreement (reason says which rule)
    ConfigInvalid
    └── AgreementFileInvalid  an agreement file breaks a rule (problems name file, key, rule)

Unlisted fields: every canonical field path of every record type an agreement allows must
be listed with a policy and a sharing class. There is no default policy, so a field added
to the canonical model later cannot cross (nor be silently dropped) until the agreement
is amended to say so: loading fails and names the missing paths.

Dates are Beijing calendar days: an agreement is in force on ``effective_from`` through
``effective_until`` inclusive, judged on ``now`` converted to UTC+8.
"""

from __future__ import annotations

from gateway.agreements.book import AgreementBook
from gateway.agreements.fields import (
    CanonicalField,
    canonical_fields,
)
from gateway.agreements.loading import load_agreements
from gateway.agreements.model import (
    Agreement,
    AgreementFileInvalid,
    AgreementProblem,
    AgreementRefused,
    DirectionTerms,
    FieldAction,
    FieldPolicy,
    RecordTerms,
    RefusalReason,
    SharingClass,
    beijing_today,
)
from gateway.agreements.parsing import (
    KNOWN_SUITES,
    parse_agreement,
)
from gateway.clock import BEIJING as BEIJING

__all__ = [
    "KNOWN_SUITES",
    "Agreement",
    "AgreementBook",
    "AgreementFileInvalid",
    "AgreementProblem",
    "AgreementRefused",
    "CanonicalField",
    "DirectionTerms",
    "FieldAction",
    "FieldPolicy",
    "RecordTerms",
    "RefusalReason",
    "SharingClass",
    "beijing_today",
    "canonical_fields",
    "load_agreements",
    "parse_agreement",
]
