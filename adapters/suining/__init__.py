"""Suining City (510900) local format: one GB18030 XML message with a counted batch header.

The format is fixed by the bureau's local systems; the specification is
``formats/suining.md``. Root ``SJBW`` holds the header ``BWT`` (batch id, sender
division, sent-at, record count ``JLS``) and the body ``BWTI``. Tags are pinyin
initials, codes are numeric, registered capital is in 万元 with six decimals,
dates ``YYYYMMDD`` and times ``YYYYMMDDHHMMSS`` in Beijing time.

Reading is deliberately defensive: the bytes are decoded as GB18030 by Python
(libxml2's iconv tables and expat disagree on parts of GB18030), any DOCTYPE is
refused before parsing so no entity can be declared, and lxml runs with
entities, DTDs and the network off.
"""

from __future__ import annotations

from adapters.suining.adapter import SuiningAdapter

__all__ = ["SuiningAdapter"]
