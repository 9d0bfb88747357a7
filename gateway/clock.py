"""Time, once: Beijing time for people, UTC for storage and the wire, protobuf timestamps.

Every module that shows a time to an operator, reads one from an operator, or turns
a ``datetime`` into a ``google.protobuf.Timestamp`` and back uses these. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp

__all__ = [
    "BEIJING",
    "beijing",
    "beijing_date",
    "from_timestamp",
    "iso_utc",
    "to_timestamp",
    "utc_now",
]

# China Standard Time: UTC+8 the whole year, no daylight saving since 1991.
BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def beijing(value: dt.datetime, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """``value`` (aware) as Beijing wall-clock text."""
    return value.astimezone(BEIJING).strftime(fmt)


def beijing_date(value: dt.datetime) -> dt.date:
    """The calendar day in Beijing of an aware ``value``."""
    return value.astimezone(BEIJING).date()


def iso_utc(value: dt.datetime) -> str:
    """Storage form: ISO 8601 in UTC with microseconds, so text order is time order."""
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def to_timestamp(value: dt.datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(dt.UTC))
    return ts


def from_timestamp(ts: Timestamp) -> dt.datetime:
    """An aware UTC datetime; raises ``ValueError``/``OverflowError`` out of datetime's range
    (callers at a trust boundary translate that into their own error, naming the field)."""
    return ts.ToDatetime(tzinfo=dt.UTC)
