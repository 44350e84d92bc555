"""Charts are checked by rendering them: a real PNG of the expected size with something drawn on it, and the
figure's artists (lines, markers, legend, tick labels) holding what a trader should see."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from matplotlib import image as mpimg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bot.charts import DPI, SIZE_INCHES, equity_curve_figure, equity_curve_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # 10:00 in New York


def assert_chart_image(png: bytes) -> None:
    """A PNG of the chart's size, with more on it than a blank background."""
    assert png.startswith(PNG_SIGNATURE)
    pixels = mpimg.imread(io.BytesIO(png), format="png")
    assert pixels.shape[:2] == (round(SIZE_INCHES[1] * DPI), round(SIZE_INCHES[0] * DPI))
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
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
