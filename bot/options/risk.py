"""Pre-trade risk: the desk's trading state and its limits, checked before any order reaches an executor.

Buys (opens and adds) take on risk and must pass every limit. Trims and closes take risk off, so only the
trading state applies to them: no limit on size, premium, time or quote quality ever keeps a trader or an
exit rule from getting out of a position (a halted desk does stop them: halted means no orders at all).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from bot.options.errors import TradeError
from bot.options.market_hours import MARKET_TZ, is_market_open, session_close, trading_day
from bot.options.repeats import Repeats
from bot.options.side import Side

if TYPE_CHECKING:
    from bot.options.contracts import OptionContract
    from bot.options.exposure import Exposure
    from bot.options.greeks import ContractGreeks, GreeksSource
    from bot.options.positions import Position
    from bot.options.quotes import Quote

_HUNDRED = Decimal(100)
_CENT = Decimal("0.01")


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCE_ONLY = "reduce-only"  # trims and closes only
    HALTED = "halted"  # no orders at all; open positions stay and are still shown


# The records here are NamedTuples, not frozen dataclasses: every command imports this module (the settings take its
# limits), and a dataclass takes Python 3.11 some 1.5 ms to make. It logs only when a desk refuses a buy, so it
# imports logging there, not at every command's start.
class DeskState(NamedTuple):
    """The trading state with why, who set it (`discord:<id>`, `operator`, `risk`) and when (UTC); set by
    `unknown` when it could not be known (see `unknown_state`)."""

    state: TradingState
    reason: str
    set_by: str
    set_at: datetime | None

    @property
    def known(self) -> bool:
        return self.set_by != UNKNOWN


# A desk whose state was never set trades.
NEVER_SET = DeskState(TradingState.ACTIVE, "never changed", "default", None)
UNKNOWN = "unknown"
_TIGHTNESS = (TradingState.ACTIVE, TradingState.REDUCE_ONLY, TradingState.HALTED)


def unknown_state(why: str) -> DeskState:
    """What a desk that cannot know its trading state holds: halted (never looser than what it may have been)."""
    return DeskState(TradingState.HALTED, why, UNKNOWN, None)


def looser(state: TradingState, than: TradingState) -> bool:
    """`state` lets through orders that `than` stops."""
    return _TIGHTNESS.index(state) < _TIGHTNESS.index(than)


class RiskLimits(NamedTuple):
    """The desk's limits; None (or False) switches one off. Money in dollars, times in New York."""

    max_contracts_per_order: int | None = 50
    max_open_positions: int | None = 10
    max_premium_per_position: Decimal | None = Decimal(10_000)
    max_premium_total: Decimal | None = Decimal(30_000)
    max_daily_loss: Decimal | None = Decimal(5_000)
    market_hours_only: bool = True
    no_entry_minutes_before_close: int | None = 5
    no_buy_expiring_today_after: time | None = time(15, 0)
    max_spread_pct: Decimal | None = Decimal(25)
    # The desk's net dollar delta (either way) and its vega in dollars per vol point; off unless set.
    max_net_delta: Decimal | None = None
    max_vega: Decimal | None = None

    @property
    def on_greeks(self) -> bool:
        return self.max_net_delta is not None or self.max_vega is not None


class RiskRefused(TradeError):
    """An order the desk's trading state or one of its limits refuses; nothing was sent or recorded."""


def dollars(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def cents(value: float | Decimal) -> Decimal:
    """A dollar figure at cents (rounded half up), as money is shown and limited; never a negative zero ("-0.00" for
    a theta of -0.001)."""
    return Decimal(value).quantize(_CENT, rounding=ROUND_HALF_UP) + 0


def premium_at_risk(position: Position) -> Decimal:
    """What a long-premium position can lose: its average entry times its contracts and multiplier."""
    return position.avg_entry * position.qty * position.contract.multiplier


def realized_on(positions: Iterable[Position], day: date) -> Decimal:
    """The P&L realized by fills on `day` (New York date), fees included."""
    # Between the day's two midnights rather than each fill's date in New York: asked at every order and fill over
    # every fill the desk has made, the conversions were a twelfth of a backtest's year.
    start = datetime.combine(day, time(0), MARKET_TZ)
    end = datetime.combine(day + timedelta(days=1), time(0), MARKET_TZ)
    return sum((a.realized_pnl for p in positions for a in p.actions if start <= a.ts < end), Decimal(0))


def loss_limit_reached(limits: RiskLimits, realized_today: Decimal) -> bool:
    """A loss of exactly the limit counts as reached."""
    return limits.max_daily_loss is not None and realized_today <= -limits.max_daily_loss


class PendingBuy(NamedTuple):
    """A buy sent and not yet wholly filled or ended: its unfilled contracts count against the desk-wide
    limits as if bought, so that buys need not wait for each other's fills to be checked safely."""

    position_id: str
    opening: bool  # the position had no fills when the buy was sent
    premium: Decimal  # of the unfilled contracts, at the price expected when the buy was checked
    contract: OptionContract
    qty: int  # the unfilled contracts


class Buy(NamedTuple):
    """A buy the desk is asked for: an open (the position has no fills yet) or an add."""

    position: Position
    qty: int
    price: Decimal | None  # what it is expected to fill at, from the quote (None: no usable quote)
    quote: Quote | None
    open_positions: list[Position]
    realized_today: Decimal
    now: datetime
    pending: Sequence[PendingBuy] = ()  # other buys in flight
    # The figures of this buy's contract and of every one held or being bought, by symbol (when a greek limit is on).
    greeks: Mapping[str, ContractGreeks] = MappingProxyType({})
    buying_power: Decimal | None = None  # the broker account's options buying power (None: no broker, or not known)

    @property
    def is_open(self) -> bool:
        return not self.position.actions


def state_refusal(state: TradingState, side: Side) -> str | None:
    if state is TradingState.HALTED:
        return "Refused: the desk is halted, so nothing is traded until an admin resumes it (/status says why)."
    if state is TradingState.REDUCE_ONLY and side is Side.BUY:
        return "Refused: the desk is reduce-only, so only trims and closes go through (/status says why)."
    return None


def expired_refusal(contract: OptionContract, now: datetime) -> str | None:
    """No order for a contract at or past its expiry's close: it is settled at intrinsic value, never traded."""
    close = session_close(contract.expiry)
    if now >= close:
        return f"Refused: {contract.label} expired at the close of {contract.expiry} ({_ny(close)}); it is not traded."
    return None


def _ny(now: datetime) -> str:
    return f"{now.astimezone(MARKET_TZ):%H:%M} New York"


def _hours(limits: RiskLimits, buy: Buy) -> str | None:
    if limits.market_hours_only and not is_market_open(buy.now):
        return (
            f"Refused by the market hours limit: it is {_ny(buy.now)} on {buy.now.astimezone(MARKET_TZ):%Y-%m-%d}, "
            "new entries only while the market is open (09:30 to the close, 16:00 or an early 13:00, on trading days)."
        )
    return None


def _before_close(limits: RiskLimits, buy: Buy) -> str | None:
    minutes = limits.no_entry_minutes_before_close
    if minutes is None:
        return None
    left = session_close(buy.now.astimezone(MARKET_TZ).date()) - buy.now
    if timedelta(0) < left <= timedelta(minutes=minutes):
        return (
            f"Refused by the no entries before the close limit: it is {_ny(buy.now)}, "
            f"{int(left.total_seconds() // 60)} minutes before the close, the limit is {minutes} minutes."
        )
    return None


def _expiring_today(limits: RiskLimits, buy: Buy) -> str | None:
    cutoff = limits.no_buy_expiring_today_after
    local = buy.now.astimezone(MARKET_TZ)
    contract = buy.position.contract
    if cutoff is not None and contract.expiry == local.date() and local.time() >= cutoff:
        return (
            f"Refused by the same-day expiry limit: {contract.label} expires today and it is {_ny(buy.now)}, "
            f"the limit is {cutoff:%H:%M}."
        )
    return None


def _contracts(limits: RiskLimits, buy: Buy) -> str | None:
    cap = limits.max_contracts_per_order
    if cap is not None and buy.qty > cap:
        return f"Refused by the max contracts per order limit: {buy.qty} contracts asked, the limit is {cap}."
    return None


def _spread(limits: RiskLimits, buy: Buy) -> str | None:
    cap = limits.max_spread_pct
    if cap is None:
        return None
    quote, label = buy.quote, buy.position.contract.label
    mid = quote.mid if quote is not None else None
    if quote is None or mid is None or quote.bid is None or quote.ask is None:
        return f"Refused by the quote quality limit: {label} has no two-sided quote to judge its spread by."
    spread_pct = (quote.ask - quote.bid) / mid * _HUNDRED
    if spread_pct > cap:
        return (
            f"Refused by the quote quality limit: the spread of {label} is {spread_pct:.1f}% of mid "
            f"({quote.bid}-{quote.ask}), the limit is {cap.normalize():f}%."
        )
    return None


def _premium(name: str, cap: Decimal | None, held: Decimal, where: str, buy: Buy) -> str | None:
    """Would the premium at risk (`held` now, plus this buy at its expected price) go over `cap`?"""
    if cap is None:
        return None
    if buy.price is None:
        return f"Refused by the {name} limit: there is no usable quote for {buy.position.contract.label} to price it."
    after = held + buy.price * buy.qty * buy.position.contract.multiplier
    if after > cap:
        return f"Refused by the {name} limit: {dollars(after)} would be at risk {where}, the limit is {dollars(cap)}."
    return None


def _position_premium(limits: RiskLimits, buy: Buy) -> str | None:
    held = premium_at_risk(buy.position)
    where = f"in {buy.position.contract.label}"
    return _premium("max premium per position", limits.max_premium_per_position, held, where, buy)


def _total_premium(limits: RiskLimits, buy: Buy) -> str | None:
    held = sum((premium_at_risk(p) for p in buy.open_positions), Decimal(0))
    held += sum((p.premium for p in buy.pending), Decimal(0))
    return _premium("max total premium", limits.max_premium_total, held, "across the desk", buy)


def _open_positions(limits: RiskLimits, buy: Buy) -> str | None:
    cap = limits.max_open_positions
    if cap is None or not buy.is_open:
        return None
    held = {p.position_id for p in buy.open_positions}
    opening = {p.position_id for p in buy.pending if p.opening} - held  # a partly filled open is held already
    if len(held) + len(opening) >= cap:
        being = f" and {len(opening)} being opened" if opening else ""
        return f"Refused by the max open positions limit: {len(held)} positions are open{being}, the limit is {cap}."
    return None


def _daily_loss(limits: RiskLimits, buy: Buy) -> str | None:
    if loss_limit_reached(limits, buy.realized_today):
        assert limits.max_daily_loss is not None
        return (
            f"Refused by the max daily loss limit: today's realized P&L is {dollars(buy.realized_today)}, "
            f"the limit is a loss of {dollars(limits.max_daily_loss)}."
        )
    return None


def _greek_exposure(name: str, buy: Buy) -> tuple[Exposure, Exposure] | str:
    """The desk's exposure before and after this buy, or the refusal when some contract has no figures."""
    from bot.options.exposure import Exposure, exposure  # only a desk with a greek limit on adds them up

    held = [(p.contract, p.qty) for p in buy.open_positions] + [(p.contract, p.qty) for p in buy.pending]
    exposures = []
    for contract, qty in [(buy.position.contract, buy.qty), *held]:
        reading = buy.greeks.get(contract.symbol)
        if reading is None:
            return f"Refused by the {name} limit: there are no greeks for {contract.label} to judge it by."
        exposures.append(exposure(reading, qty, contract.multiplier))
    before = sum(exposures[1:], Exposure())
    return before, before + exposures[0]


def _net_delta(limits: RiskLimits, buy: Buy) -> str | None:
    cap = limits.max_net_delta
    if cap is None:
        return None
    found = _greek_exposure("max net delta", buy)
    if isinstance(found, str):
        return found
    before, after = (cents(e.dollar_delta) for e in found)
    # A buy that brings a desk past the limit back towards it (a put against calls) is let through.
    if abs(after) > cap and abs(after) > abs(before):
        return (
            f"Refused by the max net delta limit: the desk's net dollar delta would be {dollars(after)}, "
            f"the limit is {dollars(cap)} either way."
        )
    return None


def _vega(limits: RiskLimits, buy: Buy) -> str | None:
    cap = limits.max_vega
    if cap is None:
        return None
    found = _greek_exposure("max vega", buy)
    if isinstance(found, str):
        return found
    after = cents(found[1].vega)
    if after > cap:
        return (
            f"Refused by the max vega limit: the desk's vega would be {dollars(after)} per vol point, "
            f"the limit is {dollars(cap)}."
        )
    return None


def _buying_power(limits: RiskLimits, buy: Buy) -> str | None:
    """Not a limit of the desk's but the broker's: a buy its options buying power cannot pay for would be refused
    there, so it is refused here first, in a sentence (always on at a broker)."""
    power = buy.buying_power
    if power is None:
        return None
    if buy.price is None:
        return f"Refused: there is no usable quote for {buy.position.contract.label} to price it against the account."
    needed = buy.price * buy.qty * buy.position.contract.multiplier + sum((p.premium for p in buy.pending), Decimal(0))
    if needed > power:
        return (
            f"Refused: the account's options buying power at the broker is {dollars(power)}, and this buy (with the "
            f"buys still working) needs {dollars(needed)}."
        )
    return None


# In the order a trader would look: when, what, how much, then the desk as a whole.
BUY_CHECKS: tuple[Callable[[RiskLimits, Buy], str | None], ...] = (
    _hours,
    _before_close,
    _expiring_today,
    _contracts,
    _spread,
    _position_premium,
    _total_premium,
    _open_positions,
    _net_delta,
    _vega,
    _daily_loss,
    _buying_power,
)


def buy_refusal(limits: RiskLimits, buy: Buy) -> str | None:
    """The first limit this buy breaks, as the sentence a trader reads; None when it may go."""
    for check in BUY_CHECKS:
        refusal = check(limits, buy)
        if refusal is not None:
            return refusal
    return None


def expected_buy_price(quote: Quote | None) -> Decimal | None:
    """What a buy is expected to fill at: the price the paper executor would take (ask, then last, bid)."""
    from bot.options.quotes import PRICE_FALLBACKS  # a desk's: the commands that read the books price nothing

    found = quote.first_usable(*PRICE_FALLBACKS[Side.BUY]) if quote is not None else None
    return found[1] if found is not None else None


def _always_active() -> DeskState:
    return NEVER_SET


def _unknown() -> Decimal | None:
    return None


class RiskCheck:
    """What the order manager runs before every order: the current trading state, then the limits.

    `state` gives the trading state as the desk knows it now (kept in memory, no I/O on the order path);
    `quote_of` gives the latest quote of a contract (OCC symbol), which prices a buy; `greeks` the figures the
    greek limits judge by (the desk's source, asked for what it holds now).
    """

    def __init__(
        self,
        limits: RiskLimits,
        quote_of: Callable[[str], Quote | None],
        state: Callable[[], DeskState] = _always_active,
        zone: tzinfo = MARKET_TZ,
        greeks: GreeksSource | None = None,
    ) -> None:
        self.limits = limits
        self._quote_of = quote_of
        self._state = state
        self._zone = zone  # whose day the daily loss is counted on
        self._greeks = greeks
        # The broker account's options buying power as last read (a broker desk hands in its own).
        self.buying_power: Callable[[], Decimal | None] = _unknown
        # The refusal last said of each position and side: an exit rule a halted desk refuses asks again at every
        # quote, and the operator reads it once.
        self._said = Repeats()

    def expected_price(self, contract: OptionContract) -> Decimal | None:
        """What a buy of `contract` is expected to fill at now (None without a usable quote)."""
        return expected_buy_price(self._quote_of(contract.symbol))

    def check(
        self,
        position: Position,
        side: Side,
        qty: int,
        positions: Iterable[Position],
        now: datetime,
        pending: Iterable[PendingBuy] = (),
    ) -> Decimal | None:
        """Raise RiskRefused with the sentence a trader reads when this order must not go out; for a buy that
        may go, return the price it is expected to fill at (None without a usable quote)."""
        desk = self._state()
        refusal = expired_refusal(position.contract, now) or state_refusal(desk.state, side)
        price = None
        if refusal is None and side is Side.BUY:
            everything = list(positions)
            quote = self._quote_of(position.contract.symbol)
            price = expected_buy_price(quote)
            held = [p for p in everything if p.is_open]
            in_flight = list(pending)
            figures: Mapping[str, ContractGreeks] = {}
            if self.limits.on_greeks and self._greeks is not None:
                contracts = {p.contract for p in [position, *held]} | {p.contract for p in in_flight}
                figures = self._greeks.greeks(contracts, now)
            realized = realized_on(everything, trading_day(now, self._zone))
            buy = Buy(position, qty, price, quote, held, realized, now, in_flight, figures, self.buying_power())
            refusal = buy_refusal(self.limits, buy)
        key = (position.position_id, side)
        if refusal is None:
            self._said.forget(key)
            return price
        import logging

        logging.getLogger(__name__).log(
            logging.DEBUG if self._said.again(key, refusal) else logging.WARNING,
            "risk refused %s %d %s (%s): %s",
            side,
            qty,
            position.contract.label,
            position.position_id,
            refusal,
        )
        raise RiskRefused(refusal)
