"""Plain-text renderings for the terminal: money, position rows, ledger summaries, the daily report and the demo
day's summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.analytics.tally import DayReport, PeriodReport, Tally
    from bot.options.ledger_verify import LedgerReport
    from bot.options.positions import Position
    from bot.options.trade_ledger import TradeEvent

CENT = Decimal("0.01")


def money(amount: Decimal) -> str:
    """A gain or loss, signed: +1,234.50 or -80.00."""
    return f"{amount.quantize(CENT):+,.2f}"


def money_or_dash(amount: Decimal | None) -> str:
    """A gain or loss that may not exist (no win yet, say): signed, or a dash."""
    return "-" if amount is None else money(amount)


def cost(amount: Decimal) -> str:
    """An amount paid, such as fees, unsigned: 1,234.50."""
    return f"{amount.quantize(CENT):,.2f}"


def ledger_summary(report: LedgerReport, torn_tail: int = 0) -> str:
    closed = len(report.positions) - len(report.open_positions)
    lines = [
        f"events: {report.events}   positions: {len(report.positions)} "
        f"({len(report.open_positions)} open, {closed} closed)",
        f"realized P&L: {money(report.realized_pnl)}",
    ]
    if report.first_ts and report.last_ts:
        lines.append(f"from {report.first_ts:%Y-%m-%d %H:%M:%S} to {report.last_ts:%Y-%m-%d %H:%M:%S} UTC")
    if torn_tail:
        lines.append(f"warning: a torn last line ({torn_tail} bytes) will be cut away at the next start")
    if report.ok:
        lines.append("ledger OK: every invariant holds")
    else:
        lines.append(f"ledger has {len(report.problems)} problem(s):")
        shown = report.problems[:15]
        lines += [f"  {problem}" for problem in shown]
        if len(report.problems) > len(shown):
            lines.append(f"  ... and {len(report.problems) - len(shown)} more")
    return "\n".join(lines)


def position_row(position: Position) -> str:
    return (
        f"{position.position_id}  {position.contract.label:<22} {position.strategy:<14} "
        f"qty {position.qty:>4}  avg {position.avg_entry.quantize(Decimal('0.0001'))}  "
        f"realized {money(position.realized_pnl)}"
    )


def _rate(tally: Tally) -> str:
    return "-" if tally.win_rate is None else f"{tally.win_rate:.0%}"


def _row(label: str, t: Tally, opened: str, drawdown: str) -> str:
    return (
        f"{label:<12} {t.trades:>7} {opened:>6} {t.positions_closed:>6} {f'{t.wins}/{t.losses}':>9} "
        f"{_rate(t):>5} {money(t.realized_pnl):>14} {cost(t.fees):>11} {drawdown:>11}"
    )


def _group_rows(title: str, groups: dict[str, Tally]) -> list[str]:
    return [f"by {title}:"] + [
        f"  {name:<14} {t.trades:>7} trades  {money(t.realized_pnl):>14}  fees {cost(t.fees):>10}  "
        f"win rate {_rate(t)} ({t.wins}/{t.losses})"
        for name, t in groups.items()
    ]


def daily_table(period: PeriodReport) -> str:
    """A readable table: one row per day, a total for a range, then the range by strategy and underlying."""
    days: list[DayReport] = period.days
    if not days:
        return f"no trades from {period.first} to {period.last}"
    lines = [
        f"{'date':<12} {'trades':>7} {'opened':>6} {'closed':>6} {'won/lost':>9} {'win%':>5} "
        f"{'realized P&L':>14} {'fees':>11} {'max DD':>11}"
    ]
    lines += [_row(str(d.day), d.totals, str(d.positions_opened), money(-d.max_drawdown)) for d in days]
    if len(days) > 1:
        lines.append(_row("total", period.totals, str(period.positions_opened), money(-period.max_drawdown)))
    totals = period.totals
    lines.append(
        f"profit factor {'-' if totals.profit_factor is None else f'{totals.profit_factor:.2f}'}   "
        f"largest win {money_or_dash(totals.largest_win)}   largest loss {money_or_dash(totals.largest_loss)}"
    )
    if period.by_strategy:
        lines += _group_rows("strategy", period.by_strategy) + _group_rows("underlying", period.by_underlying)
    return "\n".join(lines)


def demo_day(day: date, fills: Sequence[TradeEvent], still_open: int, report: PeriodReport) -> str:
    """The demo day's summary: its trades by kind, then the day as `report daily` shows it."""
    kinds = Counter(event.kind.value for event in fills)
    counts = ", ".join(f"{kinds[kind]} {kind}" for kind in ("open", "add", "trim", "close"))
    return f"Day {day}: {len(fills)} trades ({counts}), {still_open} positions still open\n{daily_table(report)}"
