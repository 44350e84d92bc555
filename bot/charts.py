"""Chart images for Discord: the equity curve of realized P&L, and a position's marks with its fills.

Pure rendering (data in, PNG bytes out) on matplotlib's object-oriented API with the Agg canvas: no pyplot,
no display, no global backend switch, and nothing kept between calls, so a chart can be drawn in a worker
thread while the bot trades. Times are shown in America/New_York. Each chart has a `*_figure` function that
builds the Figure (tests inspect its artists) and a `*_png` function that renders it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.options.market_hours import MARKET_TZ

SIZE_INCHES = (8.0, 3.6)
DPI = 100  # 800 x 360 pixels: as wide as a Discord embed's image shows at full size

Point = tuple[datetime, Decimal]
SINGLE_POINT_SPAN = 1 / 24  # an hour (in matplotlib's days) either side of a lone point, not days

UP, DOWN, NEUTRAL = "#2e7d32", "#c62828", "#1f4e9c"


def _figure() -> tuple[Figure, Axes]:
    # Fixed margins: a constrained layout would cost more than the drawing itself.
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI)
    figure.subplots_adjust(left=0.09, right=0.9, top=0.9, bottom=0.14)
    FigureCanvasAgg(figure)  # the figure draws on Agg whatever backend anyone else selected
    axes = figure.add_subplot()
    axes.grid(True, color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def _time_axis(axes: Axes) -> None:
    """The x axis holds times as matplotlib date numbers (days since 1970, UTC); ticks show New York time,
    as concise as the span allows (hours within a day, dates across days)."""
    locator = mdates.AutoDateLocator(tz=MARKET_TZ, minticks=3, maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=MARKET_TZ))


def _empty(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center", color="#777777")
    axes.set_xticks([])


def render_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def equity_curve_figure(points: Sequence[Point], title: str) -> Figure:
    """Cumulative realized P&L as a step line over time, with the zero line.

    `points` are (time, cumulative realized P&L up to and including that time), in time order: one per
    fill (or per closed position), as the analytics pipeline sums them. No points gives an empty chart
    saying so; one point shows as a single step from zero.
    """
    figure, axes = _figure()
    axes.set_title(title, loc="left", fontsize=11)
    axes.set_ylabel("realized P&L ($)")
    axes.axhline(0, color="#888888", linewidth=0.9)
    if not points:
        _empty(axes, "no realized P&L yet")
        return figure
    times = mdates.date2num([ts for ts, _ in points])
    values = [float(value) for _, value in points]
    # The curve starts flat at zero until the first fill, then holds each value until the next.
    axes.step([times[0], *times], [0.0, *values], where="post", color=NEUTRAL, linewidth=1.6, label="realized P&L")
    last = values[-1]
    axes.plot([times[-1]], [last], "o", color=UP if last >= 0 else DOWN, markersize=5)
    axes.annotate(
        f"{last:+,.2f}", (times[-1], last), textcoords="offset points", xytext=(6, 0), va="center", fontsize=9
    )
    if times[0] == times[-1]:
        axes.set_xlim(times[0] - SINGLE_POINT_SPAN, times[0] + SINGLE_POINT_SPAN)
    _time_axis(axes)
    return figure


def equity_curve_png(points: Sequence[Point], title: str) -> bytes:
    """The equity curve as a PNG image (see `equity_curve_figure`)."""
    return render_png(equity_curve_figure(points, title))
