"""A position's Discord message: one embed built from its PositionView, always within Discord's limits."""

from __future__ import annotations

from decimal import Decimal

import discord

from bot.options.positions import ActionKind, PositionAction
from bot.render.position_view import MARKET_TZ, PositionView, action_line, greeks_lines, percent
from bot.render.text import money

# Discord's limits: 1,024 characters per field value, 6,000 for the whole embed, 25 fields.
FIELD_LIMIT = 1024
EMBED_LIMIT = 6000

OPEN_COLOUR = discord.Colour.blue()
WIN_COLOUR = discord.Colour.green()
LOSS_COLOUR = discord.Colour.red()
NOTE_COLOUR = discord.Colour.gold()

NO_MENTIONS = discord.AllowedMentions.none()


def who(actor: str) -> str:
    """A Discord user id as a mention (shown as the member's name in an embed, never a ping)."""
    kind, _, ident = actor.partition(":")
    return f"<@{ident}>" if kind == "discord" and ident.isdigit() else actor


def colour_of(view: PositionView) -> discord.Colour:
    position = view.position
    if view.status_note:
        return NOTE_COLOUR
    if position.is_open:
        return OPEN_COLOUR
    return WIN_COLOUR if position.realized_pnl > 0 else LOSS_COLOUR


def history_text(actions: tuple[PositionAction, ...], strategy: str, limit: int = FIELD_LIMIT) -> str:
    """The latest actions, one per line, newest last; older ones summed up in a first line if needed."""
    lines = [action_line(action, strategy, who) for action in actions]
    shown = len(lines)
    while shown and len("\n".join(lines[len(lines) - shown :])) + 80 > limit:
        shown -= 1
    older = actions[: len(actions) - shown]
    if not older:
        return "\n".join(lines)[:limit]
    counts = {kind: sum(1 for a in older if a.kind is kind) for kind in ActionKind}
    summary = ", ".join(f"{n} {kind.value}" for kind, n in counts.items() if n)
    bought = sum(a.qty for a in older if a.kind in (ActionKind.OPEN, ActionKind.ADD))
    sold = sum(a.qty for a in older if a.kind in (ActionKind.TRIM, ActionKind.CLOSE))
    head = f"… {len(older)} earlier actions ({summary}; bought {bought}, sold {sold})"
    return "\n".join([head, *lines[len(lines) - shown :]])[:limit]


def position_embed(view: PositionView) -> discord.Embed:
    position = view.position
    contract = position.contract
    right = "call" if contract.right.value == "C" else "put"
    embed = discord.Embed(
        title=contract.label,
        description=f"**{position.status.value.upper()}** · {position.strategy}",
        colour=colour_of(view),
    )
    embed.add_field(
        name="Contract",
        value=f"{contract.underlying} {contract.strike.normalize():f} {right}, expires {contract.expiry.isoformat()}",
        inline=False,
    )
    embed.add_field(name="Open", value=str(position.qty))
    embed.add_field(name="Avg entry", value=f"{position.avg_entry.quantize(Decimal('0.0001'))}")
    embed.add_field(name="Realized P&L", value=f"{money(position.realized_pnl)} ({percent(view.realized_pct)})")
    unrealized = view.unrealized_pnl
    if unrealized is not None:
        embed.add_field(name="Unrealized P&L", value=f"{money(unrealized)} at {view.mark}")
    greeks = greeks_lines(view)
    if greeks:
        embed.add_field(name="Greeks", value="\n".join(greeks), inline=False)
    last = view.last_action
    if last is not None:
        embed.add_field(name="Last fill", value=action_line(last, position.strategy, who), inline=False)
    if view.status_note:
        embed.add_field(name="Order", value=view.status_note[:FIELD_LIMIT], inline=False)
    budget = EMBED_LIMIT - len(embed) - len("History") - 100
    embed.add_field(
        name="History", value=history_text(position.actions, position.strategy, min(FIELD_LIMIT, budget)), inline=False
    )
    embed.set_footer(text=f"{position.position_id} · fees {position.fees}")
    if last is not None:
        embed.timestamp = last.ts.astimezone(MARKET_TZ)
    return embed
