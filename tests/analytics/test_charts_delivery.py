"""Charts on the position messages, through the real discord.py client under simcord: the message carries its
chart, an edit replaces it, `/position` answers with it, charts can be switched off, and a chart never
holds up trading."""

from __future__ import annotations

import asyncio
import logging
import threading

import discord
import pytest

from bot.discord.charts import PositionCharts
from bot.render.charts import position_chart_png
from tests.discord.conftest import SPY, Desk

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def charts_on(desk: Desk) -> None:
    desk.use_settings(charts=True)  # the Discord tests' desk draws no charts unless asked


def charts_of(desk: Desk) -> PositionCharts:
    assert desk.bot.charts is not None
    return desk.bot.charts


async def chart_of(message: discord.Message) -> tuple[discord.Attachment, bytes]:
    [attachment] = message.attachments
    return attachment, await attachment.read()


async def test_a_position_message_carries_its_chart_and_an_edit_replaces_it(desk: Desk) -> None:
    # Arrange / Act: open (posted with a chart), then trim (edited with a new one).
    position = await desk.open(qty=4)
    first, first_png = await chart_of(desk.message_of(position.position_id))
    desk.quote(SPY, "1.30", "1.40")
    await desk.manager.trim(position.position_id, qty=1)
    await desk.deliver()

    # Assert
    message = desk.message_of(position.position_id)
    second, second_png = await chart_of(message)
    assert first.filename == second.filename == "chart.png"
    assert first_png.startswith(PNG_SIGNATURE) and second_png.startswith(PNG_SIGNATURE)
    assert second.id != first.id and second_png != first_png  # replaced, not added: the trim is on the new one
    assert message.embeds[0].image.url == "attachment://chart.png"  # the embed shows it as its image
    assert len(desk.edits(message)) == 1


async def test_with_charts_off_an_edit_drops_the_chart_and_the_message_goes_on(desk: Desk) -> None:
    position = await desk.open(qty=2)
    desk.use_settings(charts=False)

    await desk.manager.add(position.position_id, 1)
    await desk.deliver()

    message = desk.message_of(position.position_id)
    assert message.attachments == [] and message.embeds[0].image.url is None
    assert message.embeds[0].fields[1].value == "3"  # Open: the message itself is up to date


async def test_a_chart_that_fails_to_draw_leaves_the_message_without_it(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> bytes:
        raise ValueError("no fonts")

    charts_of(desk).render = broken

    with caplog.at_level(logging.ERROR):
        position = await desk.open(qty=2)

    message = desk.message_of(position.position_id)
    assert message.attachments == [] and message.embeds[0].image.url is None
    assert f"could not draw the chart of position {position.position_id}" in caplog.text


async def test_a_slow_chart_never_delays_a_trade_or_its_ledger_line(desk: Desk) -> None:
    # Arrange: an open position whose next chart blocks until released.
    position = await desk.open(qty=4)
    drawing, release = threading.Event(), threading.Event()

    def slow(*args: object) -> bytes:
        drawing.set()
        release.wait(10)
        return position_chart_png(*args)  # type: ignore[arg-type]

    charts_of(desk).render = slow
    await desk.manager.trim(position.position_id, qty=1)
    delivery = asyncio.create_task(desk.bot.desk.notifier.flush())
    assert await asyncio.to_thread(drawing.wait, 10)
    message = desk.message_of(position.position_id)

    # Act: trade while the chart is being drawn.
    closed = await asyncio.wait_for(desk.manager.close(position.position_id), 5)

    # Assert: the close returned and its line is on disk, while the chart still draws.
    assert not closed.is_open and not delivery.done()
    assert [line["kind"] for line in desk.ledger_lines()] == ["open", "trim", "close"]
    release.set()
    assert await delivery == 0
    await desk.deliver()
    assert len(desk.edits(message)) == 2  # the trim's message, then the close's


async def test_a_burst_of_updates_draws_one_chart_per_delivered_edit(desk: Desk) -> None:
    position = await desk.open(qty=10)
    charts = charts_of(desk)
    drawn_before = charts.rendered

    for step in range(5):  # fills and marks, faster than messages go out
        desk.quote(SPY, f"1.{10 + step}", f"1.{20 + step}")
        await desk.manager.trim(position.position_id, qty=1)
    await desk.deliver()

    message = desk.message_of(position.position_id)
    assert len(desk.edits(message)) == 1
    assert charts.rendered - drawn_before == 1


async def test_the_position_command_answers_with_the_positions_chart(desk: Desk) -> None:
    position = await desk.open(qty=3)
    desk.quote(SPY, "1.30", "1.40")

    result = await desk.trader.slash(desk.channel, "position", position=position.position_id)

    [attachment] = result.response.attachments
    assert attachment.filename == "chart.png"
    assert (await attachment.read()).startswith(PNG_SIGNATURE)
    assert result.response.embeds[0].image.url == "attachment://chart.png"
    assert result.response.flags.ephemeral


async def test_with_charts_off_the_position_command_answers_without_one(desk: Desk) -> None:
    position = await desk.open(qty=3)
    desk.use_settings(charts=False)

    result = await desk.trader.slash(desk.channel, "position", position=position.position_id)

    assert result.response.attachments == [] and result.response.embeds[0].image.url is None
    assert result.response.embeds[0].fields[1].value == "3"
