"""Hand-made ledgers: fills written as the desk writes them (real TradeEvent lines), at New York times."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.options.contracts import OptionContract
from bot.options.orders import Side
from bot.options.positions import Position, Source
from bot.options.trade_ledger import TradeEvent

NEW_YORK = ZoneInfo("America/New_York")
SPY = OptionContract.parse("SPY   261127C00450000")
QQQ = OptionContract.parse("QQQ   261127P00400000")


def ny(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=NEW_YORK)


class LedgerWriter:
    """Writes fills of named positions to a ledger file, each line a real TradeEvent."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[TradeEvent] = []
        self.positions: dict[str, Position] = {}
        path.parent.mkdir(parents=True, exist_ok=True)

    def fill(
        self,
        name: str,
        side: str,
        qty: int,
        price: str,
        at: datetime,
        *,
        fees: str = "1",
        contract: OptionContract = SPY,
        strategy: str = "orb",
    ) -> TradeEvent:
        position = self.positions.get(name) or Position(f"pos-{name}", contract, strategy)
        n = len(self.events) + 1
        position, action = position.with_fill(
            side=Side(side),
            qty=qty,
            price=Decimal(price),
            fees=Decimal(fees),
            ts=at,
            fill_id=f"fill-{n}",
            order_id=f"ord-{n}",
            source=Source.STRATEGY,
        )
        self.positions[name] = position
        event = TradeEvent.record(f"evt-{n}", position, action)
        self.events.append(event)
        with self.path.open("ab") as out:
            out.write(event.to_line())
        return event

    def buy(self, name: str, qty: int, price: str, at: datetime, **kw: object) -> TradeEvent:
        return self.fill(name, "buy", qty, price, at, **kw)  # type: ignore[arg-type]

    def sell(self, name: str, qty: int, price: str, at: datetime, **kw: object) -> TradeEvent:
        return self.fill(name, "sell", qty, price, at, **kw)  # type: ignore[arg-type]


def four_days(writer: LedgerWriter) -> LedgerWriter:
    """Tue 24th: a win (partial fills, multi-trim) and a loss; Wed 25th: only adds; Thu 26th: Thanksgiving;
    Fri 27th: the adds closed at a loss; Mon 30th: a win between 18:30 and 19:30 New York, across midnight UTC."""
    w = writer
    w.buy("a", 4, "1.00", ny(24, 10))
    w.buy("a", 2, "1.30", ny(24, 10, 5))  # an add filled in two parts
    w.buy("a", 4, "1.30", ny(24, 10, 5, 1))
    w.buy("b", 2, "3.00", ny(24, 10, 30), contract=QQQ, strategy="meanrev")
    w.sell("a", 5, "1.50", ny(24, 11))
    w.sell("a", 3, "1.00", ny(24, 12))
    w.sell("a", 2, "2.00", ny(24, 13))
    w.sell("b", 2, "2.00", ny(24, 14), contract=QQQ, strategy="meanrev")
    w.buy("c", 1, "1.00", ny(25, 15))
    w.buy("c", 1, "1.10", ny(25, 15, 30))
    w.sell("c", 2, "0.50", ny(27, 10))
    w.buy("d", 1, "2.00", ny(30, 18, 30))
    w.sell("d", 1, "2.50", ny(30, 19, 30))
    return w
