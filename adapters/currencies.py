"""Currencies the shipped formats can name, in one table for both of them.

Tongliang writes the Chinese name, Suining the ISO 4217 numeric code; the
canonical record holds the ISO 4217 alphabetic code. A currency missing here is
refused in both directions rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CURRENCIES", "Currency"]


@dataclass(frozen=True, slots=True)
class Currency:
    alpha: str
    numeric: str
    name_zh: str


CURRENCIES: tuple[Currency, ...] = (
    Currency("CNY", "156", "人民币"),
    Currency("USD", "840", "美元"),
    Currency("EUR", "978", "欧元"),
    Currency("HKD", "344", "港元"),
    Currency("MOP", "446", "澳门元"),
    Currency("TWD", "901", "新台币"),
    Currency("JPY", "392", "日元"),
    Currency("GBP", "826", "英镑"),
    Currency("KRW", "410", "韩元"),
    Currency("SGD", "702", "新加坡元"),
    Currency("AUD", "036", "澳大利亚元"),
    Currency("CAD", "124", "加拿大元"),
    Currency("CHF", "756", "瑞士法郎"),
)
