"""The one error type of the trading core: its message is the sentence a trader reads."""

import re

# What Discord would read as markdown or a mention, escaped so it shows as typed.
_FORMATTING = re.compile(r"([\\*_~`|<>@#\[\]()])")
SHOWN_LIMIT = 40


def shown(value: object) -> str:
    """A value someone typed, as a sentence may quote it: short, on one line, and shown as typed (no markdown, no
    mention, whatever it holds)."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        return "that number"
    text = text if len(text) <= SHOWN_LIMIT else text[: SHOWN_LIMIT - 3] + "..."
    return escaped(text)


def escaped(text: str) -> str:
    """`text` shown as typed where Discord reads markdown and mentions."""
    return _FORMATTING.sub(r"\\\1", text)


class TradeError(Exception):
    """A request the desk refuses; `str(error)` is a plain sentence for the trader.

    Raised before anything changes: a refused request leaves positions and the ledger as they were.
    """


class OrderRejected(TradeError):
    """An executor refused an order before filling any of it (no quote, a broker reject, ...)."""
