"""AlpacaExecutor through the real alpaca-py client against the fake Alpaca: fills (partial ones too) become
ledger lines with the broker's execution ids; rejects and cancels are clear sentences; a dropped stream is
covered by polling; a retried submission never places the order twice."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest

from bot.options.contracts import OptionContract
from bot.options.errors import OrderRejected, TradeError
from bot.options.order_manager import OptionsOrderManager
from bot.options.orders import OrderStatus
from bot.options.trade_ledger import TradeLedger
from tests.broker.conftest import NOW, broker_settings, executor_for, until
from tests.broker.fake_alpaca import FakeAlpaca

SPY = OptionContract.parse("SPY   261127C00450000")


@pytest.fixture
async def streaming(fake: FakeAlpaca, executor: object) -> FakeAlpaca:
    """The executor's trade-updates stream is listening."""
    await until(lambda: fake._trade_sockets)
    return fake


async def test_partial_fills_each_become_a_ledger_line_with_the_broker_execution_id(
    streaming: FakeAlpaca, manager: OptionsOrderManager, ledger: TradeLedger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = streaming
    fake.plans.append([("fill", 2, "1.10"), ("fill", 3, "1.20")])

    position = await manager.open_position(SPY, 5, strategy="spy-orb")

    order = fake.orders[next(iter(fake.orders))]
    assert order.client_order_id.startswith("ord-") and order.symbol == "SPY261127C00450000"
    assert (order.side, order.qty, order.type, order.position_intent) == ("buy", 5, "market", "buy_to_open")
    events = ledger.read()
    executions = [a["id"].partition("::")[2] for a in fake.activities]
    assert [e.fill_id for e in events] == executions
    assert [(e.kind, e.qty, e.price) for e in events] == [("open", 2, Decimal("1.10")), ("add", 3, Decimal("1.20"))]
    assert all(e.order_id == order.client_order_id and e.ts == NOW for e in events)
    assert position.qty == 5 and position.avg_entry == Decimal("1.16")
    assert manager.orders[order.client_order_id].status is OrderStatus.FILLED
    assert fake.posts[order.client_order_id] == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "test-secret-never-shown" not in caplog.text + ledger.path.read_text()


async def test_a_sell_to_close_limit_order(streaming: FakeAlpaca, manager: OptionsOrderManager) -> None:
    fake = streaming
    fake.plans += [[("fill", 3, "1.00")], [("fill", 3, "1.50")]]
    position = await manager.open_position(SPY, 3, strategy="spy-orb", limit_price=Decimal("1.05"))
    closed = await manager.close(position.position_id)
    buy, sell = fake.orders.values()
    assert (buy.type, buy.limit_price) == ("limit", "1.05")
    assert (sell.side, sell.position_intent, sell.qty) == ("sell", "sell_to_close", 3)
    assert not closed.is_open and closed.realized_pnl == Decimal("150.00")


async def test_a_refused_order_is_a_sentence_and_changes_nothing(
    fake: FakeAlpaca, manager: OptionsOrderManager, ledger: TradeLedger
) -> None:
    fake.plans.append([("refuse",)])
    with pytest.raises(OrderRejected, match=r"^Alpaca refused the buy order for 2 SPY 2026-11-27 450C: insufficient"):
        await manager.open_position(SPY, 2, strategy="spy-orb")
    assert ledger.read() == [] and manager.open_positions() == []


async def test_a_rejected_order(streaming: FakeAlpaca, manager: OptionsOrderManager, ledger: TradeLedger) -> None:
    streaming.plans.append([("reject",)])
    with pytest.raises(OrderRejected, match=r"^Alpaca rejected the buy order for 2 SPY 2026-11-27 450C\.$"):
        await manager.open_position(SPY, 2, strategy="spy-orb")
    assert ledger.read() == []
    (order,) = manager.orders.values()
    assert order.status is OrderStatus.REJECTED


async def test_a_cancel_after_a_partial_fill_keeps_the_fill(
    streaming: FakeAlpaca, manager: OptionsOrderManager, ledger: TradeLedger
) -> None:
    streaming.plans.append([("fill", 1, "1.10"), ("cancel",)])
    position = await manager.open_position(SPY, 4, strategy="spy-orb")
    assert position.qty == 1 and [e.qty for e in ledger.read()] == [1]
    (order,) = manager.orders.values()
    assert order.status is OrderStatus.CANCELLED
    assert order.reason == "Alpaca canceled the rest of the buy order for 4 SPY 2026-11-27 450C after 1 filled."


async def test_a_cancel_with_nothing_filled(streaming: FakeAlpaca, manager: OptionsOrderManager) -> None:
    streaming.plans.append([("cancel",)])
    with pytest.raises(TradeError, match="cancelled with nothing filled"):
        await manager.open_position(SPY, 4, strategy="spy-orb")


async def test_a_working_order_is_cancelled_at_the_timeout(
    fake: FakeAlpaca, ledger: TradeLedger, clock: object
) -> None:
    executor = executor_for(broker_settings(fake, order_timeout_seconds=0.2), stream=False)
    manager = OptionsOrderManager(executor, ledger, clock=clock)  # type: ignore[arg-type]
    fake.plans.append([("fill", 1, "1.10"), ("hold",)])
    position = await manager.open_position(SPY, 3, strategy="spy-orb")
    assert position.qty == 1
    assert any(r.startswith("DELETE order") for r in fake.requests)


async def test_fills_lost_with_a_dropped_stream_are_found_by_polling(
    streaming: FakeAlpaca, manager: OptionsOrderManager, ledger: TradeLedger
) -> None:
    fake = streaming
    fake.plans.append([("fill", 1, "1.10"), ("hold",)])
    opening = asyncio.create_task(manager.open_position(SPY, 3, strategy="spy-orb"))
    await until(lambda: len(ledger.read()) == 1)
    fake.drop_trade_stream()
    (cid,) = fake.orders
    fake.fill(cid, 2, "1.30", tell=False)  # while the stream is down: never told
    position = await opening
    assert position.qty == 3 and [e.qty for e in ledger.read()] == [1, 2]
    assert {e.fill_id for e in ledger.read()} == {a["id"].partition("::")[2] for a in fake.activities}


async def test_without_a_stream_orders_are_followed_by_polling(
    fake: FakeAlpaca, ledger: TradeLedger, clock: object
) -> None:
    manager = OptionsOrderManager(executor_for(broker_settings(fake), stream=False), ledger, clock=clock)  # type: ignore[arg-type]
    fake.plans.append([("fill", 2, "1.10"), ("fill", 1, "1.40")])
    position = await manager.open_position(SPY, 3, strategy="spy-orb")
    assert position.qty == 3 and [e.price for e in ledger.read()] == [Decimal("1.10"), Decimal("1.40")]


async def test_a_504_retried_by_the_sdk_places_the_order_once(
    streaming: FakeAlpaca, manager: OptionsOrderManager, ledger: TradeLedger
) -> None:
    fake = streaming
    fake.fail_posts.append(504)  # the order is placed, but the answer is lost; the SDK posts again
    fake.plans.append([("fill", 2, "1.10")])
    position = await manager.open_position(SPY, 2, strategy="spy-orb")
    (cid,) = fake.orders
    assert fake.posts[cid] == 2 and len(fake.orders) == 1
    assert position.qty == 2 and len(ledger.read()) == 1


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "fill-history"])
async def test_each_fill_carries_the_configured_fee_per_contract(
    fake: FakeAlpaca, ledger: TradeLedger, clock: object, stream: bool
) -> None:
    # Alpaca reports fills without fees: the desk records what the account is charged per contract.
    executor = executor_for(broker_settings(fake, fee_per_contract=Decimal("0.05")), stream=stream)
    following = asyncio.create_task(executor.run())
    if stream:
        await until(lambda: fake._trade_sockets)
    manager = OptionsOrderManager(executor, ledger, clock=clock)  # type: ignore[arg-type]
    fake.plans.append([("fill", 2, "1.10"), ("fill", 1, "1.40")])
    try:
        position = await manager.open_position(SPY, 3, strategy="spy-orb")
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
    assert [e.fees for e in ledger.read()] == [Decimal("0.10"), Decimal("0.05")]
    assert position.fees == Decimal("0.15") and position.realized_pnl == Decimal("-0.15")
