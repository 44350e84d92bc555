"""`/reconcile` under simcord with the desk on the fake Alpaca: admins only; the summary is ephemeral and
the report goes to the admin channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest
import simcord
from simcord import assert_error, assert_responded

from bot.discord.desk_bot import OptionDeskBot, create_bot
from bot.discord.rights import NotAllowed
from bot.settings import DiscordSettings
from tests.broker.conftest import broker_settings
from tests.broker.fake_alpaca import FakeAlpaca

GUILD_ID = 222_222_222_222_222_222


@pytest.fixture
async def simcord_bot(fake: FakeAlpaca, tmp_path: Path) -> AsyncIterator[OptionDeskBot]:
    settings = broker_settings(fake).replace(discord=DiscordSettings(guild_id=GUILD_ID, trade_channel_id=1))
    bot = create_bot(settings, storage=tmp_path / "storage", background=False)
    yield bot
    await bot.close()  # simcord detaches the bot but leaves closing it (its store and ledger) to us


@pytest.fixture
async def world(simcord_env: simcord.Env) -> dict[str, object]:
    env = simcord_env
    guild = env.create_guild("Desk", id=GUILD_ID)
    trades, admins = guild.create_text_channel("trades"), guild.create_text_channel("desk-admin")
    trader_role = guild.create_role("trader")
    # Manages the server, so Discord shows the command, but is no desk admin.
    manager_role = guild.create_role("server manager", permissions=discord.Permissions(manage_guild=True))
    admin_role = guild.create_role("admin", permissions=discord.Permissions(manage_guild=True))
    bot = env.bot
    assert isinstance(bot, OptionDeskBot)
    bot.settings = bot.settings.replace(
        discord=bot.settings.discord.replace(
            trade_channel_id=trades.id,
            admin_channel_id=admins.id,
            trader_role_ids=[trader_role.id],
            admin_role_ids=[admin_role.id],
        )
    )
    await env.settle()
    return {
        "trades": trades,
        "admins": admins,
        "trader": guild.add_member(env.create_user("tina"), roles=[trader_role, manager_role]),
        "admin": guild.add_member(env.create_user("adam"), roles=[admin_role]),
    }


async def test_reconcile_is_for_admins_only(simcord_env: simcord.Env, world: dict[str, object]) -> None:
    trader, trades = world["trader"], world["trades"]
    result = await trader.slash(trades, "reconcile")  # type: ignore[attr-defined]
    assert_responded(result, content="Only desk admins may do that.", ephemeral=True)
    assert_error(simcord_env, NotAllowed)


async def test_an_admin_gets_the_summary_and_the_admin_channel_the_report(
    simcord_env: simcord.Env, world: dict[str, object], fake: FakeAlpaca
) -> None:
    fake.positions["SPY261127C00450000"] = 2  # the broker holds what the ledger does not
    admin, trades, admins = world["admin"], world["trades"], world["admins"]
    result = await admin.slash(trades, "reconcile", day="2026-11-25")  # type: ignore[attr-defined]
    await simcord_env.settle()
    answer = result.followups[-1] if result.followups else result.response
    assert result.ephemeral
    text = str(answer.content)
    assert text.startswith("Reconcile 2026-11-25:") and "1 position quantity difference" in text
    assert text.endswith("The report is in the admin channel.")
    (report,) = [m.content for m in admins.history()]  # type: ignore[attr-defined]
    assert "position SPY   261127C00450000: ledger 0 open, broker 2" in report
