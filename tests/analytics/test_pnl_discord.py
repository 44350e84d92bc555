"""`/pnl` and the end-of-day summary, through the real discord.py client under simcord."""

from __future__ import annotations

from datetime import date, datetime

import discord
import pytest
from simcord import assert_error, assert_responded

from bot.analytics.ledger_scan import scan_ledger
from bot.discord.rights import NotAllowed
from bot.render.text import money
from tests.analytics.ledgers import NEW_YORK
from tests.discord.conftest import SPY, Desk, fields_of

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WEDNESDAY = date(2026, 11, 25)


def new_york(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


async def trade_a_round_trip(desk: Desk) -> None:
    """Buy 10 at 1.10, sell 4 then 6 at 1.50 (fees 0.65 a contract): -6.50 + 157.40 + 236.10 = +387.00."""
    position = await desk.open(qty=10)
    desk.quote(SPY, "1.50", "1.60")
    await desk.manager.trim(position.position_id, qty=4)
    await desk.manager.close(position.position_id)
    await desk.deliver()


def summaries(desk: Desk) -> list[discord.Message]:
    return [m for m in desk.messages() if (m.embeds[0].title or "").startswith("End of day")]


async def test_pnl_answers_traders_with_the_days_numbers_and_the_equity_curve(desk: Desk) -> None:
    await trade_a_round_trip(desk)

    result = await desk.trader.slash(desk.channel, "pnl")

    message = result.response
    assert result.ephemeral
    [embed] = message.embeds
    fields = fields_of(embed)
    assert embed.title == "P&L today"
    assert fields["Realized P&L"] == "+387.00"
    assert fields["Trades"] == "3 (1 opened, 1 closed)"
    assert fields["Win rate"] == "100% (1 of 1)"
    assert (fields["Profit factor"], fields["Largest win"], fields["Largest loss"]) == ("-", "+387.00", "-")
    assert fields["Fees"] == "13.00"  # a cost, unsigned
    assert fields["Max intraday drawdown"] == "-6.50"
    assert fields["By strategy"] == "orb: +387.00 · 3 trades · 1/0"
    [attachment] = message.attachments
    assert attachment.filename == "equity-curve.png"
    assert (await attachment.read()).startswith(PNG_SIGNATURE)
    assert embed.image.url == "attachment://equity-curve.png"
    [day] = scan_ledger(desk.ledger_file, NEW_YORK, WEDNESDAY, WEDNESDAY).reports
    assert fields["Realized P&L"] == money(day.totals.realized_pnl)


async def test_pnl_for_the_week_spans_monday_to_today(desk: Desk) -> None:
    await trade_a_round_trip(desk)

    result = await desk.trader.slash(desk.channel, "pnl", period="week")

    [embed] = result.response.embeds
    assert embed.title == "P&L this week"
    assert embed.description is not None and embed.description.startswith("2026-11-23 to 2026-11-25")
    assert fields_of(embed)["Realized P&L"] == "+387.00"


async def test_pnl_without_fills_has_no_curve(desk: Desk) -> None:
    result = await desk.trader.slash(desk.channel, "pnl")

    assert fields_of(result.response.embeds[0])["Trades"] == "0 (0 opened, 0 closed)"
    assert result.response.attachments == []


@pytest.mark.simcord(check_errors=False)
async def test_pnl_is_refused_to_a_member_without_a_trader_role(desk: Desk) -> None:
    await trade_a_round_trip(desk)

    result = await desk.nobody.slash(desk.channel, "pnl")

    assert_responded(result, content="You need a trader role to use optiondesk.", ephemeral=True)
    assert_error(desk.env, NotAllowed)


async def test_end_of_day_posts_the_days_summary_before_the_reset(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    await trade_a_round_trip(desk)
    await desk.advance_to(new_york(2026, 11, 25, 16, 15))
    at_reset: list[int] = []
    reset = desk.bot.message_map.reset

    def note_posts_then_reset(now: datetime) -> int:
        at_reset.append(len(desk.posts()))
        return reset(now)

    monkeypatch.setattr(desk.bot.message_map, "reset", note_posts_then_reset)

    await desk.bot.end_of_day()
    await desk.env.settle()

    [summary] = summaries(desk)
    fields = fields_of(summary.embeds[0])
    assert summary.embeds[0].title == "End of day 2026-11-25"
    [day] = scan_ledger(desk.ledger_file, NEW_YORK, WEDNESDAY, WEDNESDAY).reports
    assert fields["Realized P&L"] == money(day.totals.realized_pnl) == "+387.00"
    assert fields["Win rate"] == "100% (1 of 1)"
    # The summary was the last message posted when the map was reset.
    assert at_reset == [len(desk.posts())]
    assert desk.posts()[-1].json["embeds"][0]["title"] == "End of day 2026-11-25"
    assert desk.posts()[-1].json["allowed_mentions"] == {"parse": []}


async def test_a_reset_missed_while_down_posts_the_missed_days_summary_first(desk: Desk) -> None:
    await trade_a_round_trip(desk)
    await desk.advance_to(new_york(2026, 11, 27, 9, 45))  # Friday: Wednesday's 16:15 was missed

    await desk.restart()
    await desk.env.settle()

    [summary] = summaries(desk)
    assert summary.embeds[0].title == "End of day 2026-11-25"
    assert fields_of(summary.embeds[0])["Realized P&L"] == "+387.00"
    assert desk.message_map().messages == {}
    assert desk.message_map().reset_at == new_york(2026, 11, 27, 9, 45)


async def test_no_summary_on_a_day_off(desk: Desk) -> None:
    await desk.advance_to(new_york(2026, 11, 26, 16, 15))  # Thanksgiving

    assert await desk.bot.end_of_day() == 0
    assert summaries(desk) == []
