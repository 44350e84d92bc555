"""Buys in flight: a buy waiting for its fills holds up no other buy, and its unfilled part counts against the
desk-wide limits (open positions, total premium) until it is filled or ends, so two buys never both slip
under a limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from bot.options.errors import TradeError
from bot.options.execution_paper import PaperExecutor
from bot.options.ids import new_id
from bot.options.orders import Fill, OrderRequest
from tests.risk.conftest import QQQ, SPY, T0, RiskDesk, only, refused


class HeldBuys:
    """The paper executor, but an order for one contract fills `first` contracts at once, then waits until
    the test releases it: the rest fills at 1.00 (or, with `fill` false, is cancelled)."""

    def __init__(self, paper: PaperExecutor, symbol: str) -> None:
        self._paper = paper
        self._symbol = symbol
        self.first = 0
        self.sent = asyncio.Event()  # an order for the held contract reached the executor
        self.release = asyncio.Event()
        self.fill = True

    async def execute(self, order: OrderRequest) -> AsyncIterator[Fill]:
        if order.contract.symbol != self._symbol:
            async for fill in self._paper.execute(order):
                yield fill
            return
        if self.first:
            yield self._fill(order, self.first)
        self.sent.set()
        await self.release.wait()
        if self.fill:
            yield self._fill(order, order.qty - self.first)

    @staticmethod
    def _fill(order: OrderRequest, qty: int) -> Fill:
        return Fill(new_id("fill"), order.order_id, order.side, qty, Decimal("1.00"), Decimal(0), T0)


@pytest.fixture
def held(risk_desk: RiskDesk) -> list[HeldBuys]:
    risk_desk.quote(SPY, "0.98", "1.00")
    risk_desk.quote(QQQ, "0.98", "1.00")
    return []


def build(risk_desk: RiskDesk, held: list[HeldBuys], **limits: object) -> HeldBuys:
    """The desk with `limits`; SPY's orders are held."""

    def holding(paper: PaperExecutor) -> HeldBuys:
        held.append(HeldBuys(paper, SPY.symbol))
        return held[-1]

    risk_desk.build(only(**limits), executor=holding)
    return held[-1]


async def test_a_buy_waiting_for_its_fill_holds_up_no_other_buy(risk_desk: RiskDesk, held: list[HeldBuys]) -> None:
    spy = build(risk_desk, held, max_open_positions=5)
    manager = risk_desk.manager
    waiting = asyncio.create_task(manager.open_position(SPY, 2, strategy="orb"))
    await spy.sent.wait()

    qqq = await asyncio.wait_for(manager.open_position(QQQ, 3, strategy="meanrev"), timeout=5)

    assert qqq.qty == 3 and not waiting.done()
    spy.release.set()
    assert (await waiting).qty == 2
    assert len(manager.open_positions()) == 2


async def test_an_open_in_flight_counts_as_an_open_position(risk_desk: RiskDesk, held: list[HeldBuys]) -> None:
    spy = build(risk_desk, held, max_open_positions=1)
    manager = risk_desk.manager
    waiting = asyncio.create_task(manager.open_position(SPY, 2, strategy="orb"))
    await spy.sent.wait()

    sentence = await refused(risk_desk, manager.open_position(QQQ, 1, strategy="meanrev"))

    assert sentence == (
        "Refused by the max open positions limit: 0 positions are open and 1 being opened, the limit is 1."
    )
    spy.release.set()
    await waiting
    assert [p.contract for p in manager.open_positions()] == [SPY]


@pytest.mark.parametrize("filled", [0, 4], ids=["nothing-filled-yet", "partly-filled"])
async def test_a_buy_in_flight_counts_its_fills_as_held_and_the_rest_as_in_flight(
    risk_desk: RiskDesk, held: list[HeldBuys], filled: int
) -> None:
    # SPY: 10 at 1.00 = 1,000.00, `filled` of them held and the rest in flight; the open counts once.
    # QQQ: 6 at 1.00 would make 1,600.00 against a limit of 1,500.00; 5 is at the limit.
    spy = build(risk_desk, held, max_open_positions=2, max_premium_total=Decimal(1500))
    spy.first = filled
    manager = risk_desk.manager
    waiting = asyncio.create_task(manager.open_position(SPY, 10, strategy="orb"))
    await spy.sent.wait()
    assert [p.qty for p in manager.open_positions()] == ([filled] if filled else [])

    sentence = await refused(risk_desk, manager.open_position(QQQ, 6, strategy="meanrev"))

    assert sentence == (
        "Refused by the max total premium limit: 1,600.00 would be at risk across the desk, the limit is 1,500.00."
    )
    assert (await manager.open_position(QQQ, 5, strategy="meanrev")).qty == 5  # and 2 positions: at both limits
    spy.release.set()
    assert (await waiting).qty == 10


async def test_a_buy_that_ends_unfilled_frees_what_it_held(risk_desk: RiskDesk, held: list[HeldBuys]) -> None:
    spy = build(risk_desk, held, max_open_positions=1, max_premium_total=Decimal(1500))
    manager = risk_desk.manager
    waiting = asyncio.create_task(manager.open_position(SPY, 10, strategy="orb"))
    await spy.sent.wait()
    spy.fill = False
    spy.release.set()
    with pytest.raises(TradeError, match="cancelled with nothing filled"):
        await waiting

    qqq = await manager.open_position(QQQ, 15, strategy="meanrev")

    assert qqq.qty == 15 and manager.open_positions() == [qqq]
