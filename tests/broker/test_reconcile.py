"""Reconciliation against the fake Alpaca: each kind of difference is found; `--apply` appends only the
missing fills it may (source reconcile, the broker's time kept) and reports the rest; the CLI's exit codes."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from bot.broker.alpaca import Alpaca
from bot.broker.reconcile import ReconcileReport
from bot.cli import main
from bot.cli.reconcile import reconcile_command
from bot.options.contracts import OptionContract
from bot.options.ledger_verify import verify_events
from bot.options.order_manager import OptionsOrderManager
from bot.options.positions import Source
from bot.options.trade_ledger import TradeLedger
from tests.broker.conftest import NOW, Clock, broker_settings, fast
from tests.broker.fake_alpaca import FakeAlpaca

SPY = OptionContract.parse("SPY   261127C00450000")
QQQ = OptionContract.parse("QQQ   261127P00400000")
IWM = OptionContract.parse("IWM   261127C00200000")
LATER = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


def order_of(position_id: str, manager: OptionsOrderManager, index: int = 0) -> str:
    return [o for o in manager.orders.values() if o.position_id == position_id][index].order_id


@pytest.fixture
async def desk_day(fake: FakeAlpaca, manager: OptionsOrderManager, clock: Clock) -> dict[str, str]:
    """A day at the desk, then the broker's history drifting from the ledger in every way it can."""
    fake.plans += [[("fill", 2, "1.10")], [("fill", 3, "2.00")], [("fill", 3, "2.50")], [("fill", 1, "0.50")]]
    spy = await manager.open_position(SPY, 2, strategy="spy-orb")
    qqq = await manager.open_position(QQQ, 3, strategy="qqq-meanrev")
    await manager.close(qqq.position_id)
    await manager.open_position(IWM, 1, strategy="spy-orb")
    clock.now = LATER
    # A fill of SPY's order the desk never heard of (open position: can be applied) ...
    late = fake.fill(order_of(spy.position_id, manager), 1, "1.20", tell=False)
    # ... one of QQQ's closing order after the close (closed position: reported only) ...
    after_close = fake.fill(order_of(qqq.position_id, manager, 1), 1, "2.60", tell=False)
    # ... and an order the ledger has no fill of at all (its opening fill is missing).
    client = fast(Alpaca(broker_settings(fake)).trading_client())
    fake.plans.append([("quiet_fill", 1, "3.00")])
    request = MarketOrderRequest(
        symbol="SPY261127C00460000",
        qty=1,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.DAY,
        client_order_id="ord-lost",
    )
    await asyncio.to_thread(client.submit_order, request)
    await asyncio.sleep(0.05)
    lost = fake.activities[-1]["id"].partition("::")[2]
    # The broker never heard of IWM's fill, and reports QQQ's opening fill at another price.
    iwm_fill = next(a for a in fake.activities if a["symbol"].startswith("IWM"))
    fake.activities.remove(iwm_fill)
    fake.positions["IWM261127C00200000"] = 0
    fake.activities[1]["price"] = "2.05"  # QQQ's opening fill
    return {"late": late, "after_close": after_close, "lost": lost, "iwm": iwm_fill["id"].partition("::")[2]}


async def test_every_kind_of_difference_is_found(
    desk_day: dict[str, str], fake: FakeAlpaca, storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await asyncio.to_thread(
        reconcile_command, broker_settings(fake), storage, day=NOW.date(), as_json=True, apply=False
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and not report["ok"]
    assert {m["fill_id"]: m["applicable"] for m in report["missing"]} == {
        desk_day["late"]: True,
        desk_day["after_close"]: False,
        desk_day["lost"]: False,
    }
    reasons = {r["fill_id"]: r["reason"] for r in report["refused"]}
    assert "already closed" in reasons[desk_day["after_close"]]
    assert "opening fill is missing" in reasons[desk_day["lost"]]
    assert [u["fill_id"] for u in report["unknown"]] == [desk_day["iwm"]]
    ((mismatch),) = report["mismatched"]
    assert (mismatch["ledger"], mismatch["broker"]) == ("buy 3 @ 2.0", "buy 3 @ 2.05")
    assert {(g["symbol"], g["ledger_qty"], g["broker_qty"]) for g in report["positions"]} == {
        ("SPY   261127C00450000", 2, 3),
        ("SPY   261127C00460000", 0, 1),
        ("IWM   261127C00200000", 1, 0),
        ("QQQ   261127P00400000", 0, -1),
    }
    assert report["applied"] == 0


async def test_apply_appends_only_what_it_may(
    desk_day: dict[str, str], fake: FakeAlpaca, storage: Path, ledger: TradeLedger
) -> None:
    before = ledger.read()
    charged = broker_settings(fake, fee_per_contract=Decimal("0.05"))  # Alpaca's fills come without fees
    await asyncio.to_thread(reconcile_command, charged, storage, day=NOW.date(), as_json=True, apply=True)
    after = ledger.read()
    assert after[: len(before)] == before  # nothing rewritten or removed
    (added,) = after[len(before) :]
    assert (added.fill_id, added.source, added.actor) == (desk_day["late"], Source.RECONCILE, "reconcile")
    assert (added.kind, added.qty, added.price, added.position_qty) == ("add", 1, Decimal("1.20"), 3)
    assert (added.fees, added.realized_pnl) == (Decimal("0.05"), Decimal("-0.05"))  # the configured fee
    assert added.broker_ts == LATER and added.ts > LATER  # written at reconcile time, the broker's time kept
    assert verify_events(after).ok
    # Applied once: a second run finds nothing more to apply.
    again = await asyncio.to_thread(
        reconcile_command, broker_settings(fake), storage, day=NOW.date(), as_json=True, apply=True
    )
    assert again == 1 and len(ledger.read()) == len(after)


async def test_cli_exit_codes(
    fake: FakeAlpaca, manager: OptionsOrderManager, storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await manager.open_position(SPY, 2, strategy="spy-orb")
    args = ["reconcile", "--storage", str(storage), "--date", NOW.date().isoformat(), "--json"]
    assert await asyncio.to_thread(main, args) == 2  # the executor is paper: nothing to compare with
    monkeypatch.setenv("OPTIONDESK_EXECUTOR", "alpaca-paper")
    monkeypatch.setenv("OPTIONDESK_BROKER__TRADING_URL", fake.url)
    assert await asyncio.to_thread(main, args) == 0  # the ledger and the broker agree
    fake.positions["SPY261127C00450000"] = 5
    assert await asyncio.to_thread(main, args) == 1
    with pytest.raises(SystemExit) as usage:
        await asyncio.to_thread(main, ["reconcile", "--date", "25-11-2026"])
    assert usage.value.code == 2
    monkeypatch.delenv("APCA_API_SECRET_KEY")
    assert await asyncio.to_thread(main, args) == 1  # a missing credential: one line, exit 1


async def test_the_text_report_names_each_difference(
    desk_day: dict[str, str], fake: FakeAlpaca, storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await asyncio.to_thread(
        reconcile_command, broker_settings(fake), storage, day=NOW.date(), as_json=False, apply=False
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "Reconcile 2026-11-25: 3 fill(s) missing from the ledger (1 can be applied), 1 unknown to the broker, "
        "1 mismatched, 4 position quantity difference(s)."
    )
    kinds = [line.split()[0] for line in lines[1:]]
    assert kinds == ["missing"] * 3 + ["refused"] * 2 + ["unknown", "differs"] + ["position"] * 4
    assert ReconcileReport(NOW.date()).lines() == ["Reconcile 2026-11-25: the ledger matches the broker."]
