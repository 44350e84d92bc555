"""What a group of fills adds up to: realized P&L, fees, trades, and the positions it closed, won or lost.

A day's report holds one tally for the whole desk and one per strategy and per underlying; a range merges
its days. Money stays exact (Decimal); ratios and averages are rounded only where they are shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Context, Decimal, localcontext
from typing import NamedTuple

ZERO = Decimal(0)
# Sums are exact: at the default 28 digits, adding the ledger's unrounded P&L values (28 digits each)
# would round, and differently in another order (a file read in parts). 100 digits never round them.
EXACT = Context(prec=100)


@dataclass(slots=True)
class Tally:
    realized_pnl: Decimal = ZERO  # of the fills counted (a buy realizes -fees)
    fees: Decimal = ZERO
    trades: int = 0  # fills, a partial fill being one
    positions_closed: int = 0
    # Positions closed, judged on their whole realized P&L (all their fills, whatever the day). A position
    # closed at exactly 0 is neither a win nor a loss, but counts in the win rate's denominator.
    wins: int = 0
    losses: int = 0
    gross_profit: Decimal = ZERO  # the winners' P&L added up
    gross_loss: Decimal = ZERO  # the losers' P&L added up (negative)
    largest_win: Decimal | None = None
    largest_loss: Decimal | None = None

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


@dataclass(slots=True)
class DayReport:
    """One day (in the configured time zone) of the desk's fills."""

    day: date
    totals: Tally = field(default_factory=Tally)
    positions_opened: int = 0
    # The deepest fall of the day's running realized P&L (from 0 at the day's start) below its high so far.
    max_drawdown: Decimal = ZERO
    by_strategy: dict[str, Tally] = field(default_factory=dict)
    by_underlying: dict[str, Tally] = field(default_factory=dict)


class PeriodReport(NamedTuple):
    """A range of days added up (for /pnl and the end-of-day summary). (A NamedTuple: `report daily` imports this
    module, and a frozen dataclass takes 0.7 ms to make.)"""

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
