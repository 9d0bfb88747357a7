"""Check digits and formats of the identifiers records carry.

Pure functions: each check returns ``None`` when the value is good and a
:class:`IdentifierProblem` naming the rule it broke otherwise, so callers can
turn problems into field violations without parsing exception text.

Sources (see DOMAIN.md): GB 32100-2015 (unified social credit code), GB 11714
(organisation code, embedded in the USCC), GB 11643-1999 (resident id number),
GB/T 2260 (division codes).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

__all__ = [
    "IdentifierProblem",
    "check_division_code",
    "check_resident_id",
    "check_uscc",
    "uscc_check_char",
]

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUES = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"  # index: sum mod 11 -> check char, i.e. (12 - s) mod 11
# Province-level prefixes of GB/T 2260 (including Taiwan, Hong Kong and Macao).
_PROVINCE_PREFIXES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)
_DIGITS6 = re.compile(r"[0-9]{6}")
_RESIDENT_ID = re.compile(r"[0-9]{17}[0-9X]")


@dataclass(frozen=True, slots=True)
class IdentifierProblem:
    """Why an identifier was refused: a stable rule name and a readable message."""

    rule: str
    message: str


def check_division_code(code: str) -> IdentifierProblem | None:
    """A GB/T 2260 code: six digits under a known province prefix.

    Historical codes (500224 铜梁县, 510922 射洪县) are accepted: identifiers
    minted under an old code keep it for life.
    """
    if not _DIGITS6.fullmatch(code):
        return IdentifierProblem("division.format", "must be 6 digits")
    if code[:2] not in _PROVINCE_PREFIXES:
        return IdentifierProblem("division.province", f"unknown province prefix {code[:2]}")
    return None


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a USCC."""
    total = sum(_USCC_VALUES[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def _org_code_check_char(body: str) -> str:
    # GB 11714: digits are worth themselves, letters A=10 … Z=35.
    total = sum(int(c, 36) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def check_uscc(code: str) -> IdentifierProblem | None:
    """A unified social credit code (GB 32100 with the GB 11714 organisation code)."""
    if len(code) != 18:
        return IdentifierProblem("uscc.length", f"must be 18 characters, got {len(code)}")
    bad = sorted({c for c in code if c not in _USCC_VALUES})
    if bad:
        return IdentifierProblem(
            "uscc.alphabet",
            f"characters {''.join(bad)!r} are outside the GB 32100 alphabet (no I, O, S, V, Z)",
        )
    division = code[2:8]
    if not _DIGITS6.fullmatch(division):
        return IdentifierProblem("uscc.division", "positions 3-8 must be a 6-digit division code")
    org_body, org_check = code[8:16], code[16]
    expected_org = _org_code_check_char(org_body)
    if org_check != expected_org:
        return IdentifierProblem(
            "uscc.org_code_check",
            f"GB 11714 organisation-code check character is {org_check!r}, "
            f"expected {expected_org!r}",
        )
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        return IdentifierProblem(
            "uscc.check_char",
            f"GB 32100 check character is {code[17]!r}, expected {expected!r}",
        )
    return None


def check_resident_id(number: str, *, today: dt.date | None = None) -> IdentifierProblem | None:
    """A GB 11643 resident id number: 17 digits, a check character, a real birth date.

    Messages never repeat the number: it is personal information.
    """
    if len(number) != 18:
        return IdentifierProblem("resident_id.length", f"must be 18 characters, got {len(number)}")
    # Not str.isdigit(): it accepts fullwidth and superscript digits.
    if not _RESIDENT_ID.fullmatch(number):
        return IdentifierProblem("resident_id.format", "must be 17 digits followed by a digit or X")
    try:
        born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return IdentifierProblem("resident_id.birth_date", "positions 7-14 are not a valid date")
    if born > (today or dt.date.today()) or born.year < 1800:
        return IdentifierProblem("resident_id.birth_date", "birth date is out of range")
    total = sum(int(c) * w for c, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    if number[17] != _ID_CHECK[total % 11]:
        return IdentifierProblem("resident_id.check_char", "GB 11643 check character is wrong")
    return None
