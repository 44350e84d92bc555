"""Reports as plain JSON-ready data with stable field names; Decimals as strings, exact for sums."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot.analytics.tally import DayReport, Tally

RATE = Decimal("0.0001")
CENT = Decimal("0.01")


def _rounded(value: Decimal | None, places: Decimal) -> str | None:
    return None if value is None else str(value.quantize(places))


def _exact(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def tally_json(tally: Tally) -> dict[str, Any]:
    return {
        "realized_pnl": str(tally.realized_pnl),
        "fees": str(tally.fees),
        "trades": tally.trades,
        "positions_closed": tally.positions_closed,
        "wins": tally.wins,
        "losses": tally.losses,
        "win_rate": _rounded(tally.win_rate, RATE),
        "avg_win": _rounded(tally.avg_win, CENT),
        "avg_loss": _rounded(tally.avg_loss, CENT),
        "profit_factor": _rounded(tally.profit_factor, CENT),
        "largest_win": _exact(tally.largest_win),
        "largest_loss": _exact(tally.largest_loss),
    }


def day_json(report: DayReport) -> dict[str, Any]:
    return {
        "date": report.day.isoformat(),
        **tally_json(report.totals),
        "positions_opened": report.positions_opened,
        "max_drawdown": str(report.max_drawdown),
        "by_strategy": {name: tally_json(t) for name, t in report.by_strategy.items()},
        "by_underlying": {name: tally_json(t) for name, t in report.by_underlying.items()},
    }
