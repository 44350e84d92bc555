"""The bot under simcord (an in-process Discord for the real discord.py client): a desk with its trade
channel, a trader, an admin and a member without a role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import simcord

from bot.desk_bot import create_bot
from bot.options.contracts import OptionContract
from bot.options.quotes import Quote
from bot.settings import DiscordSettings, Settings

GUILD_ID = 111_111_111_111_111_111
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SPY = OptionContract.parse("SPY   261127C00450000")


def base_settings() -> Settings:
    # Channel and role ids are created by the simulator; the fixture fills them in once they exist.
    return Settings(discord=DiscordSettings(guild_id=GUILD_ID, trade_channel_id=1), strategies=[])


def market_quote(bid: str, ask: str) -> Quote:
    return Quote(bid=Decimal(bid), ask=Decimal(ask), bid_size=50, ask_size=50, ts=NOW)


@pytest.fixture
def storage(tmp_path):
    return tmp_path / "storage"


@pytest.fixture
def simcord_bot(storage):
    return create_bot(base_settings(), storage=storage, background=False, clock=lambda: NOW)


@dataclass
class Desk:
    env: simcord.Env
    bot: object
    channel: simcord.ChannelHandle
    other_channel: simcord.ChannelHandle
    trader: simcord.MemberActor
    admin: simcord.MemberActor
    nobody: simcord.MemberActor
    trader_role: simcord.RoleHandle

    @property
    def manager(self):
        return self.bot.desk.manager

    def quote(self, contract: OptionContract, bid: str, ask: str) -> None:
        self.bot.desk.quotes.update(contract.symbol, market_quote(bid, ask))

    async def deliver(self) -> None:
        """Let the notifier deliver what is queued (background tasks are off in tests)."""
        await self.bot.desk.notifier.flush()
        await self.env.settle()

    def messages(self):
        return [m for m in self.channel.history() if m.author.id == self.bot.user.id and m.embeds]


@pytest.fixture
async def desk(simcord_env) -> Desk:
    env = simcord_env
    guild = env.create_guild("Desk", id=GUILD_ID)
    channel = guild.create_text_channel("trades")
    other = guild.create_text_channel("chat")
    trader_role = guild.create_role("trader")
    admin_role = guild.create_role("admin")
    trader = guild.add_member(env.create_user("tina"), roles=[trader_role])
    admin = guild.add_member(env.create_user("adam"), roles=[admin_role])
    nobody = guild.add_member(env.create_user("nora"))
    bot = env.bot
    bot.settings = bot.settings.model_copy(
        update={
            "discord": bot.settings.discord.model_copy(
                update={
                    "trade_channel_id": channel.id,
                    "trader_role_ids": [trader_role.id],
                    "admin_role_ids": [admin_role.id],
                }
            )
        }
    )
    await env.settle()
    return Desk(env, bot, channel, other, trader, admin, nobody, trader_role)
