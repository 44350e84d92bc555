from datetime import timedelta
from decimal import Decimal

import pytest

from bot.options.errors import OrderRejected, TradeError
from bot.options.execution_paper import PaperConfig, PaperExecutor
from bot.options.orders import OrderRequest, Side
from bot.options.quotes import PRICE_FALLBACKS, Quote, QuoteCache
from tests.core.factories import T0, quote

PRICES = {"bid": Decimal("1.10"), "ask": Decimal("1.20"), "last": Decimal("1.15")}


def order(contract, side=Side.BUY, qty=10, limit=None):
    return OrderRequest("ord-1", "pos-1", contract, side, qty, None if limit is None else Decimal(limit))


async def fills_of(executor, request):
    return [fill async for fill in executor.execute(request)]


@pytest.mark.parametrize(
    ("bid", "ask", "last", "mid"),
    [
        ("1.10", "1.20", None, Decimal("1.15")),
        (None, "1.20", "1.00", None),
        ("0", "1.20", None, None),
        ("1.10", None, None, None),
    ],
)
def test_mid_needs_both_sides(bid, ask, last, mid):
    assert quote(bid, ask, last).mid == mid


def test_mark_is_mid_else_last():
    assert quote("1.10", "1.20", "2.00").mark == Decimal("1.15")
    assert quote(None, "1.20", "2.00").mark == Decimal("2.00")
    assert Quote().mark is None


@pytest.mark.parametrize(
    ("side", "bid", "ask", "last", "price"),
    [
        (Side.BUY, "1.10", "1.20", "1.15", "1.20"),  # buy at the ask
        (Side.BUY, "1.10", None, "1.15", "1.15"),  # no ask: last
        (Side.BUY, "1.10", "0", None, "1.10"),  # zero ask counts as none: bid is the last resort
        (Side.SELL, "1.10", "1.20", "1.15", "1.10"),  # sell at the bid
        (Side.SELL, "0", "1.20", "1.15", "1.15"),  # no bid: last
        (Side.SELL, None, "1.20", None, "1.20"),  # ask is the last resort
    ],
)
async def test_fill_price_fallbacks(quotes, spy, side, bid, ask, last, price):
    quotes.update(spy.symbol, quote(bid, ask, last))

    [fill] = await fills_of(PaperExecutor(quotes), order(spy, side))

    assert fill.price == Decimal(price)
    assert (fill.qty, fill.side, fill.order_id) == (10, side, "ord-1")


async def test_a_quote_with_no_usable_price_is_rejected_never_filled_at_zero(quotes, spy):
    quotes.update(spy.symbol, quote("0", "0", "0"))

    with pytest.raises(OrderRejected, match="No usable quote for SPY 2026-11-27 450C"):
        await fills_of(PaperExecutor(quotes), order(spy))


async def test_no_quote_at_all_is_rejected(quotes, spy):
    with pytest.raises(OrderRejected, match="No usable quote"):
        await fills_of(PaperExecutor(quotes), order(spy, Side.SELL))


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_every_price_the_fill_rule_names_can_be_the_one_filled_at(quotes, spy, side):
    rule = PRICE_FALLBACKS[side]
    for rank, field in enumerate(rule):
        # What the rule prefers to this field is not quoted; the rest is.
        quoted = {name: price for name, price in PRICES.items() if name not in rule[:rank]}
        quotes.update(spy.symbol, Quote(**quoted, ts=T0))

        price, _ = PaperExecutor(quotes).fill_price(order(spy, side))

        assert price == getattr(quotes.get(spy.symbol), field), f"{field} is named but never filled at"


@pytest.mark.parametrize(
    ("config", "side", "bid", "ask", "price"),
    [
        (PaperConfig(slippage_ticks=2), Side.BUY, "1.10", "1.20", "1.22"),
        (PaperConfig(slippage_ticks=2), Side.SELL, "1.10", "1.20", "1.08"),
        # 1 % of 1.20 = 0.012 and of 1.10 = 0.011: a part of a tick costs a whole one
        (PaperConfig(slippage_bps=Decimal(100)), Side.BUY, "1.10", "1.20", "1.22"),
        (PaperConfig(slippage_bps=Decimal(100)), Side.SELL, "1.10", "1.20", "1.08"),
        # 40 bps of 1.10 = 0.0044, under half a tick: still a tick, not rounded away
        (PaperConfig(slippage_bps=Decimal(40)), Side.BUY, "1.00", "1.10", "1.11"),
        (PaperConfig(slippage_bps=Decimal(40)), Side.SELL, "1.10", "1.20", "1.09"),
        # exactly half a tick (50 bps of 1.00, 40 bps of 1.25): sells pay it as buys do
        (PaperConfig(slippage_bps=Decimal(50)), Side.SELL, "1.00", "1.10", "0.99"),
        (PaperConfig(slippage_bps=Decimal(40)), Side.BUY, "1.00", "1.25", "1.26"),
        (PaperConfig(slippage_ticks=500), Side.SELL, "1.10", "1.20", "0.01"),  # never below one tick
    ],
)
async def test_slippage_moves_the_price_against_the_trader(quotes, spy, config, side, bid, ask, price):
    quotes.update(spy.symbol, quote(bid, ask))

    [fill] = await fills_of(PaperExecutor(quotes, config), order(spy, side))

    assert fill.price == Decimal(price)


async def test_no_slippage_fills_at_the_quote_as_it_is(quotes, spy):
    quotes.update(spy.symbol, quote("1.104", "1.206"))

    assert [fill.price for fill in await fills_of(PaperExecutor(quotes), order(spy))] == [Decimal("1.206")]


async def test_partial_fills_are_limited_by_the_displayed_size(quotes, spy):
    quotes.update(spy.symbol, quote("1.10", "1.20", size=3))
    executor = PaperExecutor(quotes, PaperConfig(partial_fills=True))

    [fill] = await fills_of(executor, order(spy, qty=10))

    assert fill.qty == 3


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_with_partial_fills_a_displayed_size_of_zero_fills_nothing(quotes, spy, side):
    quotes.update(spy.symbol, quote("1.10", "1.20", size=0))
    executor = PaperExecutor(quotes, PaperConfig(partial_fills=True))

    assert await fills_of(executor, order(spy, side, qty=10)) == []


async def test_with_partial_fills_an_unknown_size_fills_the_whole_order(quotes, spy):
    quotes.update(spy.symbol, quote("1.10", "1.20", size=None))
    executor = PaperExecutor(quotes, PaperConfig(partial_fills=True))

    [fill] = await fills_of(executor, order(spy, qty=10))

    assert fill.qty == 10


@pytest.mark.parametrize("paper_config", [PaperConfig(partial_fills=True)])
async def test_an_open_against_a_size_of_zero_is_cancelled_and_records_nothing(manager, quotes, spy, ledger_file):
    quotes.update(spy.symbol, quote("1.10", "1.20", size=0))

    with pytest.raises(TradeError, match="cancelled with nothing filled"):
        await manager.open_position(spy, 10, strategy="orb")

    assert manager.all_positions() == []
    assert not ledger_file.exists() or ledger_file.read_bytes() == b""


@pytest.mark.parametrize("size", [0, 3])
async def test_by_default_the_whole_order_fills_whatever_the_size(quotes, spy, size):
    quotes.update(spy.symbol, quote("1.10", "1.20", size=size))

    [fill] = await fills_of(PaperExecutor(quotes), order(spy, qty=10))

    assert fill.qty == 10


async def test_fees_per_contract_and_the_clock(quotes, spy):
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    executor = PaperExecutor(quotes, PaperConfig(fee_per_contract=Decimal("0.65")), clock=lambda: T0)

    [fill] = await fills_of(executor, order(spy, qty=4))

    assert fill.fees == Decimal("2.60")
    assert fill.ts == T0


async def test_limit_price_beyond_the_market_is_rejected(quotes, spy):
    quotes.update(spy.symbol, quote("1.10", "1.20"))

    with pytest.raises(OrderRejected, match="beyond the limit"):
        await fills_of(PaperExecutor(quotes), order(spy, limit="1.15"))


async def test_a_crossed_quote_is_refused_with_the_reason(quotes, spy):
    quotes.update(spy.symbol, quote("1.30", "1.20"))

    with pytest.raises(OrderRejected, match=r"crossed \(bid 1.30 above ask 1.20\)"):
        await fills_of(PaperExecutor(quotes), order(spy))


async def test_a_stale_quote_is_refused_with_its_age(spy):
    quotes = QuoteCache(max_age=timedelta(seconds=30))
    quotes.update(spy.symbol, quote("1.10", "1.20"))  # stamped T0
    fresh = PaperExecutor(quotes, clock=lambda: T0 + timedelta(seconds=30))
    late = PaperExecutor(quotes, clock=lambda: T0 + timedelta(seconds=31))

    assert len(await fills_of(fresh, order(spy))) == 1
    with pytest.raises(OrderRejected, match=r"stale \(no update for 31 s\)"):
        await fills_of(late, order(spy))


def test_cache_listeners_hear_every_update(spy):
    quotes = QuoteCache()
    heard = []
    quotes.subscribe(lambda symbol, q: heard.append((symbol, q.mark)))

    quotes.update(spy.symbol, quote("1.10", "1.20"))
    quotes.update("SPY", quote(last="450.10"))

    assert heard == [(spy.symbol, Decimal("1.15")), ("SPY", Decimal("450.10"))]
