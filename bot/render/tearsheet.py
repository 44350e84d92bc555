"""The backtest's tear sheet as a person reads it: the text table and the equity curve with its drawdowns shaded
(the figures themselves are made in bot.analytics.tearsheet)."""

from __future__ import annotations

from bot.analytics.tally import Tally
from bot.analytics.tearsheet import TearSheet
from bot.render.charts import DOWN, equity_curve_figure, render_png
from bot.render.text import daily_table, money, money_or_dash


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _rate(tally: Tally) -> str:
    return "-" if tally.win_rate is None else f"{tally.win_rate:.0%}"


def render_tear_sheet(sheet: TearSheet) -> str:
    """The daily table, then one row per strategy and one for the desk; money at cents."""
    lines = [
        daily_table(sheet.period),
        "",
        f"{'strategy':<16} {'realized P&L':>13} {'trades':>6} {'win%':>5} {'PF':>6} {'avg win':>10} {'avg loss':>10} "
        f"{'best':>10} {'worst':>10} {'max DD':>10} {'Sharpe':>7} {'Sortino':>7} {'exposure':>8}",
    ]
    for row in sheet.rows:
        t = row.tally
        lines.append(
            f"{row.name:<16} {money(t.realized_pnl):>13} {t.trades:>6} {_rate(t):>5} "
            f"{'-' if t.profit_factor is None else f'{t.profit_factor:.2f}':>6} {money_or_dash(t.avg_win):>10} "
            f"{money_or_dash(t.avg_loss):>10} {money_or_dash(t.largest_win):>10} {money_or_dash(t.largest_loss):>10} "
            f"{money(-row.max_drawdown):>10} {_ratio(row.sharpe):>7} {_ratio(row.sortino):>7} {row.exposure:>8.1%}"
        )
    lines.append("Sharpe and Sortino: daily realized P&L, annualised by sqrt(252), no risk-free rate")
    return "\n".join(lines)


def equity_png(sheet: TearSheet, title: str) -> bytes:
    """The desk's equity curve (cumulative realized P&L, fill by fill) with its drawdowns shaded."""
    figure = equity_curve_figure(sheet.curve, title)
    if sheet.curve:
        from matplotlib import dates as mdates

        axes = figure.axes[0]
        times = mdates.date2num([ts for ts, _ in sheet.curve])
        values = [float(value) for _, value in sheet.curve]
        axes.fill_between(
            times, values, _peaks(values), step="post", color=DOWN, alpha=0.25, linewidth=0, label="drawdown"
        )
        axes.legend(loc="upper left", fontsize=8, framealpha=0.85)
    return render_png(figure)


def _peaks(values: list[float]) -> list[float]:
    peaks, peak = [], 0.0
    for value in values:
        peak = max(peak, value)
        peaks.append(peak)
    return peaks
