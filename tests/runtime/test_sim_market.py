"""The simulated market: seeded and repeatable, sane quotes, a clock that walks through trading sessions."""

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest

from bot.options.clock import SimulatedClock
from bot.options.contracts import OptionContract
from bot.options.market_hours import MARKET_TZ, is_market_open, session_close
from bot.options.quotes import QuoteCache
from bot.options.sim_market import ANCHOR_DAY, SimulatedFeed, SimulatedMarket, UnderlyingSpec, WallClockFeed
from bot.paths import PROJECT_ROOT

SPECS = [UnderlyingSpec("SPY", Decimal("450.00"), 0.2), UnderlyingSpec("QQQ", Decimal("380.00"), 0.3)]
CONTRACTS = [
    "SPY   261127C00450000",
    "SPY   261127P00440000",
    "SPY   261218C00470000",
    "QQQ   261218P00380000",
    "QQQ   261127C00500000",  # far out of the money: quoted at a cent or less
]
START = datetime(2026, 11, 24, 10, 0, tzinfo=MARKET_TZ)
CENT = Decimal("0.01")


def market(seed: int = 7, contracts=CONTRACTS, **kwargs) -> SimulatedMarket:
    m = SimulatedMarket(SPECS, seed, **kwargs)
    m.subscribe(contracts)
    m.start(START)
    return m


def run_steps(m: SimulatedMarket, steps: int) -> list:
    return [m.step() for _ in range(steps)]


def test_same_seed_and_start_give_the_same_quotes_whatever_the_subscription_order():
    first = run_steps(market(contracts=CONTRACTS), 500)
    second = run_steps(market(contracts=list(reversed(CONTRACTS))), 500)

    assert first == second
    assert len(first[0]) == len(SPECS) + len(CONTRACTS)


def test_a_different_seed_gives_different_prices():
    a, b = market(seed=7), market(seed=8)
    run_steps(a, 50), run_steps(b, 50)

    assert a.spot("SPY") != b.spot("SPY")


def test_subscriptions_never_change_the_price_path():
    bare, busy = market(contracts=[]), market(contracts=CONTRACTS)
    run_steps(bare, 200)
    run_steps(busy, 200)

    assert bare.quote("SPY") == busy.quote("SPY")
    assert bare.quote("QQQ") == busy.quote("QQQ")


def test_prices_repeat_in_another_process():
    # str hashes are salted per process; a seed derived from hash() would pass in-process but fail here.
    code = (
        "from datetime import datetime; from decimal import Decimal;"
        "from bot.options.market_hours import MARKET_TZ;"
        "from bot.options.sim_market import SimulatedMarket, UnderlyingSpec;"
        "m = SimulatedMarket([UnderlyingSpec('SPY', Decimal('450.00'), 0.2)], 7);"
        "m.start(datetime(2026, 11, 24, 10, 0, tzinfo=MARKET_TZ));"
        "[m.step() for _ in range(100)]; print(m.spot('SPY'))"
    )
    here = SimulatedMarket(SPECS[:1], 7)
    here.start(START)
    run_steps(here, 100)

    run = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert Decimal(run.stdout.strip()) == here.spot("SPY")


def test_quotes_are_sane_two_place_decimals():
    m = market()
    for _ in range(2000):
        for symbol, quote in m.step():
            for price in (quote.bid, quote.ask, quote.last):
                assert isinstance(price, Decimal)
                assert price.as_tuple().exponent == -2, (symbol, price)
            assert Decimal(0) <= quote.bid <= quote.ask, (symbol, quote)
            assert quote.bid <= quote.last <= quote.ask, (symbol, quote)
            assert not quote.crossed
            if quote.mid is not None:
                assert quote.bid <= quote.mid <= quote.ask
            assert quote.ts == m.now


def test_option_quotes_follow_the_underlying_and_sizes_are_in_range():
    m = market()
    quotes = [dict(step) for step in run_steps(m, 300)]
    call = "SPY   261218C00470000"
    spot = [q["SPY"].last for q in quotes]
    calls = [q[call].last for q in quotes]
    # A call is worth more when the underlying is higher: the ranking of the two series agrees at extremes.
    assert calls[spot.index(max(spot))] > calls[spot.index(min(spot))]
    sizes = [size for q in quotes for s in CONTRACTS for size in (q[s].bid_size, q[s].ask_size)]
    assert set(sizes) <= set(range(1, 51))
    assert len(set(sizes)) > 10  # random, not constant


def test_option_spreads_are_at_least_a_cent_and_four_percent():
    m = market()
    for _ in range(500):
        for symbol, quote in m.step():
            if symbol in CONTRACTS:
                # Rounded outward from the theoretical price (which last rounds): never narrower than asked.
                assert quote.ask - quote.bid >= max(CENT, Decimal("0.04") * quote.last) - Decimal("0.0002")


def test_a_quote_worth_less_than_a_cent_has_no_bid():
    m = market()
    far = m.quote("QQQ   261127C00500000")
    assert far.bid == Decimal("0.00")
    assert far.ask == CENT


def test_underlying_quote_is_a_cent_around_the_spot():
    m = market()
    m.step()
    spy = m.quote("SPY")
    assert spy.last == m.spot("SPY")
    assert (spy.bid, spy.ask) == (spy.last - CENT, spy.last + CENT)


def test_start_outside_a_session_moves_to_the_next_open():
    m = SimulatedMarket(SPECS, 1)
    m.start(datetime(2026, 11, 26, 12, 0, tzinfo=MARKET_TZ))  # Thanksgiving

    assert m.now == datetime(2026, 11, 27, 9, 30, tzinfo=MARKET_TZ)
    assert m.now.tzinfo is UTC
    assert m.session_close == datetime(2026, 11, 27, 13, 0, tzinfo=MARKET_TZ)  # the early close after Thanksgiving


def test_stepping_over_the_close_lands_on_the_next_trading_days_open():
    m = SimulatedMarket(SPECS, 1, tick=timedelta(seconds=30))
    m.start(datetime(2026, 11, 25, 15, 59, 45, tzinfo=MARKET_TZ))

    quotes = m.step()

    friday_open = datetime(2026, 11, 27, 9, 30, tzinfo=MARKET_TZ)  # Thursday is Thanksgiving
    assert m.now == friday_open
    assert m.session_close == datetime(2026, 11, 27, 13, 0, tzinfo=MARKET_TZ)
    assert all(quote.ts == friday_open for _, quote in quotes)
    m.step()
    assert m.now == friday_open + timedelta(seconds=30)


def test_the_underlying_stands_at_its_configured_price_at_the_anchor_days_close():
    m = SimulatedMarket(SPECS, 1)
    m.start(session_close(ANCHOR_DAY) - timedelta(seconds=1))
    [spy] = [spec for spec in SPECS if spec.symbol == "SPY"]

    assert abs(m.spot("SPY") - spy.price) <= Decimal("0.50")  # one second before the close


def test_prices_are_a_function_of_the_time_whatever_the_start():
    """A restart goes on with the path's prices: a market started later quotes what one running since earlier does."""
    early = market()
    run_steps(early, 900)  # into the next session
    late = SimulatedMarket(SPECS, 7)
    late.subscribe(CONTRACTS)
    late.start(early.now)

    assert late.snapshot() == early.snapshot()


def test_the_same_seed_and_day_give_the_same_quotes_whichever_day_a_run_starts_on():
    day = datetime(2026, 11, 25, 11, 0, tzinfo=MARKET_TZ)
    fresh = SimulatedMarket(SPECS, 7)
    fresh.start(day)
    travelled = SimulatedMarket(SPECS, 7)
    travelled.start(datetime(2024, 3, 1, 10, 0, tzinfo=MARKET_TZ))  # far away first: its paths grow both ways
    travelled.start(datetime(2027, 6, 1, 10, 0, tzinfo=MARKET_TZ))
    travelled.start(day)

    assert travelled.snapshot() == fresh.snapshot()


def test_consecutive_days_differ():
    monday, tuesday = SimulatedMarket(SPECS, 7), SimulatedMarket(SPECS, 7)
    monday.start(datetime(2026, 11, 23, 9, 30, tzinfo=MARKET_TZ))
    tuesday.start(datetime(2026, 11, 24, 9, 30, tzinfo=MARKET_TZ))
    mondays = [monday.step()[0][1].last for _ in range(779)]  # 09:30:30 to 15:59:30
    tuesdays = [tuesday.step()[0][1].last for _ in range(779)]

    assert [b - a for a, b in pairwise(mondays)] != [b - a for a, b in pairwise(tuesdays)]
    # And the next day opens near where the last closed (an overnight gap, not a restart from the configured price).
    assert abs(tuesdays[0] - mondays[-1]) < Decimal("0.03") * mondays[-1]


def test_the_clock_walks_through_trading_days_only():
    m = market(tick=timedelta(minutes=5))
    days = set()
    for _ in range(78 * 12):  # 78 five-minute ticks a session, starting from Tuesday 10:00
        m.step()
        assert is_market_open(m.now)
        days.add(m.now.astimezone(MARKET_TZ).date())

    # No Thanksgiving (26th), no weekends.
    expected = [(11, 24), (11, 25), (11, 27), (11, 30), (12, 1), (12, 2), (12, 3), (12, 4), (12, 7), (12, 8)]
    expected += [(12, 9), (12, 10), (12, 11)]
    assert sorted(days) == [date(2026, month, day) for month, day in expected]


def mean_abs_move(start: datetime, tick: timedelta) -> Decimal:
    moves = []
    for seed in range(200):
        m = SimulatedMarket([UnderlyingSpec("SPY", Decimal("450.00"), 0.2)], seed, tick=tick)
        m.start(start)
        before = m.spot("SPY")
        m.step()
        moves.append(abs(m.spot("SPY") - before))
    return sum(moves) / len(moves)


def test_an_overnight_gap_moves_prices_more_than_a_tick_and_less_than_a_session():
    one_second = mean_abs_move(datetime(2026, 11, 25, 10, 0, tzinfo=MARKET_TZ), timedelta(seconds=1))
    night = mean_abs_move(datetime(2026, 11, 25, 15, 59, 59, tzinfo=MARKET_TZ), timedelta(seconds=1))
    session = mean_abs_move(datetime(2026, 11, 25, 9, 30, tzinfo=MARKET_TZ), timedelta(hours=6, minutes=29))

    assert night > 10 * one_second
    assert night < session


def test_subscribe_validates_and_quotes_at_once():
    m = market(contracts=[])
    added = m.subscribe(["SPY261218C00470000", "SPY", "SPY   261218C00470000"])

    assert added == ["SPY   261218C00470000"]
    assert m.quote("SPY261218C00470000") == m.quote("SPY   261218C00470000")
    assert m.quote("SPY   261218C00470000").ts == m.now
    with pytest.raises(ValueError, match="IWM"):
        m.subscribe(["IWM   261218C00200000"])
    with pytest.raises(ValueError, match="OCC"):
        m.subscribe(["not a symbol"])
    with pytest.raises(ValueError, match="subscribe"):
        m.quote("QQQ   261218C00400000")
    with pytest.raises(ValueError, match="IWM"):
        m.spot("IWM")


def test_a_contract_subscribed_later_is_priced_like_one_subscribed_from_the_start():
    early, late = market(contracts=["SPY   261218C00470000"]), market(contracts=[])
    run_steps(early, 40), run_steps(late, 40)
    late.subscribe(["SPY   261218C00470000"])

    early_quote, late_quote = early.quote("SPY   261218C00470000"), late.quote("SPY   261218C00470000")
    assert (early_quote.bid, early_quote.ask, early_quote.last) == (late_quote.bid, late_quote.ask, late_quote.last)


def test_an_unstarted_market_says_so():
    m = SimulatedMarket(SPECS, 1)
    with pytest.raises(RuntimeError, match="start"):
        m.step()


@pytest.mark.parametrize(
    "spec",
    [
        lambda: UnderlyingSpec("SPY", Decimal(0), 0.2),
        lambda: UnderlyingSpec("SPY", Decimal(100), -0.1),
        lambda: UnderlyingSpec("", Decimal(100), 0.2),
        lambda: SimulatedMarket([SPECS[0], SPECS[0]], 1),
    ],
)
def test_bad_specs_are_refused(spec):
    with pytest.raises(ValueError):
        spec()


class Stop(Exception):
    pass


def test_the_feed_moves_the_desks_clock_then_quotes_each_tick_and_paces_by_speed():
    m = SimulatedMarket(SPECS, 5, tick=timedelta(seconds=30))
    m.subscribe(CONTRACTS[:1])
    m.start(datetime(2026, 11, 25, 15, 58, 0, tzinfo=MARKET_TZ))
    clock = SimulatedClock(m.now)
    feed = SimulatedFeed(m, clock, speed=60)
    cache = QuoteCache()
    seen: list[tuple[str, datetime, datetime]] = []
    cache.subscribe(lambda symbol, quote: seen.append((symbol, quote.ts, clock())))
    reference = SimulatedMarket(SPECS, 5, tick=timedelta(seconds=30))
    reference.subscribe(CONTRACTS[:1])
    reference.start(datetime(2026, 11, 25, 15, 58, 0, tzinfo=MARKET_TZ))
    run_steps(reference, 5)

    feed.attach(cache)
    for _ in range(5):
        feed.tick()

    assert feed.pause == 0.5  # half a second per 30 s tick at 60x, also over the Thanksgiving gap
    assert cache.get("SPY") == reference.quote("SPY")
    assert cache.get(CONTRACTS[0]) == reference.quote(CONTRACTS[0])
    assert cache.get("SPY").ts == datetime(2026, 11, 27, 9, 30, 30, tzinfo=MARKET_TZ)
    assert len(seen) == 6 * 3  # the opening snapshot and five ticks, three symbols each
    assert all(ts == now for _, ts, now in seen)  # the clock is at each quote's time when it arrives
    assert [ts for symbol, ts, _ in seen if symbol == "SPY"][:2] == [
        datetime(2026, 11, 25, 15, 58, tzinfo=MARKET_TZ),
        datetime(2026, 11, 25, 15, 58, 30, tzinfo=MARKET_TZ),
    ]


def test_the_feed_starts_an_unstarted_market_at_its_clock_and_quotes_new_subscriptions_at_once():
    m = SimulatedMarket(SPECS, 5)
    cache = QuoteCache()
    contract = OptionContract.parse("SPY   261218C00470000").symbol
    feed = SimulatedFeed(m, SimulatedClock(START.astimezone(UTC)))
    feed.attach(cache)

    feed.subscribe([contract])

    assert m.now == START
    assert cache.get(contract) == m.quote(contract)


def test_feed_refuses_a_non_positive_speed():
    with pytest.raises(ValueError, match="speed"):
        SimulatedFeed(SimulatedMarket(SPECS, 1), SimulatedClock(START), speed=0)


class StopAfter:
    """A sleep that lets `naps` pass, then stops the feed; records each nap."""

    def __init__(self, naps: int) -> None:
        self.naps: list[float] = []
        self.left = naps

    async def __call__(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.left -= 1
        if self.left < 0:
            raise Stop


class FrozenWall:
    """Wall time a test sets; sleeping until a moment moves it there (as the wall clock would, later)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.slept_until: list[datetime] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep_until(self, at: datetime) -> None:
        self.slept_until.append(at)
        self.now = at


async def test_on_wall_time_the_market_is_quoted_at_the_wall_clocks_time_in_a_session():
    wall = FrozenWall(datetime(2026, 11, 25, 11, 0, 7, tzinfo=MARKET_TZ))
    market = SimulatedMarket(SPECS, 7)
    feed = WallClockFeed(market, wall, sleep=StopAfter(0))
    cache = QuoteCache()

    with pytest.raises(Stop):
        await feed.run(cache)

    reference = SimulatedMarket(SPECS, 7)
    reference.start(wall.now)
    assert cache.get("SPY") == reference.quote("SPY")
    assert cache.get("SPY").ts == wall.now


async def test_on_wall_time_nothing_is_quoted_outside_a_session_until_the_next_open():
    sunday_night = datetime(2026, 11, 29, 17, 20, tzinfo=MARKET_TZ)
    wall = FrozenWall(sunday_night)
    feed = WallClockFeed(SimulatedMarket(SPECS, 7), wall, sleep=StopAfter(0))
    cache = QuoteCache()
    seen: list[datetime | None] = []
    cache.subscribe(lambda symbol, quote: seen.append(quote.ts))

    with pytest.raises(Stop):
        await feed.run(cache)

    monday_open = datetime(2026, 11, 30, 9, 30, tzinfo=MARKET_TZ)
    assert wall.slept_until == [monday_open]  # the night waited out on the clock, nothing quoted meanwhile
    assert set(seen) == {monday_open}
