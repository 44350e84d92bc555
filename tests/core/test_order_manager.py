import asyncio
from decimal import Decimal

import pytest

from bot.options.errors import OrderRejected, TradeError
from bot.options.execution_paper import PaperConfig
from bot.options.order_manager import OptionsOrderManager
from bot.options.orders import Fill, OrderStatus, Side
from bot.options.positions import ActionKind, PositionStatus, Source
from bot.options.trade_ledger import read_ledger, replay
from tests.core.factories import T0, quote


def at(quotes, contract, bid, ask):
    quotes.update(contract.symbol, quote(bid, ask))


async def test_the_reference_numbers(manager, quotes, spy):
    """buy 10 @ 1.20, add 5 @ 1.50 -> avg 1.30; trim 5 @ 2.00 -> +350.00; close 10 @ 1.00 -> -300.00."""
    at(quotes, spy, "1.10", "1.20")
    position = await manager.open_position(spy, 10, strategy="orb")
    at(quotes, spy, "1.45", "1.50")
    position = await manager.add(position.position_id, 5)
    assert position.avg_entry == Decimal("1.30")

    at(quotes, spy, "2.00", "2.05")
    position = await manager.trim(position.position_id, qty=5)
    assert position.actions[-1].realized_pnl == Decimal("350.00")
    assert position.avg_entry == Decimal("1.30")

    at(quotes, spy, "1.00", "1.05")
    position = await manager.close(position.position_id)
    assert position.actions[-1].realized_pnl == Decimal("-300.00")
    assert position.realized_pnl == Decimal("50.00")
    assert (position.qty, position.status, position.closed_at) == (0, PositionStatus.CLOSED, T0)
    assert [a.kind for a in position.actions] == [ActionKind.OPEN, ActionKind.ADD, ActionKind.TRIM, ActionKind.CLOSE]


@pytest.mark.parametrize("paper_config", [PaperConfig(fee_per_contract=Decimal("0.65"))])
async def test_fees_are_realized_at_once_on_buys_and_never_move_the_average(manager, quotes, spy):
    at(quotes, spy, "1.10", "1.20")
    position = await manager.open_position(spy, 10, strategy="orb")
    assert position.avg_entry == Decimal("1.20")
    assert position.realized_pnl == Decimal("-6.50")

    at(quotes, spy, "2.00", "2.05")
    position = await manager.trim(position.position_id, qty=4)

    assert position.actions[-1].realized_pnl == Decimal("0.80") * 4 * 100 - Decimal("2.60")
    assert position.fees == Decimal("9.10")
    assert position.realized_pnl == Decimal("-6.50") + Decimal("317.40")


async def test_average_entry_is_unrounded_and_pnl_uses_it(manager, quotes, spy):
    at(quotes, spy, "1.00", "1.00")
    position = await manager.open_position(spy, 1, strategy="orb")
    at(quotes, spy, "1.01", "1.01")
    position = await manager.add(position.position_id, 2)
    assert position.avg_entry == Decimal("3.02") / 3

    position = await manager.close(position.position_id)

    assert position.realized_pnl == (Decimal("1.01") - Decimal("3.02") / 3) * 3 * 100


@pytest.mark.parametrize(
    ("open_qty", "percent", "sold"),
    [(10, 50, 5), (10, 33, 3), (3, 50, 1), (1, 10, 1), (7, "99.9", 6), (7, 100, 7), (10, Decimal("0.5"), 1)],
)
async def test_trim_by_percent_rounds_down_and_sells_at_least_one(manager, quotes, spy, open_qty, percent, sold):
    at(quotes, spy, "1.10", "1.20")
    position = await manager.open_position(spy, open_qty, strategy="orb")

    position = await manager.trim(position.position_id, percent=percent)

    assert position.actions[-1].qty == sold
    assert position.qty == open_qty - sold


async def test_a_trim_that_sells_everything_is_recorded_as_a_close(manager, quotes, spy, ledger_file):
    at(quotes, spy, "1.10", "1.20")
    position = await manager.open_position(spy, 4, strategy="orb")

    position = await manager.trim(position.position_id, percent=100)

    assert position.status is PositionStatus.CLOSED
    assert [e.kind for e in read_ledger(ledger_file).events] == [ActionKind.OPEN, ActionKind.CLOSE]


async def test_source_and_actor_reach_the_ledger(manager, quotes, spy, ledger_file):
    at(quotes, spy, "1.10", "1.20")
    position = await manager.open_position(spy, 2, strategy="manual", source=Source.MANUAL, actor="user:42")

    [event] = read_ledger(ledger_file).events

    assert (event.source, event.actor, event.strategy) == (Source.MANUAL, "user:42", "manual")
    assert event.position_id == position.position_id


async def test_orders_are_tracked_with_status_and_average_fill(manager, quotes, spy):
    at(quotes, spy, "1.10", "1.20")
    position = await manager.open_position(spy, 3, strategy="orb")

    [order] = manager.orders.values()

    assert (order.status, order.filled_qty, order.avg_fill_price) == (OrderStatus.FILLED, 3, Decimal("1.20"))
    assert order.position_id == position.position_id


@pytest.mark.parametrize("paper_config", [PaperConfig(partial_fills=True)])
async def test_a_partial_fill_leaves_the_rest_cancelled(manager, quotes, spy):
    quotes.update(spy.symbol, quote("1.10", "1.20", size=4))

    position = await manager.open_position(spy, 10, strategy="orb")

    [order] = manager.orders.values()
    assert position.qty == 4
    assert (order.status, order.filled_qty, order.requested_qty) == (OrderStatus.CANCELLED, 4, 10)


BAD_AMOUNTS = [0, -1, 1.5, "1.5", float("nan"), "nan", "inf", float("inf"), "abc", None, True, [], "1e400", 10_001]


async def assert_refused(manager, ledger_file, action, match):
    before_positions = manager.all_positions()
    before_ledger = ledger_file.read_bytes()
    with pytest.raises(TradeError, match=match):
        await action
    assert manager.all_positions() == before_positions
    assert ledger_file.read_bytes() == before_ledger


@pytest.mark.parametrize("qty", BAD_AMOUNTS)
async def test_bad_quantities_are_refused_and_change_nothing(manager, quotes, spy, ledger_file, qty):
    at(quotes, spy, "1.10", "1.20")
    position = await manager.open_position(spy, 5, strategy="orb")

    await assert_refused(manager, ledger_file, manager.open_position(spy, qty, strategy="orb"), "contracts")
    await assert_refused(manager, ledger_file, manager.add(position.position_id, qty), "contracts")
    if qty is not None:
        await assert_refused(manager, ledger_file, manager.trim(position.position_id, qty=qty), "contracts")


@pytest.mark.parametrize("percent", [0, -5, 150, "100.01", "nan", float("nan"), "inf", "x", True])
async def test_bad_percentages_are_refused_and_change_nothing(manager, quotes, spy, ledger_file, percent):
    at(quotes, spy, "1.10", "1.20")
    position = await manager.open_position(spy, 5, strategy="orb")

    await assert_refused(manager, ledger_file, manager.trim(position.position_id, percent=percent), "percentage")


async def test_selling_more_than_is_open_is_refused(manager, quotes, spy, ledger_file):
    at(quotes, spy, "1.10", "1.20")
    position = await manager.open_position(spy, 5, strategy="orb")

    await assert_refused(
        manager, ledger_file, manager.trim(position.position_id, qty=6), "Cannot trim 6 contracts.*only 5 are open"
    )


async def test_trim_needs_exactly_one_of_qty_and_percent(manager, quotes, spy, ledger_file):
    at(quotes, spy, "1.10", "1.20")
    position = await manager.open_position(spy, 5, strategy="orb")

    await assert_refused(manager, ledger_file, manager.trim(position.position_id), "not both or neither")
    await assert_refused(manager, ledger_file, manager.trim(position.position_id, qty=1, percent=5), "not both")


async def test_unknown_and_closed_positions_are_refused(manager, quotes, spy, ledger_file):
    at(quotes, spy, "1.10", "1.20")
    position = await manager.open_position(spy, 5, strategy="orb")
    await manager.close(position.position_id)

    await assert_refused(manager, ledger_file, manager.trim("pos-nope", qty=1), "no position 'pos-nope'")
    await assert_refused(manager, ledger_file, manager.close(position.position_id), "already closed")
    await assert_refused(manager, ledger_file, manager.add(position.position_id, 1), "already closed")
    await assert_refused(manager, ledger_file, manager.trim(position.position_id, percent=50), "already closed")


async def test_no_quote_is_refused_and_changes_nothing(manager, quotes, spy, ledger_file):
    await assert_refused(manager, ledger_file, manager.open_position(spy, 1, strategy="orb"), "No usable quote")
    at(quotes, spy, "1.10", "1.20")
    position = await manager.open_position(spy, 5, strategy="orb")
    quotes.update(spy.symbol, quote("0", None, None))

    await assert_refused(manager, ledger_file, manager.close(position.position_id), "No usable quote")
    order = list(manager.orders.values())[-1]
    assert order.status is OrderStatus.REJECTED
    assert "No usable quote" in (order.reason or "")


async def test_listeners_hear_of_each_fill_after_it_is_durable(manager, quotes, spy, ledger_file):
    heard = []

    async def listener(event, position):
        lines_on_disk = ledger_file.read_bytes().count(b"\n")
        heard.append((event.kind, position.qty, lines_on_disk))

    manager.subscribe(listener)
    at(quotes, spy, "1.10", "1.20")
    position = await manager.open_position(spy, 4, strategy="orb")
    await manager.trim(position.position_id, qty=1)

    assert heard == [(ActionKind.OPEN, 4, 1), (ActionKind.TRIM, 3, 2)]


async def test_a_failing_listener_never_undoes_or_blocks_trading(manager, quotes, spy, ledger_file):
    async def broken(event, position):
        raise RuntimeError("discord is down")

    manager.subscribe(broken)
    at(quotes, spy, "1.10", "1.20")

    position = await manager.open_position(spy, 4, strategy="orb")
    position = await manager.trim(position.position_id, qty=1)

    assert position.qty == 3
    assert len(read_ledger(ledger_file).events) == 2


async def test_a_ledger_that_cannot_be_written_refuses_the_trade_and_changes_nothing(
    manager, quotes, spy, ledger_file, monkeypatch
):
    at(quotes, spy, "1.10", "1.20")
    position = await manager.open_position(spy, 4, strategy="orb")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", disk_full)
    await assert_refused(manager, ledger_file, manager.trim(position.position_id, qty=1), "could not be recorded")
    await assert_refused(manager, ledger_file, manager.open_position(spy, 1, strategy="orb"), "could not be recorded")
    assert manager.get(position.position_id).qty == 4


class PartThenReject:
    """A broker that fills one contract, then refuses the rest."""

    async def execute(self, order):
        yield Fill("fill-1", order.order_id, order.side, 1, Decimal("1.00"), Decimal(0), T0)
        raise OrderRejected("the broker cancelled the rest")


async def test_a_reject_after_a_partial_fill_keeps_the_fill_and_cancels_the_rest(ledger, ledger_file, spy):
    manager = OptionsOrderManager(PartThenReject(), ledger)

    position = await manager.open_position(spy, 3, strategy="orb")

    [order] = manager.orders.values()
    assert position.qty == 1
    assert (order.status, order.filled_qty, order.reason) == (OrderStatus.CANCELLED, 1, "the broker cancelled the rest")
    assert len(read_ledger(ledger_file).events) == 1


async def test_a_trim_cancelled_while_recording_still_finishes_recording_and_notifying(
    manager, quotes, spy, ledger_file
):
    heard = []

    async def listener(event, position):
        heard.append(event.kind)

    manager.subscribe(listener)
    at(quotes, spy, "1.10", "1.20")
    position = await manager.open_position(spy, 5, strategy="orb")
    for turns in range(1, 8):
        trim = asyncio.create_task(manager.trim(position.position_id, qty=1))
        for _ in range(turns):
            await asyncio.sleep(0)
        trim.cancel()
        await asyncio.gather(trim, return_exceptions=True)

    position = manager.get(position.position_id)
    trims = [order for order in manager.orders.values() if order.side is Side.SELL]
    assert heard.count(ActionKind.TRIM) + heard.count(ActionKind.CLOSE) == 5 - position.qty
    assert sum(order.filled_qty for order in trims) == 5 - position.qty
    assert replay(read_ledger(ledger_file).events) == {position.position_id: position}


@pytest.mark.parametrize(
    "qty", [10**5000, -(10**5000), "٣", "1_0", " 2 ", "2.0"], ids=["huge", "-huge", "arabic", "1_0", "spaced", "2.0"]
)
async def test_odd_amounts_get_a_clear_answer(manager, quotes, spy, qty):
    at(quotes, spy, "1.10", "1.20")
    if qty in (" 2 ", "2.0"):
        assert (await manager.open_position(spy, qty, strategy="orb")).qty == 2
        return
    with pytest.raises(TradeError, match="contracts"):
        await manager.open_position(spy, qty, strategy="orb")


class Reports:
    """A broker that reports the fills it is given, `(fill_id, qty)`, a fill id maybe again (a reconnect replaying
    its stream, or a fill already in the ledger from before a restart)."""

    def __init__(self, *fills):
        self.fills = fills

    async def execute(self, order):
        for fill_id, qty in self.fills:
            yield Fill(fill_id, order.order_id, order.side, qty, Decimal("1.00"), Decimal(0), T0)


async def test_a_fill_reported_twice_is_applied_once(ledger, ledger_file, spy):
    manager = OptionsOrderManager(Reports(("fill-a", 2), ("fill-a", 2), ("fill-b", 3)), ledger)

    position = await manager.open_position(spy, 5, strategy="orb")

    assert position.qty == 5
    assert [event.fill_id for event in read_ledger(ledger_file).events] == ["fill-a", "fill-b"]
    [order] = manager.orders.values()
    assert (order.status, order.filled_qty) == (OrderStatus.FILLED, 5)


async def test_a_fill_the_ledger_holds_from_before_a_restart_is_not_applied_again(ledger, ledger_file, spy):
    opened = await OptionsOrderManager(Reports(("fill-a", 2)), ledger).open_position(spy, 2, strategy="orb")
    resumed = replay(read_ledger(ledger_file).events).values()
    again = OptionsOrderManager(Reports(("fill-a", 2), ("fill-b", 1)), ledger, positions=resumed)

    position = await again.add(opened.position_id, 1)

    assert position.qty == 3
    assert [event.fill_id for event in read_ledger(ledger_file).events] == ["fill-a", "fill-b"]
