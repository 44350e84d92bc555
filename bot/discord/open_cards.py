"""The embeds of opening from Discord: an option chain, and the preview a trader confirms; within Discord's limits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import discord

from bot.discord.embeds import EMBED_LIMIT, FIELD_LIMIT
from bot.options.chain import Chain
from bot.options.market_hours import MARKET_TZ, session_close
from bot.options.positions import MANUAL_STRATEGY
from bot.options.risk import dollars
from bot.render.chain import HEADER, chain_lines

if TYPE_CHECKING:
    from bot.discord.open_flow import Preview

MANUAL_EXITS = "Manual: no automatic exits. Trim and close it yourself (the buttons on its message, /trim, /close)."
_BLOCK = "```\n{}\n```"


def _table(lines: list[str], room: int) -> str:
    """The chain's lines in a code block of at most `room` characters, dropping the farthest strikes if needed."""
    while lines and len(_BLOCK.format("\n".join([HEADER, *lines]))) > room:
        lines = lines[1:-1] if len(lines) > 2 else lines[1:]
    return _BLOCK.format("\n".join([HEADER, *lines])) if lines else "No listed strikes around the money."


def chain_embed(chains: Sequence[Chain], now: datetime) -> discord.Embed:
    """One field per expiry: strikes around the money with call and put bid / ask, delta and open interest."""
    first = chains[0]
    spot = f" at {first.centre.normalize():f}" if first.centre is not None else ""
    embed = discord.Embed(
        title=f"{first.underlying} option chain",
        description=(
            f"{first.underlying}{spot}, {now.astimezone(MARKET_TZ):%Y-%m-%d %H:%M} New York. "
            "Δ: delta; OI: open interest (- where the source has none). Open one with /open."
        ),
        colour=discord.Colour.blurple(),
    )
    for chain in chains:
        room = min(FIELD_LIMIT, EMBED_LIMIT - len(embed) - 100)
        if room < 200:
            break
        days = (chain.expiry - now.astimezone(MARKET_TZ).date()).days
        closes = session_close(chain.expiry).astimezone(MARKET_TZ)
        name = f"{chain.expiry.isoformat()} ({chain.expiry:%a}, {days} days, closes {closes:%H:%M})"
        embed.add_field(name=name, value=_table(chain_lines(chain), room), inline=False)
    return embed


def preview_embed(preview: Preview, expires: datetime) -> discord.Embed:
    ticket = preview.ticket
    contract = ticket.contract
    right = "call" if contract.right.value == "C" else "put"
    if ticket.position_id is None:
        title = f"Open: buy {ticket.qty} {contract.label}"
    else:
        title = f"Add: buy {ticket.qty} more {contract.label}"
    embed = discord.Embed(title=title, colour=discord.Colour.orange())
    embed.add_field(
        name="Contract",
        value=f"{contract.underlying} {contract.strike.normalize():f} {right}, expires {contract.expiry.isoformat()}",
        inline=False,
    )
    order = f"limit {ticket.limit}: fills at {ticket.limit} or better, or not at all" if ticket.limit else "market"
    embed.add_field(name="Estimated fill", value=f"{preview.fill} a share (from the current quote; {order})")
    embed.add_field(name="Premium at risk", value=f"{dollars(preview.premium)} ({ticket.qty} x {contract.multiplier})")
    if ticket.position_id is not None:
        embed.add_field(name="Position", value=f"`{ticket.position_id}`", inline=False)
    exits = (
        MANUAL_EXITS
        if ticket.strategy == MANUAL_STRATEGY
        else f"Handed to {ticket.strategy}: its exit rules manage it."
    )
    embed.add_field(name="Exits", value=exits, inline=False)
    if preview.limits:
        embed.add_field(name="Desk limits", value="\n".join(preview.limits)[:FIELD_LIMIT], inline=False)
    until = expires.astimezone(MARKET_TZ)
    embed.set_footer(
        text=f"Confirm sends the order, checked again at that moment. Good until {until:%H:%M:%S} New York."
    )
    return embed
