"""The Discord desk lives on one clock, wall time: its fills, /status, /positions and /pnl all count the day by it,
and /status says whether the market is open and when it opens."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.options.trade_ledger import read_ledger
from tests.discord.conftest import SPY, Desk, fields_of

NEW_YORK = ZoneInfo("America/New_York")


def new_york(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


def status_lines(result: object) -> list[str]:
    [embed] = result.response.embeds  # type: ignore[attr-defined]
    return (embed.description or "").splitlines()


async def test_status_says_the_market_is_open_until_the_close(desk: Desk) -> None:
    result = await desk.trader.slash(desk.channel, "status")

    assert "Market: open until 16:00 New York" in status_lines(result)


async def test_after_the_close_status_says_when_the_market_opens_next(desk: Desk) -> None:
    await desk.advance_to(new_york(2026, 11, 25, 17, 20))  # Wednesday evening; Thursday is Thanksgiving

    result = await desk.trader.slash(desk.channel, "status")

    assert "Market: closed; opens Fri 2026-11-27 09:30 New York" in status_lines(result)


async def test_a_close_after_hours_is_stamped_and_counted_on_the_desks_day(desk: Desk) -> None:
    position = await desk.open(qty=2)  # Wednesday 10:00 New York
    # 23:30 New York is already Thursday in UTC: the desk's day (New York's) is still Wednesday.
    await desk.advance_to(new_york(2026, 11, 25, 23, 30))
    desk.quote(SPY, "1.50", "1.60")
    await desk.manager.close(position.position_id)
    await desk.deliver()

    [opened, closed] = read_ledger(desk.ledger_file).events
    pnl = fields_of((await desk.trader.slash(desk.channel, "pnl")).response.embeds[0])
    status = status_lines(await desk.trader.slash(desk.channel, "status"))
    shown = await desk.trader.slash(desk.channel, "positions", show="closed")

    assert (opened.ts, closed.ts) == (new_york(2026, 11, 25, 10, 0), new_york(2026, 11, 25, 23, 30))
    assert pnl["Trades"] == "2 (1 opened, 1 closed)"
    assert any(line.startswith("Realized P&L today (2026-11-25): 77.40") for line in status), status
    assert position.position_id in (shown.response.embeds[0].description or "")
