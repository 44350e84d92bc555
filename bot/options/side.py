"""Which way a trade goes. A position's fills, a ledger line and the risk check name a side; the order lifecycle in
bot/options/orders.py uses it too, and a command that only reads the books needs none of that lifecycle."""

from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"
