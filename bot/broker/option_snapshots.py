"""Greeks from Alpaca's option snapshots (alpaca-py's option data client): delta, gamma, theta, vega and the implied
volatility Alpaca works out for each contract, fetched for the contracts the desk asks about.

Asked without I/O (risk asks on the order path), the source answers from the snapshots fetched last; a contract
without a recent one, or every contract while Alpaca fails, gets the model's figures, its source saying so.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from alpaca.data.enums import OptionsFeed
from alpaca.data.historical.option import OptionHistoricalDataClient
from alpaca.data.models.snapshots import OptionsSnapshot
from alpaca.data.requests import OptionSnapshotRequest

from bot.options.contracts import OptionContract
from bot.options.greeks import ContractGreeks, Greeks, ModelGreeks

log = logging.getLogger(__name__)

ALPACA = "Alpaca"
STANDING_IN = "model (Alpaca unavailable)"
# A snapshot's figures are used this long: the spot they were taken at moves on.
MAX_AGE = timedelta(minutes=5)


class AlpacaGreeks:
    def __init__(self, client: OptionHistoricalDataClient, model: ModelGreeks, *, feed: str = "indicative") -> None:
        self._client = client
        self._model = model
        self._feed = OptionsFeed(feed)
        self._figures: dict[str, tuple[Greeks, datetime]] = {}  # by OCC symbol: the figures, and when fetched
        self._failing = False

    async def load(self, contracts: Iterable[OptionContract], now: datetime) -> None:
        by_compact = {c.compact: c for c in contracts}
        if not by_compact:
            return
        request = OptionSnapshotRequest(symbol_or_symbols=sorted(by_compact), feed=self._feed)
        try:
            snapshots = await asyncio.to_thread(self._client.get_option_snapshot, request)
        except Exception as error:  # whatever the SDK or the network raise, the model stands in
            if not self._failing:
                log.warning(
                    "Alpaca's option snapshots failed (%s); greeks come from the model until they answer again "
                    "(check the data API: [broker] data_url and the APCA_API_* keys)",
                    _first_line(error),
                )
            self._failing = True
            return
        if self._failing:
            log.info("Alpaca's option snapshots answer again; greeks come from Alpaca")
        self._failing = False
        assert isinstance(snapshots, dict)
        for compact, snapshot in snapshots.items():
            contract = by_compact.get(compact)
            figures = _figures(snapshot)
            if contract is not None and figures is not None:
                self._figures[contract.symbol] = (figures, now)

    def greeks(self, contracts: Iterable[OptionContract], now: datetime) -> dict[str, ContractGreeks]:
        found: dict[str, ContractGreeks] = {}
        for contract in contracts:
            reading = self._fetched(contract, now)
            if reading is None:
                reading = self._model.reading(contract, now, STANDING_IN if self._failing else "model")
            if reading is not None:
                found[contract.symbol] = reading
        return found

    def _fetched(self, contract: OptionContract, now: datetime) -> ContractGreeks | None:
        stored = self._figures.get(contract.symbol)
        spot = self._model.spot(contract.underlying)  # dollar delta needs it; a snapshot carries none
        if stored is None or spot is None or now - stored[1] > MAX_AGE:
            return None
        return ContractGreeks(stored[0], spot, ALPACA)


def _figures(snapshot: OptionsSnapshot) -> Greeks | None:
    """Alpaca's figures, in the model's units (theta per calendar day, vega per vol point); None without greeks or
    an implied volatility (Alpaca leaves them out where it cannot work them out)."""
    greeks, iv = snapshot.greeks, snapshot.implied_volatility
    if greeks is None or iv is None:
        return None
    figures = Greeks(delta=greeks.delta, gamma=greeks.gamma, theta=greeks.theta, vega=greeks.vega, iv=iv)
    # JSON's NaN or Infinity would make the desk's sums no number, and the greek limits fail on them.
    return figures if all(math.isfinite(value) for value in figures) else None


def _first_line(error: Exception) -> str:
    """What went wrong in one line (a validation error of the SDK's runs over several)."""
    return next(iter(str(error).splitlines()), "") or type(error).__name__
