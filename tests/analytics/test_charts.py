"""Charts are checked by rendering them: a real PNG of the expected size with something drawn on it, and the
figure's artists (lines, markers, legend, tick labels) holding what a trader should see."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from matplotlib import dates as mdates
from matplotlib import image as mpimg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bot.options.contracts import OptionContract
from bot.options.orders import Side
from bot.options.positions import Position, Source
from bot.render.charts import (
    DPI,
    SIZE_INCHES,
    Mark,
    equity_curve_figure,
    equity_curve_png,
    position_chart_figure,
    position_chart_png,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # 10:00 in New York
SPY = OptionContract.parse("SPY   261127C00450000")


def assert_chart_image(png: bytes) -> None:
    """A PNG of the chart's size, with more on it than a blank background."""
    assert png.startswith(PNG_SIGNATURE)
    pixels = mpimg.imread(io.BytesIO(png), format="png")
    assert pixels.shape[:2] == (round(SIZE_INCHES[1] * DPI), round(SIZE_INCHES[0] * DPI))
    rgba = np.ascontiguousarray((pixels * 255).round().astype(np.uint8))
    colours = np.unique(rgba.view(np.uint32))  # one number per pixel's colour
    assert len(colours) > 20  # text, grid, lines and markers, anti-aliased


def texts_of(figure: Figure) -> list[str]:
    figure.canvas.draw()  # tick labels exist only once the figure is drawn
    axes = figure.axes[0]
    labels = [t.get_text() for t in (*axes.get_xticklabels(), *axes.get_yticklabels())]
    return [*labels, axes.get_title(loc="left"), *(t.get_text() for t in (*axes.texts, *figure.texts))]


def curve_of(figure: Figure) -> Line2D:
    [curve] = [line for line in figure.axes[0].get_lines() if line.get_label() == "realized P&L"]
    return curve


def test_an_equity_curve_steps_through_the_cumulative_pnl_in_new_york_time() -> None:
    points = [
        (T0, Decimal("-40.00")),
        (T0 + timedelta(minutes=45), Decimal("85.50")),
        (T0 + timedelta(hours=2), Decimal("60.25")),
        (T0 + timedelta(hours=4), Decimal("310.00")),
    ]

    figure = equity_curve_figure(points, "P&L 2026-11-25")

    curve = curve_of(figure)
    assert curve.get_drawstyle() == "steps-post"
    assert list(curve.get_ydata()) == [0.0, -40.0, 85.5, 60.25, 310.0]  # flat at zero until the first fill
    zero_lines = [line for line in figure.axes[0].get_lines() if list(line.get_ydata()) == [0, 0]]
    assert zero_lines
    texts = texts_of(figure)
    assert "P&L 2026-11-25" in texts and "+310.00" in texts
    assert "10:00" in texts and "15:00" not in texts  # 15:00 UTC is shown as 10:00 in New York
    assert_chart_image(equity_curve_png(points, "P&L 2026-11-25"))


def test_an_equity_curve_with_one_point_is_one_step_from_zero_within_hours() -> None:
    figure = equity_curve_figure([(T0, Decimal("12.50"))], "P&L")

    assert list(curve_of(figure).get_ydata()) == [0.0, 12.5]
    low, high = figure.axes[0].get_xlim()
    assert high - low == pytest.approx(2 / 24)  # two hours (matplotlib counts in days), not days around a lone point
    assert "+12.50" in texts_of(figure)
    assert_chart_image(equity_curve_png([(T0, Decimal("12.50"))], "P&L"))


def test_an_equity_curve_without_points_says_so() -> None:
    figure = equity_curve_figure([], "P&L 2026-11-26")

    assert "no realized P&L yet" in texts_of(figure)
    assert not [line for line in figure.axes[0].get_lines() if line.get_label() == "realized P&L"]
    assert equity_curve_png([], "P&L 2026-11-26").startswith(PNG_SIGNATURE)


def test_an_equity_curve_over_weeks_labels_dates() -> None:
    points = [(T0 + timedelta(days=day), Decimal(day * 10)) for day in range(21)]

    texts = texts_of(equity_curve_figure(points, "P&L month"))

    assert "Dec" in texts
    assert_chart_image(equity_curve_png(points, "P&L month"))


# --- the position chart -------------------------------------------------------------------------------------


def fill(position: Position, side: Side, qty: int, price: str, minutes: int) -> Position:
    filled, _ = position.with_fill(
        side=side,
        qty=qty,
        price=Decimal(price),
        fees=Decimal("0.65") * qty,
        ts=T0 + timedelta(minutes=minutes),
        fill_id=f"fill-{minutes}",
        order_id=f"order-{minutes}",
        source=Source.STRATEGY,
    )
    return filled


def round_trip() -> Position:
    """Open 5 at 10:00, add 2 at 11:00, trim 3 at 12:30, close 4 at 14:00 (New York)."""
    position = fill(Position("pos-chart", SPY, "spy-orb"), Side.BUY, 5, "3.62", 0)
    position = fill(position, Side.BUY, 2, "4.10", 60)
    position = fill(position, Side.SELL, 3, "4.60", 150)
    return fill(position, Side.SELL, 4, "4.70", 240)


def marks_every_minute(start: int, end: int) -> list[Mark]:
    return [(T0 + timedelta(minutes=m), 3.5 + m / 100) for m in range(start, end)]


def fill_markers(figure: Figure) -> dict[str, PathCollection]:
    return {c.get_label(): c for c in figure.axes[0].collections if isinstance(c, PathCollection)}


def test_a_position_chart_marks_open_add_trim_and_close_at_their_price_and_time() -> None:
    position = round_trip()

    figure = position_chart_figure(position, marks_every_minute(-30, 300))

    markers = fill_markers(figure)
    assert set(markers) == {"open", "add", "trim", "close"}
    # Each kind is drawn differently: its own marker shape and colour.
    shapes = {kind: marker.get_paths()[0].vertices.tobytes() for kind, marker in markers.items()}
    colours = {kind: tuple(marker.get_facecolor()[0]) for kind, marker in markers.items()}
    assert len(set(shapes.values())) == 4 and len(set(colours.values())) == 4
    placed = {kind: [(mdates.num2date(x), y) for x, y in marker.get_offsets()] for kind, marker in markers.items()}
    assert placed == {
        "open": [(T0, 3.62)],
        "add": [(T0 + timedelta(hours=1), 4.10)],
        "trim": [(T0 + timedelta(minutes=150), 4.60)],
        "close": [(T0 + timedelta(hours=4), 4.70)],
    }
    legend = figure.axes[0].get_legend()
    assert legend is not None
    assert [text.get_text() for text in legend.get_texts()] == ["mark", "open", "add", "trim", "close"]
    assert_chart_image(position_chart_png(position, marks_every_minute(-30, 300)))


def test_the_mark_line_covers_only_the_positions_life() -> None:
    position = round_trip()

    figure = position_chart_figure(position, marks_every_minute(-30, 300))

    [line] = [line for line in figure.axes[0].get_lines() if line.get_label() == "mark"]
    times = [mdates.num2date(x) for x in line.get_xdata()]
    assert (times[0], times[-1]) == (T0, T0 + timedelta(hours=4))  # not before the open, not after the close
    assert "SPY 2026-11-27 450C · closed · spy-orb" in texts_of(figure)


def test_an_open_position_shows_its_average_entry() -> None:
    position = fill(fill(Position("pos-open", SPY, "orb"), Side.BUY, 3, "2.00", 0), Side.BUY, 1, "3.00", 30)

    figure = position_chart_figure(position, marks_every_minute(0, 45))

    [entry] = [line for line in figure.axes[0].get_lines() if line.get_label() == "avg entry"]
    assert list(entry.get_ydata()) == [2.25, 2.25]
    assert set(fill_markers(figure)) == {"open", "add"}


def test_a_fresh_position_without_marks_shows_its_open_within_minutes() -> None:
    position = fill(Position("pos-new", SPY, "orb"), Side.BUY, 1, "1.10", 0)

    figure = position_chart_figure(position, [])

    assert set(fill_markers(figure)) == {"open"}
    low, high = figure.axes[0].get_xlim()
    assert high - low == pytest.approx(20 / 1440)  # ten minutes either side
    assert "09:55" in texts_of(figure)
    assert_chart_image(position_chart_png(position, []))
