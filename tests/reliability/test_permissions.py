"""The permission matrix, wire level: every slash command and every button the bot registers, for a member with no
role, a trader and an admin, in the desk's own server, in another server (where the same role ids exist) and in a
DM. Refusals are ephemeral sentences that leak nothing of the desk; nothing is traded or written. Rights are
checked at the moment of the action: a role removed after a message was posted (or after a Confirm was asked for)
counts at once.

The matrix is generated from the bot's command tree and its registered buttons; RIGHTS below says what each one
needs and how to call it. A command or button missing from RIGHTS fails the test: add new ones there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.options.contracts import OptionContract
from bot.options.contracts import Right as OptionRight
from bot.options.market_hours import MARKET_TZ, next_trading_day
from tests.discord.fake_discord import EPHEMERAL, FakeDiscord, Json
from tests.discord.wire import (
    ADMIN_ROLE_ID,
    CHANNEL_ID,
    GUILD_ID,
    NOBODY_ID,
    ON_VIRTUAL_TIME,
    TRADER_ID,
    TRADER_ROLE_ID,
    Wire,
    contract,
    desk_on_fake,
    settings,
)
from tests.reliability.checks import unlimited

pytestmark = ON_VIRTUAL_TIME

TRADER, ADMIN = "trader", "admin"


@dataclass(frozen=True)
class Right:
    """What a command or button needs, and its arguments (or custom id) for a position id."""

    needs: str  # TRADER or ADMIN
    call: Callable[[str], Any]
    # How an allowed press is answered: 4 an ephemeral message, 9 a form, 7 its own message edited, 6 the same once
    # the order is done (a Confirm).
    answers: int = 4


def listed_expiry() -> date:
    """An expiry the simulated chain lists whenever the test runs (its clock is the wall clock)."""
    return next_trading_day(datetime.now(MARKET_TZ).date() + timedelta(days=7))


def opening(pid: str) -> dict[str, Any]:
    return {"underlying": "SPY", "expiry": listed_expiry().isoformat(), "strike": "401", "right": "call", "qty": 1}


def preview_button(what: str) -> Callable[[str], str]:
    """A preview's Confirm or Cancel for a preview this bot never made: answered in a sentence on the preview."""
    return lambda pid: f"tkt:{what}:never-made:{int(datetime.now(UTC).timestamp())}"


# Every command (by qualified name) and every button (by DynamicItem class name) the bot has. Add new ones here.
COMMAND_RIGHTS: dict[str, Right] = {
    "positions": Right(TRADER, lambda pid: {}),
    "position": Right(TRADER, lambda pid: {"position": pid}),
    "trim": Right(TRADER, lambda pid: {"position": pid, "qty": 1}),
    "close": Right(TRADER, lambda pid: {"position": pid}),
    "reset-messages": Right(ADMIN, lambda pid: {}),
    "reconcile": Right(ADMIN, lambda pid: {}),
    "pnl": Right(TRADER, lambda pid: {}),
    "status": Right(TRADER, lambda pid: {}),
    "halt": Right(ADMIN, lambda pid: {"reason": "checking rights"}),
    "reduce-only": Right(ADMIN, lambda pid: {"reason": "checking rights"}),
    "resume": Right(ADMIN, lambda pid: {}),
    "chain": Right(TRADER, lambda pid: {"underlying": "SPY"}),
    "open": Right(TRADER, opening),
    "add": Right(TRADER, lambda pid: {"position": pid, "qty": 1}),
}
BUTTON_RIGHTS: dict[str, Right] = {
    "TrimButton": Right(TRADER, lambda pid: f"pos:trim:25:{pid}"),
    "CloseButton": Right(TRADER, lambda pid: f"pos:close:{pid}"),
    "AddButton": Right(TRADER, lambda pid: f"pos:add:{pid}", answers=9),
    "ConfirmTicket": Right(TRADER, preview_button("ok"), answers=6),
    "CancelTicket": Right(TRADER, preview_button("no"), answers=7),
}

ADMIN_ID = 910_000_000_000_000_032
OTHER_GUILD_ID = 920_000_000_000_000_001
OTHER_CHANNEL_ID = 920_000_000_000_000_010
DM_CHANNEL_ID = 930_000_000_000_000_001
MEMBERS = {"no role": NOBODY_ID, TRADER: TRADER_ID, ADMIN: ADMIN_ID}
PLACES: dict[str, tuple[int | None, int]] = {
    "our server": (GUILD_ID, CHANNEL_ID),
    "another server": (OTHER_GUILD_ID, OTHER_CHANNEL_ID),
    "a DM": (None, DM_CHANNEL_ID),
}
REFUSALS = {
    "You need a trader role to use optiondesk.",
    "Only desk admins may do that.",
    "optiondesk only works in its own server, not here.",
    "You may not do that here.",
}


def world(fake: FakeDiscord) -> None:
    """An admin in our server; another server where the same members hold roles with the same ids."""
    fake.add_member(GUILD_ID, ADMIN_ID, "adam", roles=[ADMIN_ROLE_ID])
    fake.add_guild(OTHER_GUILD_ID, "Elsewhere")
    fake.add_channel(OTHER_GUILD_ID, OTHER_CHANNEL_ID, "general")
    fake.add_role(OTHER_GUILD_ID, TRADER_ROLE_ID, "trader")
    fake.add_role(OTHER_GUILD_ID, ADMIN_ROLE_ID, "admin")
    fake.add_member(OTHER_GUILD_ID, NOBODY_ID, "nora")
    fake.add_member(OTHER_GUILD_ID, TRADER_ID, "tina", roles=[TRADER_ROLE_ID])
    fake.add_member(OTHER_GUILD_ID, ADMIN_ID, "adam", roles=[ADMIN_ROLE_ID])


def walk(commands: list[Any], prefix: str = "") -> Iterator[str]:
    for command in commands:
        if isinstance(command, app_commands.Group):
            yield from walk(command.commands, f"{prefix}{command.name} ")
        else:
            yield f"{prefix}{command.name}"


def slash_options(name: str, values: dict[str, Any], declared: list[Json]) -> list[Json]:
    """Discord's option list for a (possibly grouped) command, typed as the sync declared them."""
    rest = name.partition(" ")[2]
    if rest:
        sub = next(o for o in declared if o["name"] == rest.split(" ")[0])
        return [
            {"type": sub["type"], "name": sub["name"], "options": slash_options(rest, values, sub.get("options", []))}
        ]
    types = {o["name"]: o["type"] for o in declared}
    return [{"name": k, "type": types[k], "value": v} for k, v in values.items()]


def allowed(needs: str, member: str, place: str) -> bool:
    return place == "our server" and (member == ADMIN or (needs == TRADER and member == TRADER))


def assert_refused_leaking_nothing(answer: Json, wire: Wire, where: str) -> None:
    """A new ephemeral message (type 4), or the ephemeral question edited into the refusal (type 7; at a Confirm,
    answered at once, type 6, then edited)."""
    data = answer["data"]
    assert (answer["type"] == 4 and data["flags"] & EPHEMERAL) or answer["type"] in (6, 7), where
    assert data["content"] in REFUSALS, (where, data["content"])
    assert not data.get("embeds") and not data.get("components"), where
    for position in wire.bot.desk.manager.all_positions():
        assert position.position_id not in data["content"] and position.contract.label not in data["content"]


async def test_every_command_and_button_for_every_member_and_place(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with desk_on_fake(monkeypatch, tmp_path, bot_settings=unlimited(settings()), world=world) as wire:
        fake, bot, manager = wire.fake, wire.bot, wire.bot.desk.manager
        commands = sorted(walk(bot.tree.get_commands(guild=discord.Object(GUILD_ID))))
        buttons = sorted(item.__name__ for item in bot._connection._view_store._dynamic_items.values())  # no public API
        assert commands == sorted(COMMAND_RIGHTS), "a command is missing from COMMAND_RIGHTS (or gone)"
        assert buttons == sorted(BUTTON_RIGHTS), "a button is missing from BUTTON_RIGHTS (or gone)"
        declared = {c["name"]: c.get("options", []) for c in fake.commands[GUILD_ID]}
        opened = 0

        async def open_position() -> str:
            nonlocal opened
            opened += 1
            traded = contract(400 + opened)
            wire.quote(traded, "1.00", "1.10")
            position = await manager.open_position(traded, 10, strategy="orb")
            await bot.desk.notifier.flush()
            return position.position_id

        shared = await open_position()
        # A fresh position for every case allowed to act, opened first: an allowed /halt stops new openings.
        allowed_cases = sum(
            allowed(COMMAND_RIGHTS[name].needs, member, place)
            for member in MEMBERS
            for place in PLACES
            for name in commands
        )
        fresh = [await open_position() for _ in range(allowed_cases)]
        message_id = wire.mapped_message(shared).id
        wire.quote(
            OptionContract("SPY", listed_expiry(), OptionRight.CALL, Decimal(401)), "1.00", "1.10"
        )  # what /open buys
        # A preview's buttons sit on an ephemeral message of the member's, not on a position's message.
        preview_id = fake.add_message(CHANNEL_ID, created_at=datetime.now(UTC), content="a preview").id
        cases = 0
        for member, user_id in MEMBERS.items():
            for place, (guild_id, channel_id) in PLACES.items():
                for name in commands:
                    right = COMMAND_RIGHTS[name]
                    yes = allowed(right.needs, member, place)
                    pid = fresh.pop() if yes else shared
                    ledger, message_map = wire.ledger_bytes(), (wire.storage / "message_ids.json").read_bytes()
                    options = slash_options(name, right.call(pid), declared[name.split(" ")[0]])
                    top = name.split(" ")[0]
                    answer = await (await fake.send_slash(guild_id, channel_id, user_id, top, options)).outcome()
                    where = f"/{name} by {member} in {place}"
                    if yes:
                        assert answer["data"]["flags"] & EPHEMERAL and answer["data"].get("content") not in REFUSALS, (
                            where
                        )  # or deferred
                        trading = bot.desk.switch.current.state == "active"  # an admin's /halt stops them
                        if name == "chain" or (name in {"open", "add"} and trading):  # the chain, or a preview
                            assert answer["data"].get("embeds"), (where, answer["data"].get("content"))
                    else:
                        assert_refused_leaking_nothing(answer, wire, where)
                        assert wire.ledger_bytes() == ledger, where
                        assert (wire.storage / "message_ids.json").read_bytes() == message_map, where
                    cases += 1
                for name in buttons:
                    right = BUTTON_RIGHTS[name]
                    yes = allowed(right.needs, member, place)
                    ledger = wire.ledger_bytes()
                    custom_id, on = right.call(shared), message_id
                    if right.answers in (6, 7):  # discord.py answers only a button that is on the message pressed
                        on = preview_id
                        button = {"type": 2, "style": 1, "label": name, "custom_id": custom_id}
                        fake.messages[on].components = [{"type": 1, "components": [button]}]
                    clicked = await fake.click(guild_id, channel_id, user_id, on, custom_id)
                    answer = await clicked.outcome()
                    where = f"{name} by {member} in {place}"
                    if yes and right.answers == 4:  # a Confirm is asked for; nothing is sold yet
                        assert answer["data"]["flags"] & EPHEMERAL and answer["data"]["components"], where
                    elif yes:  # the form asking how many; or the preview saying it is no longer good
                        assert answer["type"] == right.answers and answer["data"].get("content") not in REFUSALS, where
                    else:
                        assert_refused_leaking_nothing(answer, wire, where)
                    assert wire.ledger_bytes() == ledger, where
                    cases += 1
        assert cases == len(MEMBERS) * len(PLACES) * (len(commands) + len(buttons))
        assert manager.get(shared).qty == 10


async def test_a_role_removed_after_the_message_was_posted_is_refused_at_the_click_and_at_confirm(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with desk_on_fake(monkeypatch, tmp_path) as wire:
        fake, manager = wire.fake, wire.bot.desk.manager
        position, message = await wire.open_shown(contract(450), 10)

        # The trader asks to trim with the button and is asked to confirm; then loses the role.
        ask = await fake.click(GUILD_ID, CHANNEL_ID, TRADER_ID, message.id, f"pos:trim:25:{position.position_id}")
        asked = await ask.response()
        confirm_id = next(
            b["custom_id"] for row in asked["data"]["components"] for b in row["components"] if b["label"] == "Confirm"
        )
        fake.guilds[GUILD_ID].members[TRADER_ID]["roles"] = []
        before = wire.ledger_bytes()

        confirmed = await fake.click(GUILD_ID, CHANNEL_ID, TRADER_ID, ask.original_id or 0, confirm_id)
        again = await fake.click(GUILD_ID, CHANNEL_ID, TRADER_ID, message.id, f"pos:close:{position.position_id}")

        refusals = (await confirmed.outcome(), await again.outcome())
        for answer in refusals:
            assert_refused_leaking_nothing(answer, wire, "after the role was removed")
            assert answer["data"]["content"] == "You need a trader role to use optiondesk."
        assert [answer["type"] for answer in refusals] == [6, 4]  # at Confirm the question itself says no
        assert wire.ledger_bytes() == before and manager.get(position.position_id).qty == 10
