"""A short scripted paper session through the real trading core, for a first look at the bot.

It opens, adds, trims and closes two positions on fixed quotes with the paper executor, and prints what
the ledger recorded.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from bot.options.clock import utc_now
from bot.options.contracts import OptionContract, Right
from bot.options.execution_paper import PaperConfig, PaperExecutor
from bot.options.order_manager import OptionsOrderManager
from bot.options.positions import Source
from bot.options.quotes import Quote, QuoteCache
from bot.options.trade_ledger import TradeEvent, TradeLedger
from bot.paths import ledger_path
from bot.render import event_line, money


def _quote(bid: str, ask: str) -> Quote:
    return Quote(bid=Decimal(bid), ask=Decimal(ask), bid_size=50, ask_size=50, ts=utc_now())


async def run_paper_session(storage: Path) -> list[TradeEvent]:
    expiry = date.today() + timedelta(days=7)
    spy = OptionContract("SPY", expiry, Right.CALL, Decimal(600))
    qqq = OptionContract("QQQ", expiry, Right.PUT, Decimal(510))
    quotes = QuoteCache()
    ledger = TradeLedger.open(ledger_path(storage))
    manager = OptionsOrderManager(PaperExecutor(quotes, PaperConfig(fee_per_contract=Decimal("0.65"))), ledger)
    recorded: list[TradeEvent] = []

    async def remember(event: TradeEvent, _position: object) -> None:
        recorded.append(event)
        print(event_line(event))

    manager.subscribe(remember)
    try:
        quotes.update(spy.symbol, _quote("1.15", "1.20"))
        quotes.update(qqq.symbol, _quote("2.40", "2.45"))
        call = await manager.open_position(spy, 10, strategy="scripted", source=Source.MANUAL, actor="demo")
        put = await manager.open_position(qqq, 4, strategy="scripted", source=Source.MANUAL, actor="demo")
        quotes.update(spy.symbol, _quote("1.45", "1.50"))
        await manager.add(call.position_id, 5, source=Source.MANUAL, actor="demo")
        quotes.update(spy.symbol, _quote("2.00", "2.05"))
        await manager.trim(call.position_id, percent=50, source=Source.MANUAL, actor="demo")
        quotes.update(qqq.symbol, _quote("1.90", "1.95"))
        await manager.close(put.position_id, source=Source.MANUAL, actor="demo")
        quotes.update(spy.symbol, _quote("1.00", "1.05"))
        call = await manager.close(call.position_id, source=Source.MANUAL, actor="demo")
    finally:
        ledger.close()
    total = sum((event.realized_pnl for event in recorded), Decimal(0))
    print(f"{len(recorded)} fills recorded in {ledger.path}; realized P&L {money(total)}")
    return recorded
