"""Slash commands through simcord: what is synced, who may use them, what they do and what they answer."""

from __future__ import annotations

from datetime import timedelta

import discord
import pytest
import simcord
from discord import app_commands
from simcord import assert_error, assert_responded

from bot.discord.rights import NotAllowed
from bot.options.errors import TradeError
from tests.discord.conftest import GUILD_ID, NOW, QQQ, SPY, Desk

ADMIN_COMMANDS = {"reset-messages", "halt", "reduce-only", "resume", "reconcile"}
EXPECTED_COMMANDS = {"positions", "position", "trim", "close", "status", "pnl", "chain", "open", "add", *ADMIN_COMMANDS}
POSITION_OPTION = {"type": 3, "required": True, "autocomplete": True}


# --- the command tree --------------------------------------------------------------------------------


async def test_the_bot_syncs_exactly_its_commands_to_its_guild(desk: Desk) -> None:
    # Arrange / Act: the bot started in the fixture.
    synced = await desk.bot.tree.fetch_commands(guild=discord.Object(GUILD_ID))
    global_commands = await desk.bot.tree.fetch_commands()

    # Assert
    assert desk.bot.is_ready()
    assert sorted(c.name for c in synced) == sorted(EXPECTED_COMMANDS)
    assert global_commands == []
    puts = [r for r in desk.env.http_requests if r.method == "PUT" and r.path.endswith("/commands")]
    assert [r.path.split("/")[-2] for r in puts] == [str(GUILD_ID)]


async def test_command_options_are_typed_and_bounded(desk: Desk) -> None:
    # Arrange / Act
    synced = {c.name: c.to_dict() for c in await desk.bot.tree.fetch_commands(guild=discord.Object(GUILD_ID))}

    def options(name: str) -> dict[str, dict[str, object]]:
        return {o["name"]: o for o in synced[name]["options"]}

    def shape(option: dict[str, object], *keys: str) -> dict[str, object]:
        return {key: option[key] for key in keys}

    # Assert
    show = options("positions")["show"]
    assert shape(show, "type", "required", "autocomplete") == {"type": 3, "required": False, "autocomplete": False}
    assert [c["value"] for c in show["choices"]] == ["open", "closed", "all"]
    for name in ("position", "trim", "close"):
        assert shape(options(name)["position"], "type", "required", "autocomplete") == POSITION_OPTION
    trim = options("trim")
    assert list(trim) == ["position", "percent", "qty"]
    assert shape(trim["percent"], "type", "required", "min_value", "max_value") == {
        "type": 4,
        "required": False,
        "min_value": 1,
        "max_value": 100,
    }
    assert shape(trim["qty"], "type", "required", "min_value") == {"type": 4, "required": False, "min_value": 1}
    assert options("close").keys() == {"position"}
    assert synced["reset-messages"]["options"] == []


async def test_every_command_and_option_has_a_description(desk: Desk) -> None:
    synced = await desk.bot.tree.fetch_commands(guild=discord.Object(GUILD_ID))

    for command in synced:
        assert command.description.strip() not in ("", "…"), command.name
        for option in command.options:
            assert option.description.strip() not in ("", "…"), f"{command.name} {option.name}"


async def test_only_admin_commands_are_hidden_behind_manage_guild(desk: Desk) -> None:
    synced = {c.name: c for c in await desk.bot.tree.fetch_commands(guild=discord.Object(GUILD_ID))}

    for name in ADMIN_COMMANDS:
        assert synced[name].default_member_permissions == discord.Permissions(manage_guild=True), name
        assert name not in desk.trader.available_commands(desk.channel)
        assert name in desk.server_manager.available_commands(desk.channel)
    for name in EXPECTED_COMMANDS - ADMIN_COMMANDS:
        assert synced[name].default_member_permissions is None, name


# --- /trim and /close ----------------------------------------------------------------------------------


async def test_trim_by_percent_sells_replies_ephemerally_and_records_the_trader(desk: Desk) -> None:
    # Arrange
    position = await desk.open(qty=10)
    desk.quote(SPY, "1.30", "1.40")

    # Act
    result = await desk.trader.slash(desk.channel, "trim", position=position.position_id, percent=50)

    # Assert
    assert_responded(result, ephemeral=True)
    assert result.response.content.startswith("Sold 5 SPY 2026-11-27 450C @ 1.30")
    assert result.response.content.endswith("5 left open.")
    assert desk.manager.get(position.position_id).qty == 5
    last = desk.ledger_lines()[-1]
    assert (last["kind"], last["qty"], last["price"]) == ("trim", 5, "1.30")
    assert (last["source"], last["actor"]) == ("manual", f"discord:{desk.trader.id}")


async def test_trim_by_qty_sells_that_many(desk: Desk) -> None:
    position = await desk.open(qty=10)

    result = await desk.trader.slash(desk.channel, "trim", position=position.position_id, qty=3)

    assert_responded(result, ephemeral=True, contains="7 left open")
    assert desk.manager.get(position.position_id).qty == 7
    assert desk.ledger_lines()[-1]["qty"] == 3


async def test_close_sells_everything(desk: Desk) -> None:
    position = await desk.open(qty=4)

    result = await desk.trader.slash(desk.channel, "close", position=position.position_id)

    assert_responded(result, ephemeral=True, contains="position closed")
    assert not desk.manager.get(position.position_id).is_open
    last = desk.ledger_lines()[-1]
    assert (last["kind"], last["qty"], last["position_qty"]) == ("close", 4, 0)
    assert last["actor"] == f"discord:{desk.trader.id}"


async def test_admin_role_implies_trader(desk: Desk) -> None:
    position = await desk.open(qty=4)

    result = await desk.admin.slash(desk.channel, "trim", position=position.position_id, qty=1)

    assert_responded(result, ephemeral=True, contains="3 left open")
    assert desk.ledger_lines()[-1]["actor"] == f"discord:{desk.admin.id}"


async def test_trim_by_a_member_without_the_role_is_refused_and_changes_nothing(desk: Desk) -> None:
    # Arrange
    position = await desk.open(qty=10)
    ledger_before = desk.ledger_bytes()

    # Act
    result = await desk.nobody.slash(desk.channel, "trim", position=position.position_id, percent=50)

    # Assert
    assert_responded(result, content="You need a trader role to use optiondesk.", ephemeral=True)
    assert_error(desk.env, NotAllowed)
    assert desk.ledger_bytes() == ledger_before
    assert desk.manager.get(position.position_id).qty == 10
    await desk.deliver()
    assert desk.edits(desk.message_of(position.position_id)) == []
    assert len(desk.posts()) == 1


@pytest.mark.parametrize("command", ["close", "position", "positions"])
async def test_every_trader_command_refuses_a_member_without_the_role(desk: Desk, command: str) -> None:
    position = await desk.open(qty=2)
    ledger_before = desk.ledger_bytes()
    options = {} if command == "positions" else {"position": position.position_id}

    result = await desk.nobody.slash(desk.channel, command, **options)

    assert_responded(result, content="You need a trader role to use optiondesk.", ephemeral=True)
    assert result.response.embeds == []
    assert_error(desk.env, app_commands.CheckFailure)
    assert desk.ledger_bytes() == ledger_before


async def test_an_oversized_trim_is_refused_with_the_reason(desk: Desk) -> None:
    position = await desk.open(qty=10)
    ledger_before = desk.ledger_bytes()

    result = await desk.trader.slash(desk.channel, "trim", position=position.position_id, qty=11)

    assert_responded(
        result, content="Cannot trim 11 contracts of SPY 2026-11-27 450C: only 10 are open.", ephemeral=True
    )
    assert_error(desk.env, TradeError)
    assert desk.ledger_bytes() == ledger_before
    assert desk.manager.get(position.position_id).qty == 10
    await desk.deliver()
    assert desk.edits(desk.message_of(position.position_id)) == []


async def test_an_unknown_position_is_refused(desk: Desk) -> None:
    await desk.open(qty=10)
    ledger_before = desk.ledger_bytes()

    result = await desk.trader.slash(desk.channel, "close", position="pos-nope")

    assert_responded(result, content="There is no position 'pos-nope'.", ephemeral=True)
    assert_error(desk.env, TradeError)
    assert desk.ledger_bytes() == ledger_before


async def test_a_closed_position_is_refused(desk: Desk) -> None:
    position = await desk.open(qty=2)
    await desk.manager.close(position.position_id)
    ledger_before = desk.ledger_bytes()

    result = await desk.trader.slash(desk.channel, "trim", position=position.position_id, qty=1)

    assert_responded(result, ephemeral=True, contains="is already closed")
    assert_error(desk.env, TradeError)
    assert desk.ledger_bytes() == ledger_before


@pytest.mark.parametrize("amount", [{"percent": 0}, {"percent": 101}, {"qty": 0}, {"qty": 10_001}])
async def test_out_of_range_amounts_never_reach_the_bot(desk: Desk, amount: dict[str, int]) -> None:
    position = await desk.open(qty=10)
    ledger_before = desk.ledger_bytes()

    with pytest.raises(simcord.OptionError) as refused:
        await desk.trader.slash(desk.channel, "trim", position=position.position_id, **amount)

    assert refused.value.code == "option-range"
    assert desk.ledger_bytes() == ledger_before


@pytest.mark.parametrize("amount", [{}, {"percent": 50, "qty": 2}])
async def test_the_bot_asks_for_exactly_one_amount(desk: Desk, amount: dict[str, int]) -> None:
    position = await desk.open(qty=10)
    ledger_before = desk.ledger_bytes()

    result = await desk.trader.slash(desk.channel, "trim", position=position.position_id, **amount)

    assert_responded(result, content="Give either percent or qty (not both, not neither).", ephemeral=True)
    assert_error(desk.env, TradeError)
    assert desk.ledger_bytes() == ledger_before


async def test_a_trim_without_a_usable_quote_is_refused(desk: Desk) -> None:
    position = await desk.open(qty=10)
    desk.quote(SPY, "0", "0")  # no usable price on either side
    ledger_before = desk.ledger_bytes()

    result = await desk.trader.slash(desk.channel, "trim", position=position.position_id, qty=1)

    assert_responded(result, content="No usable quote for SPY 2026-11-27 450C; the order was not sent.", ephemeral=True)
    assert_error(desk.env, TradeError)
    assert desk.ledger_bytes() == ledger_before


# --- /positions and /position ----------------------------------------------------------------------------


async def test_positions_lists_open_ones_by_default_and_closed_or_all_of_today_on_request(desk: Desk) -> None:
    # Arrange: one position closed yesterday, one open today, one closed today.
    yesterday = await desk.open(SPY, 2)
    await desk.manager.close(yesterday.position_id)
    await desk.advance_to(NOW + timedelta(days=2))  # Friday: the market is closed on Thanksgiving
    desk.quote(QQQ, "2.00", "2.10")
    still_open = await desk.open(SPY, 3)
    closed_today = await desk.open(QQQ, 1, strategy="meanrev")
    await desk.manager.close(closed_today.position_id)

    # Act
    default = await desk.trader.slash(desk.channel, "positions")
    closed = await desk.trader.slash(desk.channel, "positions", show="closed")
    everything = await desk.trader.slash(desk.channel, "positions", show="all")

    # Assert
    def listed(result: simcord.InteractionResult) -> str:
        assert result.ephemeral
        return result.response.embeds[0].description or ""

    assert default.response.content == "1 position(s)."
    assert default.response.embeds[0].title == "Open positions"
    assert still_open.position_id in listed(default)
    assert closed_today.position_id not in listed(default)
    assert closed.response.embeds[0].title == "Positions closed on 2026-11-27"
    assert closed_today.position_id in listed(closed)
    assert still_open.position_id not in listed(closed)
    assert yesterday.position_id not in listed(closed)
    assert everything.response.content == "2 position(s)."
    assert {still_open.position_id, closed_today.position_id} <= set(listed(everything).replace("`", " ").split())
    assert yesterday.position_id not in listed(everything)


async def test_positions_says_none_when_nothing_is_open(desk: Desk) -> None:
    result = await desk.trader.slash(desk.channel, "positions")

    assert_responded(result, content="0 position(s).", ephemeral=True)
    assert result.response.embeds[0].description == "None."


async def test_position_shows_one_position_with_its_history(desk: Desk) -> None:
    position = await desk.open(qty=10)
    await desk.trader.slash(desk.channel, "trim", position=position.position_id, qty=4)

    result = await desk.trader.slash(desk.channel, "position", position=position.position_id)

    assert_responded(result, content=f"Position `{position.position_id}`", ephemeral=True)
    [embed] = result.response.embeds
    assert embed.title == "SPY 2026-11-27 450C"
    fields = {f.name: f.value for f in embed.fields}
    assert fields["Open"] == "6"
    history = (fields["History"] or "").splitlines()
    assert [line.split()[1:3] for line in history] == [["open", "10"], ["trim", "4"]]
    assert f"<@{desk.trader.id}>" in history[1]
    assert position.position_id in (embed.footer.text or "")


# --- autocomplete ----------------------------------------------------------------------------------------


async def test_autocomplete_offers_open_positions_for_trim_and_close_and_all_for_position(desk: Desk) -> None:
    # Arrange
    spy = await desk.open(SPY, 2)
    desk.quote(QQQ, "2.00", "2.10")
    qqq = await desk.open(QQQ, 1, strategy="meanrev")
    closed = await desk.open(SPY, 1)
    await desk.manager.close(closed.position_id)

    # Act
    trim = await desk.trader.autocomplete(desk.channel, "trim", "position", "")
    close_spy = await desk.trader.autocomplete(desk.channel, "close", "position", "spy")
    show_spy = await desk.trader.autocomplete(desk.channel, "position", "position", "SPY")
    by_strategy = await desk.trader.autocomplete(desk.channel, "position", "position", "meanrev")
    by_id = await desk.trader.autocomplete(desk.channel, "trim", "position", qqq.position_id[-8:], percent=50)

    # Assert
    def values(choices: list[dict[str, object]]) -> set[object]:
        return {c["value"] for c in choices}

    assert values(trim) == {spy.position_id, qqq.position_id}
    assert values(close_spy) == {spy.position_id}
    assert values(show_spy) == {spy.position_id, closed.position_id}
    assert values(by_strategy) == {qqq.position_id}
    assert values(by_id) == {qqq.position_id}
    assert all(0 < len(str(c["name"])) <= 100 for c in trim)
    assert any(str(c["name"]).startswith("QQQ 2026-11-27 400P · 1 @") for c in trim)


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("SPY 450C", {"spy"}),
        ("450 call", {"spy"}),
        ("spy call", {"spy"}),
        ("SPY   261127C00450000", {"spy"}),
        ("SPY261127C00450000", {"spy"}),
        ("400 put", {"qqq"}),
        ("2026-11-27", {"spy", "qqq"}),
        ("qqq call", set()),
        ("450P", set()),
    ],
)
async def test_autocomplete_finds_what_traders_type(desk: Desk, typed: str, found: set[str]) -> None:
    spy = await desk.open(SPY, 2)
    desk.quote(QQQ, "2.00", "2.10")
    qqq = await desk.open(QQQ, 1, strategy="meanrev")

    choices = await desk.trader.autocomplete(desk.channel, "position", "position", typed)

    ids = {"spy": spy.position_id, "qqq": qqq.position_id}
    assert {c["value"] for c in choices} == {ids[name] for name in found}


async def test_autocomplete_shows_nothing_to_a_member_without_the_role(desk: Desk) -> None:
    await desk.open(SPY, 2)

    choices = await desk.nobody.autocomplete(desk.channel, "position", "position", "")

    assert choices == []
