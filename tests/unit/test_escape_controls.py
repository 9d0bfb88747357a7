"""The one escaper behind the node's log and every command's terminal output."""

from __future__ import annotations

import pytest

from gateway.privacy import escape_controls

# Each character a terminal acts on or hides, and how it must show instead.
HOSTILE = {
    "\x00": r"\x00",
    "\x07": r"\x07",  # BEL
    "\t": r"\t",
    "\n": r"\n",
    "\r": r"\r",
    "\x1b": r"\x1b",  # ESC: cursor moves, colours, window titles
    "\x7f": r"\x7f",  # DEL
    "\x85": r"\x85",  # NEL, a C1 line break
    "\x9b": r"\x9b",  # CSI, the one-byte ESC [
    "\u200b": r"\u200b",  # zero-width space
    "\u2028": r"\u2028",  # line separator
    **{chr(c): f"\\u{c:04x}" for c in range(0x202A, 0x202F)},  # bidi embeddings, overrides
    **{chr(c): f"\\u{c:04x}" for c in range(0x2066, 0x206A)},  # bidi isolates
    "\ufeff": r"\ufeff",
    "\U000e0041": r"\U000e0041",  # a tag character
}


@pytest.mark.parametrize(("raw", "shown"), sorted(HOSTILE.items()))
def test_each_control_shows_as_its_escape(raw: str, shown: str) -> None:
    assert escape_controls(f"a{raw}b") == f"a{shown}b"


def test_printable_text_is_left_alone_and_escaping_twice_changes_nothing() -> None:
    for text in ("", "91500000MA5U000000", "遂宁市市场监督管理局 川渝通办", r"C:\path\x1b"):
        assert escape_controls(text) == text
    hostile = "".join(HOSTILE)
    once = escape_controls(hostile)
    assert once.isprintable()
    assert escape_controls(once) == once
