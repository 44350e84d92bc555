"""The one error type of the trading core: its message is the sentence a trader reads."""


class TradeError(Exception):
    """A request the desk refuses; `str(error)` is a plain sentence for the trader.

    Raised before anything changes: a refused request leaves positions and the ledger as they were.
    """


class OrderRejected(TradeError):
    """An executor refused an order before filling any of it (no quote, a broker reject, ...)."""
