"""The mark history behind the position charts: fed by the quote cache for held contracts only, bounded per
position however long it lives, and bounded overall for hundreds of open positions."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

from bot.discord.charts import MarkSeries, PositionCharts
from bot.options.contracts import OptionContract, Right
from bot.options.execution_paper import PaperConfig, PaperExecutor
from bot.options.order_manager import OptionsOrderManager
from bot.options.orders import Side
from bot.options.positions import Position, Source
from bot.options.quotes import Quote, QuoteCache
from bot.options.trade_ledger import TradeLedger
from tests.core.factories import T0


def quote_at(seconds: float, bid: str, ask: str) -> Quote:
    return Quote(bid=Decimal(bid), ask=Decimal(ask), bid_size=10, ask_size=10, ts=T0 + timedelta(seconds=seconds))


async def test_the_marks_of_an_open_position_come_from_the_quotes_of_its_contract(manager, quotes, spy) -> None:
    charts = PositionCharts(quotes, manager)
    other = OptionContract("SPY", spy.expiry, Right.PUT, spy.strike)
    quotes.update(spy.symbol, quote_at(0, "1.00", "1.10"))
    position = await manager.open_position(spy, 2, strategy="orb")

    quotes.update(spy.symbol, quote_at(30, "1.20", "1.30"))
    quotes.update(other.symbol, quote_at(40, "9.00", "9.10"))  # not held: not kept
    quotes.update(spy.symbol, Quote(bid=Decimal("5.00"), ask=Decimal("5.10")))  # no time: no place on the chart
    quotes.update(spy.symbol, quote_at(60, "1.40", "1.50"))

    # The line starts with the mark the market showed at the open.
    assert charts.marks(position.position_id) == [
        (T0, 1.05),
        (T0 + timedelta(seconds=30), 1.25),
        (T0 + timedelta(minutes=1), 1.45),
    ]


async def test_a_closed_position_keeps_its_marks_for_its_last_message_and_takes_no_more(manager, quotes, spy) -> None:
    charts = PositionCharts(quotes, manager, keep_closed=1)
    quotes.update(spy.symbol, quote_at(0, "1.00", "1.10"))
    first = await manager.open_position(spy, 1, strategy="orb")
    await manager.close(first.position_id)

    quotes.update(spy.symbol, quote_at(30, "1.20", "1.30"))

    assert charts.marks(first.position_id) == [(T0, 1.05)]
    second = await manager.open_position(spy, 1, strategy="orb")
    await manager.close(second.position_id)
    assert charts.marks(first.position_id) == []  # pushed out by a later close
    assert charts.marks(second.position_id) == [(T0, 1.25)]


def test_a_long_lived_series_stays_bounded_and_spread_over_the_whole_life() -> None:
    series = MarkSeries()
    quote = quote_at(0, "1.00", "1.10")  # the same price throughout: only the times matter here

    for second in range(100_000):  # four trading days and more of one quote a second
        series.add(T0 + timedelta(seconds=second), quote, capacity=240)

    samples = series.samples()
    assert len(samples) <= 240
    times = [ts for ts, _ in samples]
    assert times[0] == T0 and samples[-1] == (T0 + timedelta(seconds=99_999), 1.05)  # ends at the newest mark
    gaps = [b - a for a, b in pairwise(times[:-1])]  # the newest mark comes after the last kept sample
    assert max(gaps) <= 2 * min(gaps)  # evenly thinned, not just the last few hours


def test_a_busy_feed_is_sampled_at_most_every_few_seconds_and_a_late_quote_is_ignored() -> None:
    series = MarkSeries()
    for tenth in range(100):  # ten seconds of ten quotes a second
        series.add(T0 + timedelta(seconds=tenth / 10), quote_at(tenth / 10, "1.00", f"{1.10 + tenth / 100:.2f}"))
    series.add(T0, quote_at(0, "5.00", "5.10"))

    assert series.samples() == [
        (T0, 1.05),
        (T0 + timedelta(seconds=5), 1.30),
        (T0 + timedelta(seconds=9.9), 1.545),  # the newest, where the line ends
    ]


def test_memory_stays_bounded_for_hundreds_of_open_positions_over_a_day(tmp_path) -> None:
    # 210 open positions on 210 contracts, each quoted every minute for a whole session and more (400 quotes).
    contracts = [OptionContract("SPY", date(2026, 11, 27), Right.CALL, Decimal(400 + n)) for n in range(210)]
    positions = [
        Position(f"pos-{n}", contract, "orb").with_fill(
            side=Side.BUY,
            qty=1,
            price=Decimal(1),
            fees=Decimal(0),
            ts=T0,
            fill_id=f"f{n}",
            order_id=f"o{n}",
            source=Source.STRATEGY,
        )[0]
        for n, contract in enumerate(contracts)
    ]
    quotes = QuoteCache()
    ledger = TradeLedger.open(tmp_path / "trade_events.jsonl")
    manager = OptionsOrderManager(PaperExecutor(quotes, PaperConfig()), ledger, positions=positions)
    charts = PositionCharts(quotes, manager, capacity=100)

    for tick in range(400):
        quote = quote_at(60 * tick, "1.00", "1.10")
        for contract in contracts:
            quotes.update(contract.symbol, quote)
    ledger.close()

    assert charts.samples_held <= 210 * 100
    spans = {(marks[0][0], marks[-1][0]) for marks in (charts.marks(p.position_id) for p in positions)}
    assert spans == {(T0, T0 + timedelta(minutes=399))}
