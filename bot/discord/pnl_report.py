"""P&L for Discord: a period's report read from the ledger off the event loop, its embed, and the
end-of-day summary posted to the trade channel."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, tzinfo
from decimal import Decimal
from pathlib import Path

import discord

from bot.analytics.ledger_scan import scan_ledger
from bot.analytics.tally import PeriodReport, Tally
from bot.discord.embeds import NO_MENTIONS
from bot.options.trade_ledger import LedgerError
from bot.paths import ledger_path
from bot.render.text import cost, money, money_or_dash

log = logging.getLogger(__name__)

MAX_GROUPS = 15  # strategies listed in the embed; the rest are summed in one line


async def load_period(
    storage: Path, zone: tzinfo, first: date, last: date
) -> tuple[PeriodReport, list[tuple[datetime, Decimal]]]:
    """The report of the days from `first` to `last` and its equity curve, read in a worker thread (a long
    ledger takes a while, and trading goes on meanwhile)."""
    scan = await asyncio.to_thread(scan_ledger, ledger_path(storage), zone, first, last, curve=True)
    return PeriodReport(first, last, scan.reports), scan.curve


def _rate(t: Tally) -> str:
    return "n/a (nothing closed)" if t.win_rate is None else f"{t.win_rate:.0%} ({t.wins} of {t.positions_closed})"


def pnl_embed(period: PeriodReport, title: str) -> discord.Embed:
    t = period.totals
    colour = discord.Colour.green() if t.realized_pnl >= 0 else discord.Colour.red()
    span = str(period.first) if period.first == period.last else f"{period.first} to {period.last}"
    embed = discord.Embed(title=title, description=f"{span} (fills of those days, fees included)", colour=colour)
    embed.add_field(name="Realized P&L", value=money(t.realized_pnl))
    embed.add_field(name="Trades", value=f"{t.trades} ({period.positions_opened} opened, {t.positions_closed} closed)")
    embed.add_field(name="Win rate", value=_rate(t))
    embed.add_field(name="Profit factor", value="-" if t.profit_factor is None else f"{t.profit_factor:.2f}")
    embed.add_field(name="Largest win", value=money_or_dash(t.largest_win))
    embed.add_field(name="Largest loss", value=money_or_dash(t.largest_loss))
    embed.add_field(name="Fees", value=cost(t.fees))
    embed.add_field(name="Max intraday drawdown", value=money(-period.max_drawdown))
    groups = list(period.by_strategy.items())
    lines = [f"{name}: {money(g.realized_pnl)} · {g.trades} trades · {g.wins}/{g.losses}" for name, g in groups]
    if len(lines) > MAX_GROUPS:
        rest = sum((g.realized_pnl for _, g in groups[MAX_GROUPS:]), Decimal(0))
        lines = [*lines[:MAX_GROUPS], f"{len(groups) - MAX_GROUPS} more: {money(rest)}"]
    embed.add_field(name="By strategy", value="\n".join(lines)[:1024] or "No trades.", inline=False)
    return embed


async def post_day_summary(
    client: discord.Client, channel_id: int | None, storage: Path, zone: tzinfo, day: date
) -> None:
    """The day's summary to the trade channel. A failure is logged and never stops what follows (the reset)."""
    if channel_id is None:
        return
    try:
        period, _ = await load_period(storage, zone, day, day)
        embed = pnl_embed(period, f"End of day {day}")
        await client.get_partial_messageable(channel_id).send(embed=embed, allowed_mentions=NO_MENTIONS)
    except (LedgerError, discord.HTTPException) as error:
        log.warning("could not post the summary of %s (%s)", day, error)
