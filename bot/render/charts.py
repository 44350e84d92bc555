"""Chart images for Discord: the equity curve of realized P&L, and a position's marks with its fills.

Pure rendering (data in, PNG bytes out) on matplotlib's object-oriented API with the Agg canvas: no pyplot,
no display, no global backend switch, and nothing kept between calls, so a chart can be drawn in a worker
thread while the bot trades. Times are shown in America/New_York. Each chart has a `*_figure` function that
builds the Figure (tests inspect its artists) and a `*_png` function that renders it.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.options.market_hours import MARKET_TZ
from bot.options.positions import ActionKind, Position

SIZE_INCHES = (8.0, 3.6)
DPI = 100  # 800 x 360 pixels: as wide as a Discord embed's image shows at full size

Point = tuple[datetime, Decimal]
Mark = tuple[datetime, float]  # a sampled mark price: plotting needs floats, not exact money
# Either side of a lone point, in matplotlib's days (it would show days around it).
LONE_DAY_SPAN = 1 / 24  # an equity curve's hour
LONE_FILL_SPAN = 10 / 1440  # a fresh position's ten minutes

# matplotlib does not promise thread safety: the worker threads that draw charts take turns.
_DRAWING = threading.Lock()

UP, DOWN, NEUTRAL = "#2e7d32", "#c62828", "#1f4e9c"
# Each kind of fill has its own marker and colour, so a trader tells an add from an open at a glance.
FILL_STYLE: dict[ActionKind, tuple[str, str]] = {
    ActionKind.OPEN: ("^", UP),
    ActionKind.ADD: ("P", NEUTRAL),
    ActionKind.TRIM: ("v", "#ef6c00"),
    ActionKind.CLOSE: ("X", DOWN),
}


def blank_chart() -> tuple[Figure, Axes]:
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
    with _DRAWING:
        # Light compression: the default level spends more time squeezing the PNG than drawing the chart.
        FigureCanvasAgg(figure).print_png(buffer, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def equity_curve_figure(points: Sequence[Point], title: str) -> Figure:
    """Cumulative realized P&L as a step line over time, with the zero line.

    `points` are (time, cumulative realized P&L up to and including that time), in time order: one per
    fill (or per closed position), as the analytics pipeline sums them. No points gives an empty chart
    saying so; one point shows as a single step from zero.
    """
    figure, axes = blank_chart()
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
        axes.set_xlim(times[0] - LONE_DAY_SPAN, times[0] + LONE_DAY_SPAN)
    _time_axis(axes)
    return figure


def equity_curve_png(points: Sequence[Point], title: str) -> bytes:
    """The equity curve as a PNG image (see `equity_curve_figure`)."""
    return render_png(equity_curve_figure(points, title))


def position_chart_figure(position: Position, marks: Sequence[Mark]) -> Figure:
    """The contract's mark over the position's life, with a marker at each fill's price and time (one style
    per kind: open, add, trim, close, named in the legend) and, while it is open, the average entry.

    Marks outside the position's life are left out; with no marks the chart shows the fills alone.
    """
    figure, axes = blank_chart()
    contract = position.contract
    axes.set_title(f"{contract.label} · {position.status.value} · {position.strategy}", loc="left", fontsize=11)
    axes.set_ylabel("price")
    start, end = position.opened_at, position.closed_at
    shown = [(ts, mark) for ts, mark in marks if (start is None or ts >= start) and (end is None or ts <= end)]
    times: list[float] = []
    if shown:
        mark_times = mdates.date2num([ts for ts, _ in shown])
        axes.plot(mark_times, [mark for _, mark in shown], color="#555555", linewidth=1.2, label="mark")
        times += [mark_times[0], mark_times[-1]]
    if position.is_open and position.actions:
        axes.axhline(float(position.avg_entry), color=NEUTRAL, linestyle="--", linewidth=0.9, label="avg entry")
    for kind, (marker, colour) in FILL_STYLE.items():
        fills = [action for action in position.actions if action.kind is kind]
        if not fills:
            continue
        fill_times = mdates.date2num([action.ts for action in fills])
        axes.scatter(
            fill_times,
            [float(action.price) for action in fills],
            marker=marker,
            s=70,
            color=colour,
            edgecolors="white",
            linewidths=0.6,
            zorder=3,
            label=kind.value,
        )
        times += [min(fill_times), max(fill_times)]
    if not times:
        _empty(axes, "no fills yet")
        return figure
    if min(times) == max(times):
        axes.set_xlim(times[0] - LONE_FILL_SPAN, times[0] + LONE_FILL_SPAN)
    # A fixed corner: matplotlib's "best" placement costs more than drawing the chart.
    axes.legend(loc="upper left", fontsize=8, framealpha=0.85)
    _time_axis(axes)
    return figure


def position_chart_png(position: Position, marks: Sequence[Mark]) -> bytes:
    """The position chart as a PNG image (see `position_chart_figure`)."""
    return render_png(position_chart_figure(position, marks))
