"""Plain-text renderings for the terminal: money, position rows and ledger summaries."""

from __future__ import annotations

from decimal import Decimal

from bot.options.ledger_verify import LedgerReport
from bot.options.positions import Position

CENT = Decimal("0.01")


def money(amount: Decimal) -> str:
    return f"{amount.quantize(CENT):+,.2f}"


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
