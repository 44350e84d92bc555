"""What a group of fills adds up to: realized P&L, fees, trades, and the positions it closed, won or lost.

A day's report holds one tally for the whole desk and one per strategy and per underlying; a range merges
its days. Money stays exact (Decimal); ratios and averages are rounded only where they are shown.
"""

from __future__ import annotations

from datetime import date
from decimal import Context, Decimal, localcontext
from typing import NamedTuple

ZERO = Decimal(0)
# Sums are exact: at the default 28 digits, adding the ledger's unrounded P&L values (28 digits each)
# would round, and differently in another order (a file read in parts). 100 digits never round them.
EXACT = Context(prec=100)


# The records here are plain classes with slots and NamedTuples, not dataclasses: `report daily` imports this module,
# and a dataclass takes Python 3.11 ~1.5 ms to make.
class _Slotted:
    """Equal to another of its class with the same values, and shown with them, as a dataclass is."""

    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Slotted) or type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(self.__slots__, self._values(), strict=True))
        return f"{type(self).__name__}({shown})"


class Tally(_Slotted):
    __slots__ = (
        "fees",
        "gross_loss",
        "gross_profit",
        "largest_loss",
        "largest_win",
        "losses",
        "positions_closed",
        "realized_pnl",
        "trades",
        "wins",
    )

    def __init__(
        self,
        realized_pnl: Decimal = ZERO,
        fees: Decimal = ZERO,
        trades: int = 0,
        positions_closed: int = 0,
        wins: int = 0,
        losses: int = 0,
        gross_profit: Decimal = ZERO,
        gross_loss: Decimal = ZERO,
        largest_win: Decimal | None = None,
        largest_loss: Decimal | None = None,
    ) -> None:
        self.realized_pnl = realized_pnl  # of the fills counted (a buy realizes -fees)
        self.fees = fees
        self.trades = trades  # fills, a partial fill being one
        self.positions_closed = positions_closed
        # Positions closed, judged on their whole realized P&L (all their fills, whatever the day). A position
        # closed at exactly 0 is neither a win nor a loss, but counts in the win rate's denominator.
        self.wins = wins
        self.losses = losses
        self.gross_profit = gross_profit  # the winners' P&L added up
        self.gross_loss = gross_loss  # the losers' P&L added up (negative)
        self.largest_win = largest_win
        self.largest_loss = largest_loss

    def closed(self, total: Decimal) -> None:
        """A position closed with `total` realized over its life (call within `EXACT`)."""
        self.positions_closed += 1
        if total > 0:
            self.wins += 1
            self.gross_profit += total
            if self.largest_win is None or total > self.largest_win:
                self.largest_win = total
        elif total < 0:
            self.losses += 1
            self.gross_loss += total
            if self.largest_loss is None or total < self.largest_loss:
                self.largest_loss = total

    def merge(self, other: Tally) -> None:
        with localcontext(EXACT):
            self._merge(other)

    def _merge(self, other: Tally) -> None:
        self.realized_pnl += other.realized_pnl
        self.fees += other.fees
        self.trades += other.trades
        self.positions_closed += other.positions_closed
        self.wins += other.wins
        self.losses += other.losses
        self.gross_profit += other.gross_profit
        self.gross_loss += other.gross_loss
        if other.largest_win is not None and (self.largest_win is None or other.largest_win > self.largest_win):
            self.largest_win = other.largest_win
        if other.largest_loss is not None and (self.largest_loss is None or other.largest_loss < self.largest_loss):
            self.largest_loss = other.largest_loss

    @property
    def win_rate(self) -> Decimal | None:
        """Wins over positions closed (0 to 1), or None when nothing closed."""
        return Decimal(self.wins) / self.positions_closed if self.positions_closed else None

    @property
    def avg_win(self) -> Decimal | None:
        return self.gross_profit / self.wins if self.wins else None

    @property
    def avg_loss(self) -> Decimal | None:
        return self.gross_loss / self.losses if self.losses else None

    @property
    def profit_factor(self) -> Decimal | None:
        """Gross profit over gross loss; None when nothing was lost (it would be infinite, or 0/0)."""
        return self.gross_profit / -self.gross_loss if self.losses else None


def merged(tallies: list[Tally]) -> Tally:
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return total


def merged_by(groups: list[dict[str, Tally]]) -> dict[str, Tally]:
    """Per-name tallies of several days added up, sorted by name."""
    out: dict[str, Tally] = {}
    for group in groups:
        for name, tally in group.items():
            out.setdefault(name, Tally()).merge(tally)
    return dict(sorted(out.items()))


class DayReport(_Slotted):
    """One day (in the configured time zone) of the desk's fills."""

    __slots__ = ("by_strategy", "by_underlying", "day", "max_drawdown", "positions_opened", "totals")

    def __init__(
        self,
        day: date,
        totals: Tally | None = None,
        positions_opened: int = 0,
        max_drawdown: Decimal = ZERO,
        by_strategy: dict[str, Tally] | None = None,
        by_underlying: dict[str, Tally] | None = None,
    ) -> None:
        self.day = day
        self.totals = Tally() if totals is None else totals
        self.positions_opened = positions_opened
        # The deepest fall of the day's running realized P&L (from 0 at the day's start) below its high so far.
        self.max_drawdown = max_drawdown
        self.by_strategy = {} if by_strategy is None else by_strategy
        self.by_underlying = {} if by_underlying is None else by_underlying


class PeriodReport(NamedTuple):
    """A range of days added up (for /pnl and the end-of-day summary)."""

    first: date
    last: date
    days: list[DayReport]

    @property
    def totals(self) -> Tally:
        return merged([d.totals for d in self.days])

    @property
    def positions_opened(self) -> int:
        return sum(d.positions_opened for d in self.days)

    @property
    def max_drawdown(self) -> Decimal:
        """The deepest intraday drawdown of any of its days."""
        return max((d.max_drawdown for d in self.days), default=ZERO)

    @property
    def by_strategy(self) -> dict[str, Tally]:
        return merged_by([d.by_strategy for d in self.days])

    @property
    def by_underlying(self) -> dict[str, Tally]:
        return merged_by([d.by_underlying for d in self.days])
