"""Discord-side helpers shared by the cogs: ephemeral replies, position choices, lists and results."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, tzinfo
from decimal import Decimal

import discord
from discord import app_commands

from bot.discord.embeds import NO_MENTIONS
from bot.discord.rights import is_trader
from bot.options.orders import OrderContext, OrderStatus
from bot.options.positions import Position
from bot.render.text import money
from bot.settings import Settings

MAX_CHOICES = 25  # Discord's limit for autocomplete answers
_TICK = Decimal("0.0001")


async def reply(
    interaction: discord.Interaction,
    text: str,
    *,
    embed: discord.Embed | None = None,
    file: discord.File | None = None,
) -> None:
    """An ephemeral answer that never pings, whether or not the interaction was answered already."""
    card = embed if embed is not None else discord.utils.MISSING  # an Embed without text is falsy
    attached = file if file is not None else discord.utils.MISSING
    if interaction.response.is_done():
        await interaction.followup.send(text, embed=card, file=attached, ephemeral=True, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(
            text, embed=card, file=attached, ephemeral=True, allowed_mentions=NO_MENTIONS
        )


def actor_of(interaction: discord.Interaction) -> str:
    """Who acted, as the ledger records it: the Discord user id (names change and can hold markup)."""
    return f"discord:{interaction.user.id}"


def position_title(position: Position) -> str:
    return (
        f"{position.contract.label} · {position.qty} @ {position.avg_entry.quantize(_TICK)} · "
        f"{position.strategy} · {position.status.value}"
    )


def position_choices(
    interaction: discord.Interaction, settings: Settings, positions: Iterable[Position], typed: str
) -> list[app_commands.Choice[str]]:
    """Autocomplete: positions that match what was typed (see `matches`), newest first.

    Discord runs no command check for autocomplete, so rights are checked here: nothing for non-traders.
    """
    if not is_trader(interaction, settings):
        return []
    matching = [p for p in positions if matches(p, typed)]
    matching.sort(key=lambda p: p.opened_at or datetime.min, reverse=True)
    return [app_commands.Choice(name=position_title(p)[:100], value=p.position_id) for p in matching[:MAX_CHOICES]]


_RIGHT_WORDS = {"C": ("call", "calls"), "P": ("put", "puts")}


def matches(position: Position, typed: str) -> bool:
    """Whether `typed` finds the position the way traders write it: its OCC symbol (padded or compact), or words each
    found in one of its names ("SPY 600C", "600 call", "spy put", "2026-11-27", its strategy or id)."""
    text = typed.strip().lower()
    contract = position.contract
    if text.replace(" ", "") == contract.compact.lower():
        return True
    strike = f"{contract.strike.normalize():f}"
    names = [
        contract.underlying.lower(),
        contract.expiry.isoformat(),
        strike,
        f"{strike}{contract.right.value.lower()}",
        *_RIGHT_WORDS[contract.right.value],
        contract.compact.lower(),
        position.strategy.lower(),
        position.position_id.lower(),
    ]
    return all(any(word in name for name in names) for word in text.split())


def is_today(position: Position, today: date, zone: tzinfo) -> bool:
    stamps = [position.opened_at, position.closed_at]
    return any(ts is not None and ts.astimezone(zone).date() == today for ts in stamps)


def positions_list_embed(title: str, positions: list[Position]) -> discord.Embed:
    embed = discord.Embed(title=title, colour=discord.Colour.blue())
    if not positions:
        embed.description = "None."
        return embed
    lines = [
        f"`{p.position_id}` {p.contract.label} · {p.status.value} · {p.qty} @ {p.avg_entry.quantize(_TICK)} · "
        f"realized {money(p.realized_pnl)} · {p.strategy}"
        for p in positions
    ]
    text = ""
    for shown, line in enumerate(lines):
        if len(text) + len(line) + 60 > 4000:
            text += f"\n… and {len(lines) - shown} more"
            break
        text += ("\n" if text else "") + line
    embed.description = text
    return embed


def trade_result(verb: str, before: Position, after: Position, order: OrderContext | None = None) -> str:
    """What a trader reads after a sale; `order` (the one that sold) tells of a rest that was not filled."""
    sold = before.qty - after.qty
    last = after.actions[-1]
    left = f"{after.qty} left open" if after.is_open else "position closed"
    text = f"{verb} {sold} {after.contract.label} @ {last.price} (realized {money(last.realized_pnl)}); {left}."
    if order is not None and order.status is OrderStatus.CANCELLED:
        text += f" The other {order.requested_qty - order.filled_qty} were not sold: {order.reason}."
    return text
