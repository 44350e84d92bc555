"""Alpaca's fill history (account activities of type FILL) as BrokerFills; shared by the executor's
catch-up, the restart and reconciliation. Blocking SDK calls: run them in a thread."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from alpaca.trading.client import TradingClient
from alpaca.trading.models import TradeActivity

from bot.broker.fills import BrokerFill
from bot.options.contracts import OptionContract
from bot.options.errors import TradeError
from bot.options.orders import Side

PAGE_SIZE = 100


def execution_id(activity_id: str) -> str:
    """An activity id is `<time>::<execution id>`; the trade-updates stream gives the execution id alone."""
    return activity_id.rpartition("::")[2]


def ledger_symbol(symbol: str) -> str:
    """Alpaca writes OCC symbols without padding; the ledger pads the root to 6 characters."""
    try:
        return OptionContract.parse(symbol).symbol
    except TradeError:
        return symbol  # not an option (a stock fill in the same account): kept as Alpaca names it


def whole_contracts(value: float | str | None) -> int:
    qty = Decimal(str(value or 0))
    if qty != qty.to_integral_value():
        raise ValueError(f"the broker reported a fractional quantity {value} of an option")
    return int(qty)


def to_broker_fill(activity: TradeActivity, client_ids: Mapping[str, str]) -> BrokerFill:
    """`client_ids`: the broker's order id -> our order id, for the orders the desk sent."""
    broker_order = str(activity.order_id)
    return BrokerFill(
        fill_id=execution_id(activity.id),
        broker_order_id=broker_order,
        order_id=client_ids.get(broker_order),
        symbol=ledger_symbol(activity.symbol),
        side=Side(activity.side.value),
        qty=whole_contracts(activity.qty),
        price=Decimal(str(activity.price)),
        ts=activity.transaction_time.astimezone(UTC),
    )


def fill_activities(client: TradingClient, after: datetime, until: datetime | None = None) -> list[TradeActivity]:
    """Every FILL activity after `after` (and before `until`), oldest first, across pages."""
    return [TradeActivity(**raw) for raw in account_activities(client, "FILL", after, until)]


def account_activities(
    client: TradingClient, kind: str, after: datetime, until: datetime | None = None
) -> list[dict[str, Any]]:
    """The account's activities of type `kind` (FILL, OPEXP, ...) after `after` (and before `until`), oldest first,
    across pages, as Alpaca sends them (the SDK has no call for them)."""
    params: dict[str, Any] = {"direction": "asc", "page_size": PAGE_SIZE, "after": after.isoformat()}
    if until is not None:
        params["until"] = until.isoformat()
    found: list[dict[str, Any]] = []
    while True:
        page = client.get(f"/account/activities/{kind}", params) or []
        assert isinstance(page, list)
        found += page
        if len(page) < PAGE_SIZE:
            return found
        params["page_token"] = page[-1]["id"]
