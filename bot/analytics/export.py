"""Reports as plain JSON-ready data with stable field names; money as strings at cents (the sums behind them exact)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from bot.analytics.tally import EXACT, DayReport, Tally

RATE = Decimal("0.0001")
CENT = Decimal("0.01")


def _rounded(value: Decimal | None, places: Decimal) -> str | None:
    return None if value is None else str(value.quantize(places))


def money_json(value: Decimal | None) -> str | None:
    """Money at cents, rounded half up: a P&L from the unrounded average entry (`406.9000000000000000000000003`)
    shows as the 406.90 it is. The sums are made exactly; only what is shown is rounded."""
    if value is None:
        return None
    with localcontext(EXACT):
        return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def tally_json(tally: Tally) -> dict[str, Any]:
    return {
        "realized_pnl": money_json(tally.realized_pnl),
        "fees": money_json(tally.fees),
        "trades": tally.trades,
        "positions_closed": tally.positions_closed,
        "wins": tally.wins,
        "losses": tally.losses,
        "win_rate": _rounded(tally.win_rate, RATE),
        "avg_win": _rounded(tally.avg_win, CENT),
        "avg_loss": _rounded(tally.avg_loss, CENT),
        "profit_factor": _rounded(tally.profit_factor, CENT),
        "largest_win": money_json(tally.largest_win),
        "largest_loss": money_json(tally.largest_loss),
    }


def day_json(report: DayReport) -> dict[str, Any]:
    return {
        "date": report.day.isoformat(),
        **tally_json(report.totals),
        "positions_opened": report.positions_opened,
        "max_drawdown": money_json(report.max_drawdown),
        "by_strategy": {name: tally_json(t) for name, t in report.by_strategy.items()},
        "by_underlying": {name: tally_json(t) for name, t in report.by_underlying.items()},
    }
