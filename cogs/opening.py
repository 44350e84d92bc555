"""Opening from Discord, for traders: `/chain` to look, `/open` and `/add` to buy, each through a preview and its
Confirm (bot/discord/open_flow.py). Autocomplete offers only what is listed, and nothing to a member who is not a
trader (Discord runs no command check for autocomplete)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.open_cards import chain_embed
from bot.discord.open_flow import adding, chain_of, opening, parse_expiry, parse_right, parse_strike, show_preview
from bot.discord.rights import is_trader, traders_only
from bot.discord.ui import MAX_CHOICES, position_choices, reply
from bot.options.amounts import MAX_CONTRACTS
from bot.options.chain import nearest_first
from bot.options.errors import TradeError
from bot.options.positions import MANUAL_STRATEGY

if TYPE_CHECKING:
    from bot.discord.desk_bot import OptionDeskBot

Choices = list[app_commands.Choice[str]]
SHOWN_EXPIRIES = 3  # the expiries /chain shows when none is given
RIGHTS = [app_commands.Choice(name="call", value="call"), app_commands.Choice(name="put", value="put")]
STRIKES_OFFERED = 12  # each side of the money


class Opening(commands.Cog):
    def __init__(self, bot: OptionDeskBot) -> None:
        self.bot = bot

    @app_commands.command(name="chain", description="The option chain around the money: bid/ask, delta, open interest")
    @app_commands.describe(underlying="The underlying, e.g. SPY", expiry="One expiry (default: the next few)")
    @traders_only()
    async def chain(self, interaction: discord.Interaction, underlying: str, expiry: str | None = None) -> None:
        # A broker's chain is a few requests per expiry, and Discord waits 3 s for a first answer: answered now.
        await interaction.response.defer(ephemeral=True, thinking=True)
        desk = self.bot.desk
        source = chain_of(desk)
        if expiry:
            expiries = [parse_expiry(expiry)]
        else:
            expiries = (await source.expiries(underlying, desk.today()))[:SHOWN_EXPIRIES]
            if not expiries:
                raise TradeError(f"{underlying.strip().upper()} has no listed expiries ahead.")
        chains = [await source.chain(underlying, when) for when in expiries]
        await reply(interaction, f"{chains[0].underlying} chain.", embed=chain_embed(chains, desk.clock()))

    @app_commands.command(name="open", description="Buy to open a new position: a preview first, then Confirm")
    @app_commands.describe(
        underlying="The underlying, e.g. SPY",
        expiry="The expiry: pick a listed one",
        strike="The strike: near the money first",
        right="Call or put",
        qty="Contracts to buy",
        limit="A limit price a share (default: a market order)",
        strategy="A strategy whose exit rules manage it (default: manual, no automatic exits)",
    )
    @app_commands.choices(right=RIGHTS)
    @traders_only()
    async def open(
        self,
        interaction: discord.Interaction,
        underlying: str,
        expiry: str,
        strike: str,
        right: app_commands.Choice[str],
        qty: app_commands.Range[int, 1, MAX_CONTRACTS],
        limit: str | None = None,
        strategy: str | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # the contract is looked up in the chain
        asked = {"qty": qty, "limit": limit, "strategy": strategy}
        ticket = await opening(
            self.bot.desk,
            self.bot.settings,
            interaction.user.id,
            underlying=underlying,
            expiry=expiry,
            strike=strike,
            right=right.value,
            **asked,
        )
        await show_preview(interaction, ticket)

    @app_commands.command(name="add", description="Buy more of an open position: a preview first, then Confirm")
    @app_commands.describe(position="The position: start typing its symbol, strategy or id", qty="Contracts to add")
    @traders_only()
    async def add(
        self, interaction: discord.Interaction, position: str, qty: app_commands.Range[int, 1, MAX_CONTRACTS]
    ) -> None:
        await show_preview(interaction, adding(self.bot.desk, interaction.user.id, position, qty))

    # --- autocomplete: only what is listed, nothing for a member who is not a trader -------------------------------

    @chain.autocomplete("underlying")
    @open.autocomplete("underlying")
    async def _underlyings(self, interaction: discord.Interaction, current: str) -> Choices:
        if not is_trader(interaction, self.bot.settings) or self.bot.desk.chain is None:
            return []
        typed = current.strip().upper()
        return [app_commands.Choice(name=u, value=u) for u in self.bot.desk.chain.underlyings() if typed in u][
            :MAX_CHOICES
        ]

    @chain.autocomplete("expiry")
    @open.autocomplete("expiry")
    async def _expiries(self, interaction: discord.Interaction, current: str) -> Choices:
        underlying = str(getattr(interaction.namespace, "underlying", "") or "")
        if not is_trader(interaction, self.bot.settings) or not underlying:
            return []
        try:
            expiries = await chain_of(self.bot.desk).expiries(underlying, self.bot.desk.today())
        except TradeError:
            return []
        found = [d for d in expiries if current.strip() in d.isoformat()]
        return [app_commands.Choice(name=f"{d.isoformat()} ({d:%a})", value=d.isoformat()) for d in found][:MAX_CHOICES]

    @open.autocomplete("strike")
    async def _strikes(self, interaction: discord.Interaction, current: str) -> Choices:
        namespace = interaction.namespace
        underlying, expiry = (str(getattr(namespace, name, "") or "") for name in ("underlying", "expiry"))
        if not is_trader(interaction, self.bot.settings) or not underlying or not expiry:
            return []
        typed = current.strip()
        try:
            source, when = chain_of(self.bot.desk), parse_expiry(expiry)
            right = (
                parse_right(str(getattr(namespace, "right", "") or "")) if getattr(namespace, "right", None) else None
            )
            listed = await source.chain(underlying, when, width=STRIKES_OFFERED)
            if typed and not any(_fits(typed, k) for k in listed.strikes):
                # A whole strike typed far from the money (any listed one may be opened): the strikes around it.
                listed = await source.chain(underlying, when, around=parse_strike(typed), width=STRIKES_OFFERED)
        except TradeError:
            return []
        choices = []
        for strike in nearest_first(listed.strikes, listed.centre):
            text = f"{strike.normalize():f}"
            if typed and not _fits(typed, strike):
                continue
            row = listed.row(strike, right) if right is not None else None
            quoted = f" ({row.contract.right.name.lower()} {row.bid}/{row.ask})" if row and row.ask is not None else ""
            choices.append(app_commands.Choice(name=f"{text}{quoted}", value=text))
        return choices[:MAX_CHOICES]

    @open.autocomplete("strategy")
    async def _strategies(self, interaction: discord.Interaction, current: str) -> Choices:
        if not is_trader(interaction, self.bot.settings):
            return []
        names = [MANUAL_STRATEGY, *(s.name for s in self.bot.settings.strategies)]
        return [
            app_commands.Choice(name=f"{n} (no automatic exits)" if n == MANUAL_STRATEGY else n, value=n)
            for n in names
            if current.strip().lower() in n.lower()
        ][:MAX_CHOICES]

    @add.autocomplete("position")
    async def _open_position(self, interaction: discord.Interaction, current: str) -> Choices:
        return position_choices(interaction, self.bot.settings, self.bot.desk.manager.open_positions(), current)


def _fits(typed: str, strike: Decimal) -> bool:
    """The strike as the trader types it: its start (`71` for 716), or the whole of it in any form (`716.0`)."""
    if f"{strike.normalize():f}".startswith(typed):
        return True
    try:
        return parse_strike(typed) == strike
    except TradeError:
        return False


async def setup(bot: OptionDeskBot) -> None:
    await bot.add_cog(Opening(bot))
