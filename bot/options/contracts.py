"""Option contracts identified by their OCC symbol, e.g. `SPY   261127C00450000`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from bot.options.errors import TradeError

# Root (1-6 chars, padded to 6 with spaces in the standard form), yymmdd, C/P, strike x1000 in 8 digits.
_OCC = re.compile(r"^(?P<root>[A-Z][A-Z0-9.]{0,5}) *(?P<expiry>\d{6})(?P<right>[CP])(?P<strike>\d{8})$")
_STRIKE_SCALE = Decimal(1000)


class Right(StrEnum):
    CALL = "C"
    PUT = "P"


@dataclass(frozen=True, slots=True)
class OptionContract:
    underlying: str
    expiry: date
    right: Right
    strike: Decimal
    multiplier: int = 100
    # The standard OCC symbol (root padded to 6 characters), worked out once: it keys quotes and lookups.
    symbol: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbol", f"{self.underlying:<6}{self.compact[len(self.underlying) :]}")

    @classmethod
    def parse(cls, symbol: str, multiplier: int = 100) -> OptionContract:
        """Parse the padded OCC form or the compact one (`SPY261127C00450000`)."""
        text = symbol.strip().upper() if isinstance(symbol, str) else ""
        match = _OCC.match(text)
        if match is None or len(text) > 21:
            raise TradeError(f"{symbol!r} is not an OCC option symbol (expected e.g. 'SPY   261127C00450000').")
        raw = match["expiry"]
        try:
            expiry = date(2000 + int(raw[:2]), int(raw[2:4]), int(raw[4:]))
        except ValueError:
            raise TradeError(f"{symbol!r} has no valid expiry date ({raw} is not a yymmdd date).") from None
        strike = Decimal(match["strike"]) / _STRIKE_SCALE
        if strike <= 0:
            raise TradeError(f"{symbol!r} has a zero strike.")
        return cls(match["root"], expiry, Right(match["right"]), strike, multiplier)

    @property
    def compact(self) -> str:
        """The OCC symbol without padding, as brokers such as Alpaca write it."""
        strike = int(self.strike * _STRIKE_SCALE)
        expiry = self.expiry  # formatted by hand: strftime is slow, and every contract builds its symbol
        return (
            f"{self.underlying}{expiry.year % 100:02d}{expiry.month:02d}{expiry.day:02d}{self.right.value}{strike:08d}"
        )

    def __str__(self) -> str:
        return self.symbol

    @property
    def label(self) -> str:
        """A trader's short name: `SPY 2026-11-27 450C`."""
        return f"{self.underlying} {self.expiry.isoformat()} {self.strike.normalize():f}{self.right.value}"
