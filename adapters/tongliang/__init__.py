"""Tongliang District (500151) local format: a JSON array of records with Chinese keys.

The format is fixed by the bureau's local systems; the specification is
``formats/tongliang.md``. UTF-8 with an optional BOM; money is a decimal string
in yuan (a JSON number is refused: it may have passed through a float); dates
``YYYY-MM-DD``; times ``YYYY-MM-DD HH:MM:SS`` in Beijing time; codes are words.
"""

from __future__ import annotations

from adapters.tongliang.adapter import TongliangAdapter

__all__ = ["TongliangAdapter"]
