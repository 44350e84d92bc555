"""Amounts as traders and strategies give them — contracts and percentages — checked before any trade."""

from __future__ import annotations

import re
from decimal import Decimal

from bot.options.errors import TradeError, shown

# A sanity bound against typos and overflow, far above any real order; risk limits are set elsewhere.
MAX_CONTRACTS = 10_000
_HUNDRED = Decimal(100)
# Plain ASCII decimal text only: no NaN/Infinity words, no underscores, no digits from other scripts.
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?", re.ASCII)


def _number(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise TradeError(f"{shown(value)} is not {what}.")
    if isinstance(value, int):
        # Compared as an int: a huge one must not reach Decimal or str().
        return Decimal(min(max(value, -1), MAX_CONTRACTS + 1))
    if isinstance(value, str):
        if not _NUMBER.fullmatch(value.strip()):
            raise TradeError(f"{shown(value)} is not {what}.")
        return Decimal(value.strip())
    number = Decimal(value)
    if not number.is_finite():
        raise TradeError(f"{shown(value)} is not {what}.")
    return number


def whole_contracts(value: object) -> int:
    """A positive whole number of contracts, from a number or its text; anything else is refused."""
    number = _number(value, "a number of contracts")
    if number != number.to_integral_value() or number <= 0:
        raise TradeError(f"{shown(value)} is not a positive whole number of contracts.")
    if number > MAX_CONTRACTS:
        raise TradeError(f"{shown(value)} contracts is more than one order may hold ({MAX_CONTRACTS:,} at most).")
    return int(number)


def trim_percent(value: object) -> Decimal:
    """A percentage of the open quantity, above 0 and at most 100."""
    percent = _number(value, "a percentage")
    if not 0 < percent <= _HUNDRED:
        raise TradeError(f"A trim percentage must be above 0 and at most 100, not {shown(value)}.")
    return percent


_CENT = Decimal("0.01")
MAX_PRICE = Decimal(100_000)  # per share: far above any option's premium


def limit_price(value: object) -> Decimal:
    """A limit price as a trader types it: above 0, in dollars and cents (at most 2 decimals); anything else is
    refused."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        value = str(value)  # as typed: a float's binary digits are no one's price
    text = str(value).strip() if isinstance(value, str | Decimal) else ""
    price = Decimal(text) if _NUMBER.fullmatch(text) else None
    # The range first: quantizing a huge exponent would raise instead of answering.
    if price is None or not 0 < price <= MAX_PRICE or price != price.quantize(_CENT):
        raise TradeError(f"{shown(value)} is not a price (a positive amount in dollars and cents, such as 1.25).")
    return price.quantize(_CENT)
