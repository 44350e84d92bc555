"""The Trim 25% / Trim 50% / Close / Add buttons under a position's message, and the trades behind them and `/trim`,
`/close`.

Buttons are persistent (`DynamicItem`: the custom id carries the position), so they keep working after a restart;
the bot registers them in `setup_hook` and its board puts them under each open position's message. A button that
sells asks for an ephemeral Confirm first. Rights are checked when the member acts, and again when they confirm.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from bot.discord.errors import answer_error, refusal
from bot.discord.open_flow import AddQuantity
from bot.discord.rights import require_trader
from bot.discord.ui import actor_of, trade_result
from bot.options.errors import TradeError
from bot.options.positions import Position, Source

if TYPE_CHECKING:
    from bot.discord.desk_bot import OptionDeskBot

TRIM_BUTTONS = (25, 50)
CONFIRM_SECONDS = 60


def _bot(interaction: discord.Interaction) -> OptionDeskBot:
    return interaction.client  # type: ignore[return-value]


async def trim_position(
    interaction: discord.Interaction, position_id: str, *, qty: int | None, percent: int | None
) -> str:
    manager = _bot(interaction).desk.manager
    before = manager.get(position_id)
    after = await manager.trim(position_id, qty=qty, percent=percent, source=Source.MANUAL, actor=actor_of(interaction))
    return trade_result("Sold", before, after, manager.orders.get(after.actions[-1].order_id))


async def close_position(interaction: discord.Interaction, position_id: str) -> str:
    manager = _bot(interaction).desk.manager
    before = manager.get(position_id)
    after = await manager.close(position_id, source=Source.MANUAL, actor=actor_of(interaction))
    return trade_result("Sold", before, after, manager.orders.get(after.actions[-1].order_id))


class Confirm(discord.ui.View):
    """An ephemeral Confirm / Cancel before a button sells."""

    def __init__(self, action: Callable[[discord.Interaction], Awaitable[str]]) -> None:
        super().__init__(timeout=CONFIRM_SECONDS)
        self._action = action

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button[Confirm]) -> None:
        self.stop()
        # Discord waits 3 s for an answer and an order at a broker may take longer: answered now, told after.
        await interaction.response.defer()
        try:
            require_trader(interaction, _bot(interaction).settings)  # a role removed meanwhile counts
            result = await self._action(interaction)
        except Exception as error:
            # The refusal replaces the question, so no Confirm / Cancel is left behind to press again.
            result = refusal(interaction, error)
        await interaction.edit_original_response(content=result, view=None)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button[Confirm]) -> None:
        self.stop()
        await interaction.response.edit_message(content="Cancelled; nothing was sold.", view=None)


async def ask_to_confirm(
    interaction: discord.Interaction,
    position_id: str,
    question: str,
    action: Callable[[discord.Interaction], Awaitable[str]],
) -> None:
    try:
        require_trader(interaction, _bot(interaction).settings)
        # A button left on an old message (or a crafted one) for a position closed since: say so at once.
        position = _bot(interaction).desk.manager.get(position_id)
        if not position.is_open:
            raise TradeError(f"Position {position.contract.label} ({position_id}) is closed; there is nothing to sell.")
    except Exception as error:
        await answer_error(interaction, error)
        return
    await interaction.response.send_message(question, view=Confirm(action), ephemeral=True)


class TrimButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"pos:trim:(?P<pct>\d{1,3}):(?P<id>[\w-]+)"):
    def __init__(self, position_id: str, percent: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=f"Trim {percent}%",
                style=discord.ButtonStyle.secondary,
                custom_id=f"pos:trim:{percent}:{position_id}",
            )
        )
        self.position_id = position_id
        self.percent = percent

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> TrimButton:
        return cls(match["id"], int(match["pct"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        async def trim(confirmed: discord.Interaction) -> str:
            return await trim_position(confirmed, self.position_id, qty=None, percent=self.percent)

        await ask_to_confirm(
            interaction, self.position_id, f"Sell {self.percent}% of position `{self.position_id}`?", trim
        )


class CloseButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"pos:close:(?P<id>[\w-]+)"):
    def __init__(self, position_id: str) -> None:
        super().__init__(
            discord.ui.Button(label="Close", style=discord.ButtonStyle.danger, custom_id=f"pos:close:{position_id}")
        )
        self.position_id = position_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> CloseButton:
        return cls(match["id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        async def close(confirmed: discord.Interaction) -> str:
            return await close_position(confirmed, self.position_id)

        await ask_to_confirm(
            interaction, self.position_id, f"Close position `{self.position_id}` (sell everything)?", close
        )


class AddButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"pos:add:(?P<id>[\w-]+)"):
    """Buy more: asks how many, then shows the same preview and Confirm as /add."""

    def __init__(self, position_id: str) -> None:
        super().__init__(
            discord.ui.Button(label="Add", style=discord.ButtonStyle.primary, custom_id=f"pos:add:{position_id}")
        )
        self.position_id = position_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> AddButton:
        return cls(match["id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            require_trader(interaction, _bot(interaction).settings)
            position = _bot(interaction).desk.manager.get(self.position_id)
            if not position.is_open:
                raise TradeError(
                    f"Position {position.contract.label} ({self.position_id}) is closed; nothing to add to."
                )
        except Exception as error:
            await answer_error(interaction, error)
            return
        await interaction.response.send_modal(AddQuantity(self.position_id))


def position_buttons(position: Position) -> discord.ui.View | None:
    """The buttons under an open position's message; a closed position has none."""
    if not position.is_open:
        return None
    view = discord.ui.View(timeout=None)
    for percent in TRIM_BUTTONS:
        view.add_item(TrimButton(position.position_id, percent))
    view.add_item(CloseButton(position.position_id))
    view.add_item(AddButton(position.position_id))
    return view
