"""The start-up with an order left open at Alpaca, seen from Discord (simcord): a trader who trades meanwhile is
told in one ephemeral sentence, and a start-up that takes too long is announced in the admin channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import simcord
from simcord import assert_error, assert_responded

from bot.broker.link import RESUMING
from bot.discord.desk_bot import OptionDeskBot, create_bot
from bot.options.errors import TradeError
from tests.broker.conftest import Clock, broker_settings, until
from tests.broker.fake_alpaca import FakeAlpaca
from tests.broker.test_restart import crashed_with_an_order_at_alpaca
from tests.discord.conftest import with_discord

GUILD_ID = 333_333_333_333_333_333


@pytest.fixture
async def left_open(fake: FakeAlpaca, storage: Path, clock: Clock) -> str:
    """The client id of an order the last run left working at Alpaca."""
    return await crashed_with_an_order_at_alpaca(fake, storage, clock, [("fill", 1, "1.10"), ("hold",)], ledger_lines=1)


@pytest.fixture
async def simcord_bot(fake: FakeAlpaca, storage: Path, left_open: str) -> AsyncIterator[OptionDeskBot]:
    settings = broker_settings(fake, resume_timeout_seconds=0.2, order_timeout_seconds=600.0)
    # No background work: the test runs the start-up itself.
    bot = create_bot(with_discord(settings, guild_id=GUILD_ID, trade_channel_id=1), storage=storage, background=False)
    yield bot
    await bot.close()


async def test_a_trader_is_told_to_wait_and_the_admins_hear_of_a_slow_start_up(
    simcord_env: simcord.Env, fake: FakeAlpaca, left_open: str
) -> None:
    guild = simcord_env.create_guild("Desk", id=GUILD_ID)
    trades, admins = guild.create_text_channel("trades"), guild.create_text_channel("desk-admin")
    trader_role = guild.create_role("trader")
    bot = simcord_env.bot
    assert isinstance(bot, OptionDeskBot) and bot.desk.broker is not None
    bot.settings = with_discord(
        bot.settings, trade_channel_id=trades.id, admin_channel_id=admins.id, trader_role_ids=[trader_role.id]
    )
    trader = guild.add_member(simcord_env.create_user("tina"), roles=[trader_role])
    await simcord_env.settle()
    (position,) = bot.desk.manager.open_positions()

    result = await trader.slash(trades, "close", position=position.position_id)
    assert_responded(result, content=RESUMING, ephemeral=True)
    assert_error(simcord_env, TradeError)

    starting = asyncio.create_task(bot.desk.broker.start_up(bot.desk.manager, bot.desk.store))
    await until(lambda: list(admins.history()), within=30)
    (notice,) = [m.content for m in admins.history()]
    assert not starting.done()  # the order is still followed
    assert "were not all taken up within 0.2 s ([broker] resume_timeout_seconds)" in notice
    fake.fill(left_open, 2, "1.20")
    await starting
    assert bot.desk.manager.get(position.position_id).qty == 3
