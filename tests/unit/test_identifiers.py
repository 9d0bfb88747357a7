"""Check digits and formats: USCC (GB 32100 + GB 11714), resident id (GB 11643), GB/T 2260."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.identifiers import (
    check_division_code,
    check_resident_id,
    check_uscc,
    uscc_check_char,
)

# Reference implementations written from DOMAIN.md, independent of the code under test.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]
ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def ref_org_check(body: str) -> str:
    total = sum(int(c, 36) * w for c, w in zip(body, ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def ref_uscc_check(first17: str) -> str:
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def make_uscc(head: str, division: str, org_body: str) -> str:
    """A valid USCC from its authority/type code, division and 8-char organisation body."""
    first17 = head + division + org_body + ref_org_check(org_body)
    return first17 + ref_uscc_check(first17)


def make_resident_id(area: str, born: str, serial: str) -> str:
    body = area + born + serial
    total = sum(int(c) * w for c, w in zip(body, ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def replace_at(value: str, index: int, char: str) -> str:
    return value[:index] + char + value[index + 1 :]


def test_reference_weights_match_domain_table() -> None:
    assert USCC_WEIGHTS == [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


# --------------------------------------------------------------------------- USCC

VALID_USCC = [
    "91500151MA60K3C286",  # enterprise, Tongliang
    "92510903MA6AB7Q52D",  # individual business, Chuanshan
    "93510981MA6XN3P00H",  # farmers' co-operative, Shehong
    make_uscc("Y1", "500151", "MA60K3C2"),  # letters in positions 1-2
    make_uscc("N2", "510900", "MA6AB7Q5"),
    make_uscc("A1", "510903", "MA6XN3P0"),
    make_uscc("91", "500224", "MA60K3C2"),  # historical division: 铜梁县 until 2014
    make_uscc("92", "510922", "MA6AB7Q5"),  # historical division: 射洪县 until 2019
    make_uscc("51", "999999", "00000000"),  # positions 3-8 need only be six digits
]


@pytest.mark.parametrize("code", VALID_USCC)
def test_valid_uscc_passes(code: str) -> None:
    assert check_uscc(code) is None


@pytest.mark.parametrize("code", VALID_USCC)
def test_uscc_check_char_matches_reference(code: str) -> None:
    assert uscc_check_char(code[:17]) == ref_uscc_check(code[:17]) == code[17]


def test_leading_letters_are_constructed_as_intended() -> None:
    code = make_uscc("Y1", "500151", "MA60K3C2")
    assert code.startswith("Y1500151MA60K3C2")
    assert len(code) == 18


GOOD = "91500151MA60K3C286"


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("", "uscc.length"),
        (GOOD[:17], "uscc.length"),
        (GOOD + "6", "uscc.length"),
        (GOOD.lower(), "uscc.alphabet"),
        *[(replace_at(GOOD, 9, c), "uscc.alphabet") for c in "IOSVZ"],
        (replace_at(GOOD, 0, "I"), "uscc.alphabet"),
        (replace_at(GOOD, 17, "Z"), "uscc.alphabet"),
        (replace_at(GOOD, 3, "９"), "uscc.alphabet"),  # fullwidth nine
        (replace_at(GOOD, 12, "-"), "uscc.alphabet"),
        (replace_at(GOOD, 2, "A"), "uscc.division"),
        (replace_at(GOOD, 7, "Y"), "uscc.division"),
        (replace_at(GOOD, 16, "9"), "uscc.org_code_check"),
        (replace_at(GOOD, 8, "N"), "uscc.org_code_check"),
        (replace_at(GOOD, 17, "7"), "uscc.check_char"),
        (replace_at(GOOD, 0, "5"), "uscc.check_char"),
        (replace_at(GOOD, 4, "2"), "uscc.check_char"),
        # DOMAIN.md: a real code in circulation that fails the check; refused by default.
        ("91350203M0001QAY9B", "uscc.check_char"),
    ],
)
def test_uscc_failures_name_their_rule(code: str, rule: str) -> None:
    problem = check_uscc(code)
    assert problem is not None
    assert problem.rule == rule
    assert problem.message


def test_uscc_alphabet_message_names_the_forbidden_characters() -> None:
    problem = check_uscc(replace_at(replace_at(GOOD, 9, "O"), 10, "I"))
    assert problem is not None
    assert "IO" in problem.message


def test_uscc_check_char_message_names_expected_char() -> None:
    problem = check_uscc(replace_at(GOOD, 17, "7"))
    assert problem is not None
    assert "'6'" in problem.message


_org_body = st.text(alphabet=ALPHABET, min_size=8, max_size=8)
_head = st.text(alphabet=ALPHABET, min_size=2, max_size=2)
_division = st.text(alphabet="0123456789", min_size=6, max_size=6)


@settings(max_examples=200, database=None, deadline=None)
@given(head=_head, division=_division, org_body=_org_body, data=st.data())
def test_property_computed_check_chars_pass_and_a_changed_last_char_fails(
    head: str, division: str, org_body: str, data: st.DataObject
) -> None:
    code = make_uscc(head, division, org_body)
    assert check_uscc(code) is None
    assert uscc_check_char(code[:17]) == code[17]
    other = data.draw(st.sampled_from([c for c in ALPHABET if c != code[17]]), label="last")
    problem = check_uscc(code[:17] + other)
    assert problem is not None
    assert problem.rule == "uscc.check_char"


# --------------------------------------------------------------------------- resident id

TODAY = dt.date(2024, 6, 1)
GOOD_ID = "11010519491231002X"


@pytest.mark.parametrize(
    "number",
    [
        GOOD_ID,  # the example of the standard
        make_resident_id("500224", "19900101", "001"),  # 铜梁县, before 500151 existed
        make_resident_id("510228", "19900315", "123"),  # the pre-1997 Sichuan code
        make_resident_id("510922", "20000229", "456"),  # leap day, old 射洪县
        make_resident_id("510981", "20240601", "010"),  # born today
    ],
)
def test_valid_resident_id_passes(number: str) -> None:
    assert check_resident_id(number, today=TODAY) is None


@pytest.mark.parametrize(
    ("number", "rule"),
    [
        ("", "resident_id.length"),
        (GOOD_ID[:17], "resident_id.length"),
        (GOOD_ID + "0", "resident_id.length"),
        ("11010519491231002x", "resident_id.format"),  # the standard's X is upper case
        ("11010519491231002A", "resident_id.format"),
        ("1101051949123100XX", "resident_id.format"),
        ("11010519491231 02X", "resident_id.format"),
        (make_resident_id("110105", "19490230", "002"), "resident_id.birth_date"),  # 30 Feb
        (make_resident_id("110105", "19491301", "002"), "resident_id.birth_date"),  # month 13
        (make_resident_id("110105", "19000229", "002"), "resident_id.birth_date"),  # no leap
        (make_resident_id("110105", "20240602", "002"), "resident_id.birth_date"),  # tomorrow
        (make_resident_id("110105", "17991231", "002"), "resident_id.birth_date"),
        (replace_at(GOOD_ID, 17, "1"), "resident_id.check_char"),
        (replace_at(GOOD_ID, 16, "3"), "resident_id.check_char"),
        (replace_at(GOOD_ID, 0, "2"), "resident_id.check_char"),
    ],
)
def test_resident_id_failures_name_their_rule(number: str, rule: str) -> None:
    problem = check_resident_id(number, today=TODAY)
    assert problem is not None
    assert problem.rule == rule


@pytest.mark.parametrize(
    "number",
    [
        replace_at(GOOD_ID, 17, "1"),
        make_resident_id("110105", "19490230", "002"),
        make_resident_id("110105", "20990101", "002"),
        GOOD_ID[:17] + "Y",
    ],
)
def test_resident_id_messages_never_repeat_the_number(number: str) -> None:
    problem = check_resident_id(number, today=TODAY)
    assert problem is not None
    assert number not in problem.message
    assert number[6:14] not in problem.message  # nor the birth date


def test_resident_id_with_fullwidth_digits_is_refused() -> None:
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in GOOD_ID[:17]) + "X"
    problem = check_resident_id(fullwidth, today=TODAY)
    assert problem is not None
    assert problem.rule == "resident_id.format"


def test_resident_id_with_superscript_digit_is_a_problem_not_a_crash() -> None:
    problem = check_resident_id("²" + GOOD_ID[1:], today=TODAY)
    assert problem is not None
    assert problem.rule == "resident_id.format"


# --------------------------------------------------------------------------- division codes


@pytest.mark.parametrize(
    "code",
    [
        "500000",
        "500151",
        "500224",  # 铜梁县 1997-2014: historical codes stay valid
        "510000",
        "510100",
        "510900",
        "510903",
        "510904",
        "510921",
        "510922",  # 射洪县 before 2019
        "510923",
        "510981",
        "110105",
        "710000",
        "810000",
        "820000",
    ],
)
def test_division_code_accepted(code: str) -> None:
    assert check_division_code(code) is None


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("", "division.format"),
        ("50015", "division.format"),
        ("5001510", "division.format"),
        ("50015a", "division.format"),
        (" 500151", "division.format"),
        ("500151\n", "division.format"),
        ("５００１５１", "division.format"),  # fullwidth digits
        ("000000", "division.province"),
        ("990000", "division.province"),
        ("100000", "division.province"),
        ("600151", "division.province"),
    ],
)
def test_division_code_failures_name_their_rule(code: str, rule: str) -> None:
    problem = check_division_code(code)
    assert problem is not None
    assert problem.rule == rule
