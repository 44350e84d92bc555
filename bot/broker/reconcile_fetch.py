"""Reconciliation, the broker's side: one day's fills, expiries, exercises and assignments, and the option positions
now, read from Alpaca (blocking)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import PositionSide
from alpaca.trading.models import Order, Position

from bot.broker.activities import BrokerActivity, contract_of, fetch_activities
from bot.broker.alpaca_fills import fill_activities, ledger_symbol, to_broker_fill, whole_contracts
from bot.broker.fills import BrokerFill
from bot.broker.reconcile import ReconcileReport, reconcile
from bot.options.trade_ledger import read_ledger
from bot.paths import ledger_path


@dataclass(frozen=True, slots=True)
class BrokerDay:
    fills: list[BrokerFill]
    positions: dict[str, int]  # ledger symbol -> signed quantity, options only (shares are no position of the desk)
    activities: list[BrokerActivity]


def fetch_day(client: TradingClient, day: date, zone: tzinfo) -> BrokerDay:
    start = datetime.combine(day, time.min, tzinfo=zone)
    after, until = start - timedelta(microseconds=1), start + timedelta(days=1) - timedelta(microseconds=1)
    activities = fill_activities(client, after, start + timedelta(days=1))
    lifecycle = [a for a in fetch_activities(client, after, until) if a.day == day]
    client_ids: dict[str, str] = {}
    for order_id in {str(a.order_id) for a in activities}:
        order = client.get_order_by_id(order_id)
        assert isinstance(order, Order)
        client_ids[order_id] = order.client_order_id
    held = client.get_all_positions()
    positions = {
        ledger_symbol(p.symbol): whole_contracts(p.qty) * (-1 if p.side == PositionSide.SHORT else 1)
        for p in held
        if isinstance(p, Position) and contract_of(p.symbol) is not None
    }
    return BrokerDay([to_broker_fill(a, client_ids) for a in activities], positions, lifecycle)


def reconcile_day(
    client: TradingClient, storage: Path, day: date, zone: tzinfo, now: datetime, fee_per_contract: Decimal
) -> ReconcileReport:
    """The report for `day`: the ledger in `storage` against what Alpaca says."""
    broker = fetch_day(client, day, zone)
    events = read_ledger(ledger_path(storage)).events
    return reconcile(
        events,
        broker.fills,
        broker.positions,
        day=day,
        zone=zone,
        now=now,
        fee_per_contract=fee_per_contract,
        activities=broker.activities,
    )
