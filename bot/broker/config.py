"""Broker settings: the `[broker]` section (credentials are not settings: they come from the environment)."""

from decimal import Decimal
from typing import Annotated, Literal

from bot.settings_check import Section
from bot.settings_types import Dec, Flag, Real, within

Seconds = Annotated[Real, within(0, 3600, above=True, unit="seconds")]


class BrokerSettings(Section):
    """How the desk talks to Alpaca when `executor` is `alpaca-paper` or `alpaca-live`."""

    # `alpaca-live` trades real money: it starts only when this says so too.
    confirm_live: Flag = False
    # Overrides of Alpaca's endpoints (tests point them at a local fake); None: Alpaca's paper or live ones.
    trading_url: str | None = None
    trade_stream_url: str | None = None
    option_stream_url: str | None = None
    option_feed: Literal["indicative", "opra"] = "indicative"  # opra needs a paid market-data subscription
    stock_stream_url: str | None = None
    stock_feed: Literal["iex", "sip"] = "iex"  # the underlyings' quotes; sip needs a paid subscription
    # Alpaca's market-data REST API (historical bars for `python -m bot data alpaca`); None: Alpaca's own.
    data_url: str | None = None
    # Follow orders through the trade-updates stream; without it (or while it is silent) orders are polled.
    use_stream: Flag = True
    poll_interval_seconds: Seconds = 2.0
    # A working order left unfilled this long is cancelled at the broker (its filled part stays).
    order_timeout_seconds: Seconds = 60.0
    request_timeout_seconds: Seconds = 10.0
    reconcile_on_start: Flag = False
    # How often Alpaca is asked for the expiries, exercises and assignments of positions whose expiry day has come.
    activities_poll_seconds: Seconds = 300.0
    # New orders wait at start-up until the last run's orders are followed to their end (and the start-up
    # reconcile is done), at most this long: above order_timeout_seconds, which bounds an order still working.
    resume_timeout_seconds: Seconds = 90.0
    # Alpaca reports its fills without the fees it passes on (regulatory and clearing fees per contract):
    # what the account is charged per contract, recorded with each fill so realized P&L includes it.
    fee_per_contract: Annotated[Dec, within(0, 100)] = Decimal(0)
