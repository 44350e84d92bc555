"""Paper fills from the quote cache: buys at the ask, sells at the bid, then the last trade, then the other side."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from bot.options.clock import Clock, utc_now
from bot.options.errors import OrderRejected
from bot.options.ids import new_id
from bot.options.orders import Fill, OrderRequest, Side
from bot.options.quotes import PRICE_FALLBACKS, QuoteCache

# Slippage rounds to the tick against the trader, so that any slip costs at least a tick, buys and sells alike.
_AGAINST_THE_TRADER = {Side.BUY: ROUND_CEILING, Side.SELL: ROUND_FLOOR}
_SIZE_FIELD = {"ask": "ask_size", "bid": "bid_size"}
_BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class PaperConfig:
    """Paper execution options; the defaults are the reference behaviour (full fill, no slippage, no fees)."""

    fee_per_contract: Decimal = Decimal(0)
    slippage_ticks: int = 0
    slippage_bps: Decimal = Decimal(0)
    tick: Decimal = Decimal("0.01")
    partial_fills: bool = False


class PaperExecutor:
    def __init__(self, quotes: QuoteCache, config: PaperConfig | None = None, clock: Clock = utc_now) -> None:
        self._quotes = quotes
        self._config = config or PaperConfig()
        self._clock = clock

    def fill_price(self, order: OrderRequest) -> tuple[Decimal, int | None]:
        """The price a paper fill gets and the displayed size behind it (None when unknown)."""
        symbol = order.contract.symbol
        quote = self._quotes.get(symbol)
        found = quote.first_usable(*PRICE_FALLBACKS[order.side]) if quote else None
        if quote is None or found is None:
            raise OrderRejected(f"No usable quote for {order.contract.label}; the order was not sent.")
        problem = self._quotes.problem(symbol, self._clock())
        if problem is not None:
            raise OrderRejected(f"Not filling {order.contract.label}: {problem}.")
        field, price = found
        size_field = _SIZE_FIELD.get(field)
        size = getattr(quote, size_field) if size_field else None
        return self._slipped(order.side, price), size

    def _slipped(self, side: Side, price: Decimal) -> Decimal:
        cfg = self._config
        slip = cfg.tick * cfg.slippage_ticks + price * cfg.slippage_bps / _BPS
        if not slip:
            return price
        slipped = price + slip if side is Side.BUY else price - slip
        # A sell never goes below one tick.
        return max(slipped.quantize(cfg.tick, rounding=_AGAINST_THE_TRADER[side]), cfg.tick)

    async def execute(self, order: OrderRequest) -> AsyncIterator[Fill]:
        price, size = self.fill_price(order)
        if order.limit_price is not None and (
            price > order.limit_price if order.side is Side.BUY else price < order.limit_price
        ):
            raise OrderRejected(
                f"The market for {order.contract.label} ({price}) is beyond the limit {order.limit_price}."
            )
        qty = order.qty
        if self._config.partial_fills and size is not None:
            qty = min(qty, size)
            if not qty:
                return  # nothing displayed at that price: the order ends with nothing filled
        yield Fill(
            fill_id=new_id("fill"),
            order_id=order.order_id,
            side=order.side,
            qty=qty,
            price=price,
            fees=self._config.fee_per_contract * qty,
            ts=self._clock(),
        )
