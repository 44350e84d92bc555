"""Option contracts identified by their OCC symbol, e.g. `SPY   261127C00450000`."""

import re
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple, Self

from bot.options.errors import TradeError

# Root (1-6 chars, padded to 6 with spaces in the standard form), yymmdd, C/P, strike x1000 in 8 digits. ASCII
# only: `\d` would also take other scripts' digits, which int() reads but no broker or exchange writes.
_ROOT = "[A-Z][A-Z0-9.]{0,5}"
_OCC = re.compile(rf"(?P<root>{_ROOT}) *(?P<expiry>[0-9]{{6}})(?P<right>[CP])(?P<strike>[0-9]{{8}})")
_IS_ROOT = re.compile(_ROOT)
_STRIKE_SCALE = Decimal(1000)
_STRIKE_STEP = Decimal("0.001")
_MAX_STRIKE = Decimal("99999.999")


def root_problem(root: object) -> str | None:
    """Why `root` cannot start an OCC symbol, in a few words; None when it can."""
    if isinstance(root, str) and _IS_ROOT.fullmatch(root) is not None:
        return None
    return f"{root!r} cannot be an option's root (1 to 6 capital letters, digits or dots, starting with a letter)"


class Right(StrEnum):
    CALL = "C"
    PUT = "P"


# Records here are NamedTuples, not frozen dataclasses: every read-only command imports this module, and a dataclass
# takes Python 3.11 ~1.5 ms to make. No annotations from __future__ here: typing would compile each field's type given
# as text (~30 us a field).
class _ContractFields(NamedTuple):
    underlying: str
    expiry: date
    right: Right
    strike: Decimal
    multiplier: int
    # The standard OCC symbol (root padded to 6 characters), worked out once: it keys quotes and lookups.
    symbol: str


class OptionContract(_ContractFields):
    __slots__ = ()

    def __new__(cls, underlying: str, expiry: date, right: Right, strike: Decimal, multiplier: int = 100) -> Self:
        # A contract is what its OCC symbol says: one the symbol cannot carry exactly is refused, never rounded.
        problem = root_problem(underlying)
        if problem is not None:
            raise TradeError(f"{problem}.")
        if not (strike.is_finite() and 0 < strike <= _MAX_STRIKE and strike.quantize(_STRIKE_STEP) == strike):
            raise TradeError(
                f"A strike of {strike} cannot be written in an OCC symbol (above 0, below 100000, at most 3 decimals)."
            )
        if not 2000 <= expiry.year <= 2099:
            raise TradeError(f"An expiry on {expiry.isoformat()} cannot be written in an OCC symbol (2000-2099).")
        symbol = f"{underlying:<6}{_compact(underlying, expiry, right, strike)[len(underlying) :]}"
        return tuple.__new__(cls, (underlying, expiry, right, strike, multiplier, symbol))

    def __getnewargs__(self) -> tuple[str, date, Right, Decimal, int]:
        return self[:5]  # a copy or a pickle is made by the constructor, which works the symbol out again

    def _replace(self, **changes: object) -> Self:
        # Through the constructor, as `dataclasses.replace` went: the changed contract is checked, its symbol new.
        return type(self)(**(dict(zip(self._fields, self[:5], strict=False)) | changes))  # type: ignore[arg-type]

    @classmethod
    def parse(cls, symbol: str, multiplier: int = 100) -> "OptionContract":
        """Parse the padded OCC form or the compact one (`SPY261127C00450000`)."""
        text = symbol.strip().upper() if isinstance(symbol, str) and symbol.isascii() else ""
        match = _OCC.fullmatch(text)
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
        return _compact(self.underlying, self.expiry, self.right, self.strike)

    def __str__(self) -> str:
        return self.symbol

    @property
    def label(self) -> str:
        """A trader's short name: `SPY 2026-11-27 450C`."""
        return f"{self.underlying} {self.expiry.isoformat()} {self.strike.normalize():f}{self.right.value}"


def _compact(underlying: str, expiry: date, right: Right, strike: Decimal) -> str:
    # Formatted by hand: strftime is slow, and every contract builds its symbol.
    day = f"{expiry.year % 100:02d}{expiry.month:02d}{expiry.day:02d}"
    return f"{underlying}{day}{right.value}{int(strike * _STRIKE_SCALE):08d}"
