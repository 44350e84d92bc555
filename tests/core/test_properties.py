"""Property test: after any sequence of quotes and requests (good and bad), the ledger replays to exactly the
order manager's positions, and a refused request changes neither the positions nor the ledger file."""

from __future__ import annotations

import asyncio
import math
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from bot.options.contracts import OptionContract, Right
from bot.options.errors import TradeError
from bot.options.execution_paper import PaperConfig, PaperExecutor
from bot.options.ledger_verify import verify_events
from bot.options.order_manager import OptionsOrderManager
from bot.options.orders import Side
from bot.options.positions import ActionKind, Position, PositionStatus
from bot.options.quotes import Quote, QuoteCache
from bot.options.trade_ledger import TradeEvent, TradeLedger, parse_line, read_ledger, replay

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
UNKNOWN_ID = "pos-that-was-never-opened"

CONTRACTS = (
    OptionContract("SPY", date(2026, 11, 27), Right.CALL, Decimal(450)),
    OptionContract("SPY", date(2026, 11, 27), Right.PUT, Decimal("440.5")),
    OptionContract("XSP", date(2026, 12, 18), Right.CALL, Decimal(60), multiplier=10),
)


class TickingClock:
    """A test clock that moves one second forward each time it is read."""

    def __init__(self) -> None:
        self._now = T0

    def __call__(self) -> datetime:
        self._now += timedelta(seconds=1)
        return self._now


# --- request inputs, each drawn with what a correct parser makes of it (None: must be refused) ---------------


def _spellings_of(n: int) -> st.SearchStrategy[tuple[object, int]]:
    return st.sampled_from([n, str(n), f" {n} ", float(n), Decimal(n)]).map(lambda value: (value, n))


BAD_AMOUNTS = [0, "0", -1, -5, "-2", 1.5, "1.5", Decimal("2.5"), "1e-3", float("nan"), "nan", Decimal("NaN")]
BAD_AMOUNTS += [float("inf"), "-Infinity", "abc", "", "   ", True, None, [2]]
GOOD_QTY = st.integers(1, 6).flatmap(_spellings_of)
BAD_QTY = st.sampled_from(BAD_AMOUNTS).map(lambda value: (value, None))
QTY = st.one_of(GOOD_QTY, GOOD_QTY, BAD_QTY)  # mostly good, so that positions live long enough to trade
# Well-formed but far more than any position here holds (at most a few hundred contracts).
HUGE_QTY = st.sampled_from([10_000, "10000", 1_000_000, 10**9]).map(lambda value: (value, int(value)))
TRIM_QTY = st.one_of(QTY, HUGE_QTY)

GOOD_PERCENT = st.one_of(
    st.integers(1, 100).map(lambda p: (p, Fraction(p))),
    st.sampled_from(["50", " 25 ", 12.5, 0.5, Decimal("33.3"), "99.9", "100"]).map(
        lambda p: (p, Fraction(Decimal(p.strip() if isinstance(p, str) else p)))
    ),
)
BAD_PERCENT = st.sampled_from([0, "0", -5, "-5", 150, "150", 100.01, float("nan"), "nan", float("inf"), "abc"]).map(
    lambda p: (p, None)
)
PERCENT = st.one_of(GOOD_PERCENT, GOOD_PERCENT, BAD_PERCENT)

CENTS = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99.99"), places=2)
PRICE = st.one_of(CENTS, st.sampled_from([None, Decimal(0)]))
SIZE = st.one_of(st.none(), st.integers(0, 8))
PICK = st.integers(0, 1_000)  # which known position (modulo how many there are)


@dataclass(frozen=True)
class Expected:
    """What the paper executor must do with an accepted order."""

    side: Side
    qty: int
    price: Decimal


def _paper_price(quote: Quote | None, side: Side) -> tuple[Decimal, int | None] | None:
    """The reference fill rule, written out: buy at the ask, sell at the bid; else last; else the other side.

    (The mid is never reached: it needs both a bid and an ask, and the first choice is one of them.)
    A crossed quote (bid above ask) is not traded on.
    """
    if quote is None or (quote.bid and quote.ask and quote.bid > quote.ask > 0):
        return None
    own, own_size, other, other_size = (
        (quote.ask, quote.ask_size, quote.bid, quote.bid_size)
        if side is Side.BUY
        else (quote.bid, quote.bid_size, quote.ask, quote.ask_size)
    )
    for price, size in ((own, own_size), (quote.last, None), (other, other_size)):
        if price is not None and price > 0:
            return price, size
    return None


def _line_kinds_match_their_effects(events: list[TradeEvent]) -> None:
    open_qty: dict[str, int] = {}
    for event in events:
        before = open_qty.get(event.position_id)
        if event.side is Side.BUY:
            assert event.kind is (ActionKind.OPEN if before is None else ActionKind.ADD), event
            assert event.position_qty == (before or 0) + event.qty, event
        else:
            assert before is not None and event.qty <= before, f"sold more than was open: {event}"
            assert event.position_qty == before - event.qty, event
            assert event.kind is (ActionKind.CLOSE if event.position_qty == 0 else ActionKind.TRIM), event
        assert before != 0, f"a closed position was traded again: {event}"
        open_qty[event.position_id] = event.position_qty


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory()
        self.path = Path(self._tmp.name) / "options" / "trade_events.jsonl"
        self.runner = asyncio.Runner()
        self.quotes = QuoteCache()
        self.ledger = TradeLedger.open(self.path)
        self.config = PaperConfig()
        self.manager = self._manager(self.config)
        self.fills = 0
        self.refusals = 0

    def _manager(self, config: PaperConfig) -> OptionsOrderManager:
        clock = TickingClock()
        return OptionsOrderManager(PaperExecutor(self.quotes, config, clock=clock), self.ledger, clock=clock)

    def teardown(self) -> None:
        self.ledger.close()
        self.runner.close()
        self._tmp.cleanup()

    # --- helpers ---------------------------------------------------------------------------------------------

    def live(self) -> dict[str, Position]:
        return {position.position_id: position for position in self.manager.all_positions()}

    def pick(self, which: int) -> str:
        ids = list(self.live())
        return ids[which % len(ids)] if ids else UNKNOWN_ID

    def expect_sell(self, position_id: str, qty: int | None) -> Expected | None:
        position = self.live().get(position_id)
        if position is None or not position.is_open or qty is None or qty > position.qty:
            return None
        return self.expect(position.contract, Side.SELL, qty)

    def expect(self, contract: OptionContract, side: Side, qty: int | None) -> Expected | None:
        found = _paper_price(self.quotes.get(contract.symbol), side)
        if qty is None or found is None:
            return None
        price, size = found
        if not self.config.partial_fills or size is None:
            return Expected(side, qty, price)
        # At most the displayed size; with none displayed the order ends unfilled, which the trader hears as a refusal.
        return Expected(side, min(qty, size), price) if size else None

    def attempt(self, request, expected: Expected | None, position_id: str | None) -> None:
        """Run one request and check it against the expectation: refused with nothing changed, or one fill."""
        positions_before, bytes_before = self.live(), self.path.read_bytes()
        try:
            result = self.runner.run(request)
        except TradeError:
            assert expected is None, f"refused, but should have filled {expected}"
            # (b) a refusal changes nothing, in memory or on disk.
            assert self.live() == positions_before
            assert self.path.read_bytes() == bytes_before
            self.refusals += 1
            return
        assert expected is not None, f"should have been refused, but gave {result}"
        self.fills += 1
        self.check_one_fill(result, expected, position_id, positions_before, bytes_before)

    def check_one_fill(
        self,
        result: Position,
        expected: Expected,
        position_id: str | None,
        positions_before: dict[str, Position],
        bytes_before: bytes,
    ) -> None:
        data = self.path.read_bytes()
        assert data.startswith(bytes_before), "the ledger was rewritten, not appended to"
        new_lines = data[len(bytes_before) :].splitlines()
        assert len(new_lines) == 1, "one paper fill must append exactly one ledger line"
        event = parse_line(self.path, 0, new_lines[0])
        assert position_id in (None, result.position_id)
        assert (event.position_id, event.side, event.qty, event.price) == (
            result.position_id,
            expected.side,
            expected.qty,
            expected.price,
        )
        assert event.fees == self.config.fee_per_contract * expected.qty
        assert self.live()[result.position_id] == result
        before = positions_before.get(result.position_id)
        before_qty = before.qty if before else 0
        change = expected.qty if expected.side is Side.BUY else -expected.qty
        assert result.qty == before_qty + change
        others = {pid: p for pid, p in self.live().items() if pid != result.position_id}
        assert others == {pid: p for pid, p in positions_before.items() if pid != result.position_id}

    # --- rules -------------------------------------------------------------------------------------------------

    @initialize(fee=st.sampled_from([Decimal(0), Decimal("0.65")]), partial_fills=st.booleans())
    def configure_paper_fills(self, fee: Decimal, partial_fills: bool) -> None:
        self.config = PaperConfig(fee_per_contract=fee, partial_fills=partial_fills)
        self.manager = self._manager(self.config)

    @initialize(bids=st.lists(CENTS, min_size=3, max_size=3), spread=st.sampled_from(["0", "0.01", "0.05", "0.20"]))
    def every_contract_has_a_two_sided_market(self, bids, spread) -> None:
        for contract, bid in zip(CONTRACTS, bids, strict=True):
            self.quotes.update(contract.symbol, Quote(bid, bid + Decimal(spread), None, 5, 5, T0))

    @rule(contract=st.sampled_from(CONTRACTS), bid=PRICE, ask=PRICE, last=PRICE, bid_size=SIZE, ask_size=SIZE)
    def quote_changes(self, contract, bid, ask, last, bid_size, ask_size) -> None:
        self.quotes.update(contract.symbol, Quote(bid, ask, last, bid_size, ask_size, T0))

    @rule(contract=st.sampled_from(CONTRACTS))
    def market_goes_dark(self, contract) -> None:
        self.quotes.update(contract.symbol, Quote())

    @rule(contract=st.sampled_from(CONTRACTS), qty=QTY)
    def open_position(self, contract, qty) -> None:
        value, parsed = qty
        expected = self.expect(contract, Side.BUY, parsed)
        self.attempt(self.manager.open_position(contract, value, strategy="prop"), expected, None)

    @rule(which=PICK, qty=QTY)
    def add(self, which, qty) -> None:
        position_id, (value, parsed) = self.pick(which), qty
        position = self.live().get(position_id)
        expected = self.expect(position.contract, Side.BUY, parsed) if position and position.is_open else None
        self.attempt(self.manager.add(position_id, value), expected, position_id)

    @rule(which=PICK, qty=TRIM_QTY)
    def trim_by_quantity(self, which, qty) -> None:
        position_id, (value, parsed) = self.pick(which), qty
        expected = self.expect_sell(position_id, parsed)
        self.attempt(self.manager.trim(position_id, qty=value), expected, position_id)

    @rule(which=PICK, percent=PERCENT)
    def trim_by_percent(self, which, percent) -> None:
        position_id, (value, share) = self.pick(which), percent
        position = self.live().get(position_id)
        qty = None
        if position is not None and share is not None:
            qty = max(1, math.floor(position.qty * share / 100))
        self.attempt(self.manager.trim(position_id, percent=value), self.expect_sell(position_id, qty), position_id)

    @rule(which=PICK, qty=GOOD_QTY, percent=GOOD_PERCENT, both=st.booleans())
    def trim_by_both_or_neither(self, which, qty, percent, both) -> None:
        position_id = self.pick(which)
        request = (
            self.manager.trim(position_id, qty=qty[0], percent=percent[0]) if both else self.manager.trim(position_id)
        )
        self.attempt(request, None, position_id)

    @rule(which=PICK)
    def close(self, which) -> None:
        position_id = self.pick(which)
        position = self.live().get(position_id)
        self.attempt(self.manager.close(position_id), self.expect_sell(position_id, position and position.qty), None)

    @rule(action=st.sampled_from(["add", "trim", "trim%", "close"]))
    def trade_an_unknown_position(self, action) -> None:
        requests = {
            "add": lambda: self.manager.add(UNKNOWN_ID, 1),
            "trim": lambda: self.manager.trim(UNKNOWN_ID, qty=1),
            "trim%": lambda: self.manager.trim(UNKNOWN_ID, percent=50),
            "close": lambda: self.manager.close(UNKNOWN_ID),
        }
        self.attempt(requests[action](), None, UNKNOWN_ID)

    # --- invariants (checked after every step) -----------------------------------------------------------------

    @invariant()
    def the_ledger_replays_to_the_live_positions(self) -> None:
        contents = read_ledger(self.path)
        assert contents.torn_tail == b""
        assert len(contents.events) == self.fills
        replayed, live = replay(contents.events), self.live()
        assert replayed.keys() == live.keys()
        for position_id, position in live.items():
            rebuilt = replayed[position_id]
            fields = ("qty", "avg_entry", "realized_pnl", "fees", "status", "actions")
            assert {f: getattr(rebuilt, f) for f in fields} == {f: getattr(position, f) for f in fields}
            assert rebuilt == position
        report = verify_events(contents.events)
        assert report.ok, report.problems

    @invariant()
    def quantities_are_never_negative_and_kinds_match_effects(self) -> None:
        for position in self.manager.all_positions():
            assert position.qty >= 0
            assert (position.status is PositionStatus.CLOSED) == (position.qty == 0)
        _line_kinds_match_their_effects(read_ledger(self.path).events)


def test_the_ledger_replays_to_the_live_positions_and_refusals_change_nothing() -> None:
    run_state_machine_as_test(LedgerMachine, settings=settings(max_examples=150, stateful_step_count=50, deadline=None))


# --- OCC symbols ---------------------------------------------------------------------------------------------------

# Roots and strikes from well inside and just outside what an OCC symbol can carry.
ROOT_TEXT = st.text(alphabet="ABCXYZ019.az -_\u0130\u0131\uff11", min_size=0, max_size=8)
STRIKES = st.decimals(min_value=Decimal("-1"), max_value=Decimal("100000.5"), places=4) | st.decimals(places=3)
EXPIRIES = st.dates(min_value=date(1995, 1, 1), max_value=date(2105, 12, 31))
CONTRACT_PARTS = {
    "underlying": ROOT_TEXT,
    "expiry": EXPIRIES,
    "right": st.sampled_from(Right),
    "strike": STRIKES,
}


@given(**CONTRACT_PARTS)
def test_a_contract_round_trips_through_its_occ_symbol_or_is_refused(underlying, expiry, right, strike) -> None:
    try:
        contract = OptionContract(underlying, expiry, right, strike)
    except TradeError:
        return
    assert len(contract.symbol) == 21
    assert OptionContract.parse(contract.symbol) == contract
    assert OptionContract.parse(contract.compact) == contract


@given(
    underlying=st.from_regex(r"[A-Z][A-Z0-9.]{0,5}", fullmatch=True),
    expiry=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    right=st.sampled_from(Right),
    strike=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("99999.999"), places=3),
)
def test_every_contract_an_occ_symbol_can_carry_is_accepted(underlying, expiry, right, strike) -> None:
    assert OptionContract.parse(OptionContract(underlying, expiry, right, strike).symbol).strike == strike
