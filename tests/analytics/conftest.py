"""The simcord desk of the Discord tests, with the fixtures it is built from, found by pytest here too."""

import pytest

from bot.analytics import ledger_scan
from tests.discord.conftest import bots, clock, desk, simcord_bot, storage

__all__ = ["bots", "clock", "desk", "simcord_bot", "storage"]


@pytest.fixture(autouse=True)
def fast_read_of_any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The analytics tests hold the fast read (polars and DuckDB) to the pure model on small ledgers, which the desk
    itself reads with the pure model (see PURE_BELOW): here every ledger takes the fast read, as a large one does."""
    monkeypatch.setattr(ledger_scan, "PURE_BELOW", 0)
