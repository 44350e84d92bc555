"""`/halt`, `/reduce-only`, `/resume` and `/status` through simcord: who may use them, what they change, what
admins are told, and what a halted or reduce-only desk lets through, for traders and strategies alike."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from decimal import Decimal

import discord
import pytest
import simcord
from simcord import assert_error, assert_responded

from bot.discord.rights import NotAllowed
from bot.options.errors import TradeError
from bot.options.positions import Position
from bot.options.risk import NEVER_SET, TradingState
from bot.paths import PROJECT_ROOT
from bot.runtime.trading_journal import expected_state
from bot.strategies.base import StrategyDesk
from tests.discord.conftest import GUILD_ID, QQQ, SPY, Desk

STATE_COMMANDS = {"halt": TradingState.HALTED, "reduce-only": TradingState.REDUCE_ONLY, "resume": TradingState.ACTIVE}


def admin_channel(desk: Desk) -> simcord.ChannelHandle:
    channel = desk.guild.create_text_channel("desk-admins")
    desk.use_settings(admin_channel_id=channel.id)
    return channel


def notices(desk: Desk, channel: simcord.ChannelHandle) -> list[str]:
    return [m.content for m in channel.history() if m.author.id == desk.bot.user.id]


async def stored_state(desk: Desk):  # type: ignore[no-untyped-def]
    return expected_state(desk.storage)  # the journal's


def strategy_desk(desk: Desk) -> StrategyDesk:
    return StrategyDesk("orb", desk.manager, desk.bot.desk.quotes, clock=desk.clock, watch=lambda symbols: None)


# --- rights --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(STATE_COMMANDS))
@pytest.mark.parametrize("who", ["trader", "nobody", "server_manager"])
async def test_only_desk_admins_change_the_trading_state(desk: Desk, command: str, who: str) -> None:
    # Arrange: the desk halted by an admin first, so that /resume would change something too; the server lets
    # everyone see the command (an Integrations override), so only the bot's own check stands in the way.
    await desk.bot.desk.switch.set(TradingState.HALTED, "before the test", "discord:1")
    before = await stored_state(desk)
    synced = await desk.bot.tree.fetch_commands(guild=discord.Object(GUILD_ID))
    [app_command] = [c for c in synced if c.name == command]
    desk.guild.set_command_permissions(app_command, {desk.trader: True, desk.nobody: True})

    # Act
    result = await getattr(desk, who).slash(desk.channel, command, reason="let me")

    # Assert
    assert_responded(result, content="Only desk admins may do that.", ephemeral=True)
    assert_error(desk.env, NotAllowed)
    assert await stored_state(desk) == before
    assert desk.bot.desk.switch.current == before


async def test_status_is_for_traders_only(desk: Desk) -> None:
    result = await desk.nobody.slash(desk.channel, "status")

    assert_responded(result, content="You need a trader role to use optiondesk.", ephemeral=True)
    assert_error(desk.env, NotAllowed)


# --- changes by command ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "state"), sorted(STATE_COMMANDS.items()))
async def test_an_admin_changes_the_state_and_the_admin_channel_is_told(
    desk: Desk, command: str, state: TradingState
) -> None:
    admins = admin_channel(desk)

    result = await desk.admin.slash(desk.channel, command, reason="broker maintenance")
    await desk.env.settle()

    assert_responded(result, ephemeral=True, contains=f"The desk is now {state}")
    stored = await stored_state(desk)
    assert (stored.state, stored.reason, stored.set_by) == (state, "broker maintenance", f"discord:{desk.admin.id}")
    [notice] = notices(desk, admins)
    assert notice.startswith(f"Trading state: **{state}** (was active), set by <@{desk.admin.id}>: broker maintenance")


async def test_a_reason_with_mentions_and_markdown_neither_pings_nor_formats(desk: Desk) -> None:
    admins = admin_channel(desk)

    await desk.admin.slash(desk.channel, "halt", reason="@everyone **down** <@123> `x`")
    await desk.env.settle()

    [notice] = notices(desk, admins)
    assert "@\u200beveryone" in notice and "\\*\\*down\\*\\*" in notice and "\\`x\\`" in notice
    [post] = desk.requests("POST", f"/channels/{admins.id}/messages")
    assert post.json["allowed_mentions"] == {"parse": []}
    assert (await stored_state(desk)).reason == "@everyone **down** <@123> `x`"  # stored as given


async def test_a_blank_reason_is_refused_and_changes_nothing(desk: Desk) -> None:
    result = await desk.admin.slash(desk.channel, "halt", reason="   ")

    assert_responded(result, content="Give a reason: it is shown to the admins and in /status.", ephemeral=True)
    assert_error(desk.env, TradeError)
    assert await stored_state(desk) == NEVER_SET


# --- what each state lets through ---------------------------------------------------------------------


async def test_a_halted_desk_refuses_a_strategys_open_and_a_traders_trim_alike(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    # Arrange
    caplog.set_level(logging.INFO)
    position = await desk.open(qty=4)
    await desk.admin.slash(desk.channel, "halt", reason="stop")
    ledger_before = desk.ledger_bytes()

    # Act
    opened = await strategy_desk(desk).open(QQQ, 1)
    trim = await desk.trader.slash(desk.channel, "trim", position=position.position_id, qty=1)

    # Assert
    assert opened is None
    assert "could not open 1 QQQ" in caplog.text and "the desk is halted" in caplog.text
    assert_responded(trim, ephemeral=True, contains="Refused: the desk is halted")
    assert_error(desk.env, TradeError)
    assert desk.ledger_bytes() == ledger_before
    assert desk.manager.get(position.position_id).qty == 4


async def test_reduce_only_allows_trims_and_closes_and_refuses_opens_and_adds(desk: Desk) -> None:
    # Arrange
    position = await desk.open(qty=4)
    await desk.admin.slash(desk.channel, "reduce-only", reason="loss day")

    # Act
    trim = await desk.trader.slash(desk.channel, "trim", position=position.position_id, qty=1)
    opened = await strategy_desk(desk).open(QQQ, 1)
    added = await strategy_desk(desk).add(desk.manager.get(position.position_id), 1)
    close = await desk.trader.slash(desk.channel, "close", position=position.position_id)

    # Assert
    assert_responded(trim, ephemeral=True, contains="Sold 1 ")
    assert opened is None and added is None
    assert_responded(close, ephemeral=True, contains="position closed")
    assert [line["kind"] for line in desk.ledger_lines()] == ["open", "trim", "close"]


async def test_resume_lets_the_desk_trade_again(desk: Desk) -> None:
    await desk.admin.slash(desk.channel, "halt", reason="stop")
    await desk.admin.slash(desk.channel, "resume", reason="all clear")

    position = await desk.open(qty=2)

    assert position.qty == 2


async def test_the_state_survives_a_restart(desk: Desk) -> None:
    position = await desk.open(qty=2)
    await desk.admin.slash(desk.channel, "halt", reason="overnight")

    await desk.restart()
    trim = await desk.trader.slash(desk.channel, "trim", position=position.position_id, qty=1)

    current = desk.bot.desk.switch.current
    assert (current.state, current.reason, current.set_by) == (
        TradingState.HALTED,
        "overnight",
        f"discord:{desk.admin.id}",
    )
    assert_responded(trim, ephemeral=True, contains="Refused: the desk is halted")
    assert_error(desk.env, TradeError)


# --- by the daily-loss limit and from the shell -----------------------------------------------------------


async def test_the_fill_that_reaches_the_daily_loss_limit_moves_the_desk_to_reduce_only(desk: Desk) -> None:
    # Arrange: 50 contracts at 2.00 (10,000.00 at risk, the default per-position limit); the loss limit is 5,000.
    admins = admin_channel(desk)
    desk.quote(SPY, "1.95", "2.00")
    loser = await desk.open(qty=50)
    desk.quote(SPY, "1.00", "1.05")
    await desk.manager.trim(loser.position_id, qty=49)  # -4,900.00: under the limit
    assert desk.bot.desk.switch.current.state is TradingState.ACTIVE

    # Act: the last contract (and the fees) take the day past -5,000.00
    await desk.manager.close(loser.position_id)
    await desk.env.settle()

    # Assert
    stored = await stored_state(desk)
    assert (stored.state, stored.set_by) == (TradingState.REDUCE_ONLY, "risk")
    assert stored.reason.endswith("reached the max daily loss limit (a loss of 5,000.00)")
    [notice] = notices(desk, admins)
    assert notice.startswith("Trading state: **reduce-only** (was active), set by the desk's risk checks: ")
    assert await strategy_desk(desk).open(QQQ, 1) is None


async def test_a_state_set_from_the_shell_reaches_the_running_bot(desk: Desk) -> None:
    # Arrange
    admins = admin_channel(desk)
    position = await desk.open(qty=2)

    # Act: the operator halts the desk from the shell while the bot runs; the bot's watcher reads it.
    shell = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "state", "--storage", str(desk.storage), "--set", "halted",
        "--reason", "feed is down", cwd=PROJECT_ROOT, stderr=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await shell.wait() == 0
    await desk.bot.desk.switch.load()  # what the `watch` worker does every WATCH_SECONDS
    await desk.env.settle()
    trim = await desk.trader.slash(desk.channel, "trim", position=position.position_id, qty=1)

    # Assert
    assert notices(desk, admins) == [
        "Trading state: **halted** (was active), set by the operator (shell): feed is down. "
        "Now no orders at all; open positions stay and are still shown."
    ]
    assert_responded(trim, ephemeral=True, contains="Refused: the desk is halted")
    assert_error(desk.env, TradeError)


# --- /status -------------------------------------------------------------------------------------------------


async def test_status_shows_state_feed_risk_pnl_backlog_and_uptime(desk: Desk) -> None:
    # Arrange: one open position (10 @ 1.10 = 1,100.00 at risk), a closed one that lost 20.00, a halt.
    position: Position = await desk.open(qty=10)
    desk.quote(QQQ, "2.00", "2.10")
    loser = await desk.open(QQQ, 1)
    desk.quote(QQQ, "1.90", "2.00")
    await desk.manager.close(loser.position_id)  # its message not delivered yet: the backlog
    await desk.admin.slash(desk.channel, "halt", reason="**checking** fills")

    # Act
    result = await desk.trader.slash(desk.channel, "status")

    # Assert
    assert_responded(result, ephemeral=True, content="The desk is halted.")
    text = result.response.embeds[0].description or ""
    lines = text.splitlines()
    # Who set it: the admin as a mention (shown as their name, never a ping), not their raw id.
    assert (
        lines[0]
        == f"Trading: HALTED since 2026-11-25 10:00 New York, set by <@{desk.admin.id}>: \\*\\*checking\\*\\* fills"
    )
    assert lines[1] == "Market: open until 16:00 New York"
    assert lines[2] == "Feed: QQQ no quote yet, SPY no quote yet"  # underlyings: only contracts are quoted here
    assert "Open positions: 1 (limit 10)" in lines
    assert "Premium at risk: 1,100.00 (limit 30,000.00)" in lines
    assert f"  {position.contract.label} (10): 1,100.00 (limit 10,000.00)" in lines
    fees = sum(Decimal(line["fees"]) for line in desk.ledger_lines())
    assert f"Realized P&L today (2026-11-25): {-20 - fees:,.2f} (loss limit 5,000.00)" in lines
    assert "Discord backlog: 1 message update(s) waiting" in lines
    assert re.fullmatch(r"Uptime: \d+ h \d\d min", lines[-1])
