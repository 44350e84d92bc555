"""The desk at a glance, for `/status` and `python -m bot status`: one model, one text renderer, one JSON form.

Trading state and why, feed health (seconds since each underlying's last quote), open positions and the
premium at risk against the limits, the desk's net dollar delta, daily theta and vega against theirs, today's
realized P&L against the loss limit, the Discord backlog and the uptime. Offline (the shell) there is no feed and
no uptime, and the status says so.
"""

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from bot.options.market_hours import MARKET_TZ, is_market_open, next_session_open, session_close, trading_day
from bot.options.risk import DeskState, RiskLimits, cents, dollars, premium_at_risk, realized_on

if TYPE_CHECKING:
    from bot.options.exposure import Exposure
    from bot.options.greeks import ContractGreeks
    from bot.options.positions import Position
    from bot.options.quotes import QuoteCache

MAX_LISTED = 15  # positions listed one by one; a Discord embed holds 4,096 characters


# Not a frozen dataclass, which takes 1.5 ms of `status` to make (16 fields); no annotations from __future__ in this
# module, as typing would compile each field's type given as text (~30 us a field).
class DeskStatus(NamedTuple):
    now: datetime
    trading: DeskState
    limits: RiskLimits
    open_positions: "list[Position]"
    realized_today: Decimal
    quote_ages: dict[str, float | None] | None  # underlying -> seconds since its last quote; None: no feed here
    backlog: int | None  # position-message updates not yet delivered to Discord; None: unknown
    uptime: timedelta | None  # None: the bot is not running here
    discord: str | None = None  # the link of the desk holding the storage, seen from the shell ("connected", ...)
    zone: tzinfo = MARKET_TZ  # whose day "today" is
    # The open positions' greeks summed, and where the figures came from; None: not known here, or some open
    # position has no figures (`greeks_note` says which).
    exposure: "Exposure | None" = None
    greeks_source: str | None = None
    greeks_note: str = "not known here"
    broker: str | None = None  # the broker account ("Alpaca paper, options level 2, ..."); None: paper, or not known

    @property
    def day(self) -> date:
        return trading_day(self.now, self.zone)

    @property
    def premium_total(self) -> Decimal:
        return sum((premium_at_risk(p) for p in self.open_positions), Decimal(0))


def desk_status(
    *,
    now: datetime,
    trading: DeskState,
    limits: RiskLimits,
    positions: "Iterable[Position]",
    quote_ages: dict[str, float | None] | None,
    backlog: int | None,
    uptime: timedelta | None,
    discord: str | None = None,
    zone: tzinfo = MARKET_TZ,
    greeks: "Mapping[str, ContractGreeks] | None" = None,
    greeks_note: str = "not known here",
    broker: str | None = None,
) -> DeskStatus:
    """`greeks`: the figures of the open positions' contracts by symbol (None: not known here, `greeks_note` why)."""
    everything = list(positions)
    opened = [p for p in everything if p.is_open]
    realized = realized_on(everything, trading_day(now, zone))
    held, source = None, None
    if greeks is not None:
        from bot.options.exposure import Exposure, exposure  # `state` shows no figures, and needs none of this

        missing = sorted({p.contract.label for p in opened if p.contract.symbol not in greeks})
        if missing:
            greeks_note = f"no figures for {', '.join(missing)}"
        else:
            held = sum((exposure(greeks[p.contract.symbol], p.qty, p.contract.multiplier) for p in opened), Exposure())
            source = ", ".join(sorted({greeks[p.contract.symbol].source for p in opened})) or "no open positions"
    return DeskStatus(
        now,
        trading,
        limits,
        opened,
        realized,
        quote_ages,
        backlog,
        uptime,
        discord,
        zone,
        held,
        source,
        greeks_note,
        broker=broker,
    )


def quote_ages(quotes: "QuoteCache", symbols: Iterable[str], now: datetime) -> dict[str, float | None]:
    """Seconds since each symbol's last quote (None: never quoted), for the feed's health."""
    ages: dict[str, float | None] = {}
    for symbol in sorted(set(symbols)):
        quote = quotes.get(symbol)
        ages[symbol] = None if quote is None or quote.ts is None else max(0.0, (now - quote.ts).total_seconds())
    return ages


def _limit(value: object, show: Callable[[object], str] = str) -> str:
    return "no limit" if value is None else f"limit {show(value)}"


def _money(value: object) -> str:
    assert isinstance(value, Decimal)
    return dollars(value)


def _age(seconds: float | None) -> str:
    return "no quote yet" if seconds is None else f"{seconds:.0f} s ago"


def _uptime(uptime: timedelta) -> str:
    minutes = int(uptime.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _as_is(text: str) -> str:
    return text


def trading_line(trading: DeskState, escape: Callable[[str], str] = _as_is, who: Callable[[str], str] = _as_is) -> str:
    """`who` names whoever set the state (on Discord: a member as a mention, shown as their name)."""
    state = trading.state.value.upper()
    if not trading.known:
        return f"Trading: {state} (unknown: {escape(trading.reason)}); the desk waits for an admin to resume"
    if trading.set_at is None:
        return f"Trading: {state} (never changed)"
    since = f"{trading.set_at.astimezone(MARKET_TZ):%Y-%m-%d %H:%M} New York"
    return f"Trading: {state} since {since}, set by {who(trading.set_by)}: {escape(trading.reason)}"


def market_line(now: datetime) -> str:
    """Whether the market is open at `now`, until when, or when it opens next (in New York time)."""
    if is_market_open(now):
        return f"Market: open until {session_close(trading_day(now)):%H:%M} New York"
    opens = next_session_open(now)
    return f"Market: closed; opens {opens:%a %Y-%m-%d %H:%M} New York"


def render_status(status: DeskStatus, escape: Callable[[str], str] = _as_is, who: Callable[[str], str] = _as_is) -> str:
    """Plain text, one fact a line; `escape` guards free text (a reason) where markup counts (Discord), `who` names
    whoever set the trading state."""
    limits = status.limits
    lines = [trading_line(status.trading, escape, who), market_line(status.now)]
    if status.quote_ages is None:
        lines.append("Feed: none here (offline: no live quotes)")
    else:
        feed = ", ".join(f"{symbol} {_age(age)}" for symbol, age in status.quote_ages.items())
        lines.append(f"Feed: {feed or 'no symbols watched'}")
    lines.append(f"Open positions: {len(status.open_positions)} ({_limit(limits.max_open_positions)})")
    lines.append(f"Premium at risk: {dollars(status.premium_total)} ({_limit(limits.max_premium_total, _money)})")
    per_position = _limit(limits.max_premium_per_position, _money)
    for position in status.open_positions[:MAX_LISTED]:
        lines.append(
            f"  {position.contract.label} ({position.qty}): {dollars(premium_at_risk(position))} ({per_position})"
        )
    if len(status.open_positions) > MAX_LISTED:
        lines.append(f"  … and {len(status.open_positions) - MAX_LISTED} more")
    lines.extend(greeks_lines(status))
    loss = "no loss limit" if limits.max_daily_loss is None else f"loss limit {dollars(limits.max_daily_loss)}"
    lines.append(f"Realized P&L today ({status.day}): {dollars(status.realized_today)} ({loss})")
    if status.backlog is None:
        lines.append("Discord backlog: unknown (the message map cannot be read)")
    else:
        lines.append(f"Discord backlog: {status.backlog} message update(s) waiting")
    if status.broker is not None:
        lines.append(f"Broker: {status.broker}")
    if status.discord is not None:
        lines.append(f"Discord: {status.discord}")
    lines.append(f"Uptime: {_uptime(status.uptime)}" if status.uptime is not None else "Uptime: not running here")
    return "\n".join(lines)


def greeks_lines(status: DeskStatus) -> list[str]:
    """The desk's net dollar delta, daily theta and vega, against their limits, with where the figures come from."""
    held, limits = status.exposure, status.limits
    if held is None:
        return [f"Greeks: {status.greeks_note}"]
    either_way = _limit(limits.max_net_delta, _money) + (" either way" if limits.max_net_delta is not None else "")
    return [
        f"Greeks ({status.greeks_source}):",
        f"  Net dollar delta: {dollars(cents(held.dollar_delta))} ({either_way})",
        f"  Theta: {dollars(cents(held.theta))} a day",
        f"  Vega: {dollars(cents(held.vega))} per vol point ({_limit(limits.max_vega, _money)})",
    ]


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def state_json(trading: DeskState) -> dict[str, object]:
    return {
        "state": trading.state.value,
        "reason": trading.reason,
        "set_by": trading.set_by,
        "set_at": trading.set_at.isoformat() if trading.set_at else None,
    }


def status_json(status: DeskStatus) -> dict[str, object]:
    limits = status.limits
    return {
        "now": status.now.isoformat(),
        "trading_state": state_json(status.trading),
        "market": {
            "open": is_market_open(status.now),
            "next_open": None if is_market_open(status.now) else next_session_open(status.now).isoformat(),
        },
        "feed": status.quote_ages,
        "open_positions": [
            {
                "position_id": p.position_id,
                "symbol": p.contract.symbol,
                "qty": p.qty,
                "premium_at_risk": str(cents(premium_at_risk(p))),
            }
            for p in status.open_positions
        ],
        "premium_at_risk": str(cents(status.premium_total)),
        "realized_pnl_today": str(cents(status.realized_today)),
        # Dollars at cents (an average entry of thirds is not); net dollar delta, theta a calendar day; null when not
        # known here.
        "net_delta": None if status.exposure is None else str(cents(status.exposure.dollar_delta)),
        "theta": None if status.exposure is None else str(cents(status.exposure.theta)),
        "vega": None if status.exposure is None else str(cents(status.exposure.vega)),
        "greeks_source": status.greeks_source,
        "day": status.day.isoformat(),
        "limits": {
            "max_open_positions": limits.max_open_positions,
            "max_premium_total": _text(limits.max_premium_total),
            "max_premium_per_position": _text(limits.max_premium_per_position),
            "max_daily_loss": _text(limits.max_daily_loss),
            "max_net_delta": _text(limits.max_net_delta),
            "max_vega": _text(limits.max_vega),
        },
        "discord_backlog": status.backlog,
        "discord": status.discord,
        "broker": status.broker,
        "uptime_seconds": status.uptime.total_seconds() if status.uptime is not None else None,
    }
