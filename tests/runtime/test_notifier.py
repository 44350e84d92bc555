import asyncio
import io
import logging
from decimal import Decimal

import pytest

from bot.options.errors import TradeError
from bot.render.position_view import PositionView, render_text
from bot.runtime.message_board import BoardSink, ConsoleBoard
from bot.runtime.message_map import MessageMap
from bot.runtime.options_trade_notifier import OptionsTradeNotifier, order_note
from bot.settings import DiscordSettings
from tests.core.factories import T0, quote


class RecordingSink:
    def __init__(self, ledger_file):
        self.ledger_file = ledger_file
        self.shown: list[tuple[PositionView, int]] = []

    async def show(self, view):
        self.shown.append((view, self.ledger_file.read_bytes().count(b"\n")))


class BrokenSink:
    async def show(self, view):
        raise ConnectionError("discord is down")


async def test_every_fill_reaches_the_sink_after_its_ledger_line_is_on_disk(manager, quotes, spy, ledger_file):
    sink = RecordingSink(ledger_file)
    notifier = OptionsTradeNotifier(sink, quotes)
    manager.subscribe(notifier.on_fill)
    quotes.update(spy.symbol, quote("1.10", "1.20"))

    position = await manager.open_position(spy, 4, strategy="orb")
    await notifier.flush()
    await manager.trim(position.position_id, qty=1)
    await notifier.flush()

    assert [(view.position.qty, lines) for view, lines in sink.shown] == [(4, 1), (3, 2)]


async def test_bursts_of_one_position_coalesce_to_its_latest_state(manager, quotes, spy, ledger_file):
    sink = RecordingSink(ledger_file)
    notifier = OptionsTradeNotifier(sink, quotes)
    manager.subscribe(notifier.on_fill)
    quotes.update(spy.symbol, quote("1.10", "1.20"))

    position = await manager.open_position(spy, 4, strategy="orb")
    await manager.trim(position.position_id, qty=1)
    await manager.trim(position.position_id, qty=1)
    assert notifier.backlog == 1
    await notifier.flush()

    assert [view.position.qty for view, _ in sink.shown] == [2]


async def test_a_failing_sink_never_blocks_or_undoes_trading(manager, quotes, spy, ledger_file, caplog):
    notifier = OptionsTradeNotifier(BrokenSink(), quotes)
    manager.subscribe(notifier.on_fill)
    quotes.update(spy.symbol, quote("1.10", "1.20"))

    with caplog.at_level(logging.WARNING):
        position = await manager.open_position(spy, 4, strategy="orb")
        assert await notifier.flush() == 1
        position = await manager.close(position.position_id)
        assert await notifier.flush() == 1

    assert not position.is_open
    assert ledger_file.read_bytes().count(b"\n") == 2
    assert f"could not show the message of position {position.position_id}" in caplog.text
    assert notifier.backlog == 1  # kept for a retry, coalesced to the latest state


async def test_a_failed_delivery_is_retried_with_backoff_until_it_goes_through(manager, quotes, spy, ledger_file):
    sleeps = []

    class FlakySink(RecordingSink):
        failures = 3

        async def show(self, view):
            if self.failures:
                self.failures -= 1
                raise ConnectionError("503")
            await super().show(view)

    async def fake_sleep(seconds):
        sleeps.append(seconds)
        if sink.shown:
            raise asyncio.CancelledError

    sink = FlakySink(ledger_file)
    notifier = OptionsTradeNotifier(sink, quotes, sleep=fake_sleep)
    manager.subscribe(notifier.on_fill)
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    position = await manager.open_position(spy, 4, strategy="orb")

    worker = asyncio.create_task(notifier.run())
    for _ in range(20):
        await asyncio.sleep(0)
    worker.cancel()
    await asyncio.gather(worker, return_exceptions=True)

    assert sleeps == [1.0, 2.0, 4.0]
    assert [view.position.position_id for view, _ in sink.shown] == [position.position_id]
    assert notifier.backlog == 0


async def test_an_order_in_flight_shows_as_pending_and_a_reject_says_why(manager, quotes, spy, ledger_file):
    sink = RecordingSink(ledger_file)
    notifier = OptionsTradeNotifier(sink, quotes)
    manager.subscribe(notifier.on_fill)
    manager.subscribe_orders(notifier.on_order)
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    position = await manager.open_position(spy, 4, strategy="orb")
    await notifier.flush()

    seen = []

    async def record(order, pos):
        seen.append(order_note(order))

    manager.subscribe_orders(record)
    quotes.update(spy.symbol, quote("1.30", "1.20"))  # crossed
    with pytest.raises(TradeError):
        await manager.trim(position.position_id, qty=1)
    await notifier.flush()

    assert seen[0].startswith("pending: sell 1 (order ord-")
    assert seen[1].startswith("sell 1 rejected: Not filling SPY 2026-11-27 450C: the quote is crossed")
    assert sink.shown[-1][0].status_note == seen[1]
    assert sink.shown[-1][0].position.qty == 4


async def test_the_console_message_holds_what_the_embed_will(manager, quotes, spy, tmp_path):
    out = io.StringIO()
    messages = MessageMap(tmp_path / "message_ids.json")
    sink = BoardSink(ConsoleBoard(out), messages, lambda: DiscordSettings().notify, lambda: T0)
    notifier = OptionsTradeNotifier(sink, quotes)
    manager.subscribe(notifier.on_fill)
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    position = await manager.open_position(spy, 10, strategy="orb")
    quotes.update(spy.symbol, quote("1.45", "1.50"))
    await manager.add(position.position_id, 5)
    quotes.update(spy.symbol, quote("2.00", "2.00"))
    await manager.trim(position.position_id, qty=5, actor="trader:42")
    await notifier.flush()

    text = out.getvalue()

    assert f"SPY 2026-11-27 450C | OPEN | orb | {position.position_id}" in text
    assert "open 10 @ avg 1.3000 | mark 2.00 | unrealized +700.00" in text
    # +350 realized on 1,950 of premium paid
    assert "realized +350.00 (+17.9%)" in text
    assert "last: 10:00 trim 5 @ 2.00 (trader:42)" in text
    assert "history: 10:00 open 10 @ 1.20 (orb) | 10:00 add 5 @ 1.50 (orb) | 10:00 trim 5 @ 2.00 (trader:42)" in text


async def test_a_closed_position_shows_no_unrealized(manager, quotes, spy):
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    position = await manager.open_position(spy, 2, strategy="orb")
    position = await manager.close(position.position_id)

    view = PositionView(position, Decimal("1.15"))

    assert view.unrealized_pnl is None
    assert "CLOSED" in render_text(view)
    assert "unrealized" not in render_text(view)


async def test_an_update_waiting_behind_a_slow_delivery_is_shown_at_its_newest(manager, quotes, spy, ledger_file):
    qqq = spy.__class__.parse("QQQ   261127P00510000")
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    quotes.update(qqq.symbol, quote("1.10", "1.20"))

    class SlowSink(RecordingSink):
        async def show(self, view):
            if view.position.contract == spy and not self.shown:
                # While this delivery waits (a rate-limit pause), the other position trades again.
                await manager.trim(put.position_id, qty=1)
            await super().show(view)

    sink = SlowSink(ledger_file)
    notifier = OptionsTradeNotifier(sink, quotes)
    manager.subscribe(notifier.on_fill)
    await manager.open_position(spy, 2, strategy="orb")
    put = await manager.open_position(qqq, 4, strategy="orb")

    await notifier.flush()

    shown = [(view.position.contract.underlying, view.position.qty) for view, _ in sink.shown]
    assert shown == [("SPY", 2), ("QQQ", 3)]


@pytest.mark.parametrize(
    ("failure", "why"),
    [
        (BrokenPipeError(32, "Broken pipe"), "its reader went away"),  # `python -m bot demo | head`, head gone
        (OSError(28, "No space left on device"), "No space left on device"),  # `python -m bot demo > /dev/full`
    ],
)
async def test_a_terminal_nobody_reads_any_more_is_said_once_and_the_desk_trades_on(
    manager, quotes, spy, tmp_path, caplog, failure, why
):
    class Unwritable(io.StringIO):
        def write(self, text):
            raise failure

    messages = MessageMap(tmp_path / "message_ids.json")
    sink = BoardSink(ConsoleBoard(Unwritable()), messages, lambda: DiscordSettings().notify, lambda: T0)
    notifier = OptionsTradeNotifier(sink, quotes)
    manager.subscribe(notifier.on_fill)
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    position = await manager.open_position(spy, 4, strategy="orb")
    await notifier.flush()
    await manager.trim(position.position_id, qty=1)
    closed = await manager.close(position.position_id)
    await notifier.flush()

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [f"the terminal cannot be written ({why}): position messages are no longer printed"]
    assert not closed.is_open
