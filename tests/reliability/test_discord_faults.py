"""Faults on the Discord side, wire level (the real discord.py client against the fake Discord, on virtual time):
429 storms, 5xx answers, a request left unanswered past the client's timeout, the gateway dropped, the session
invalidated (op 9). And what a trader and the admins see when the ledger's disk is full or the executor stops
half-way through an order. Each ends with every message final, nothing lost and the ledger verifying."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import bot.runtime.desk as desk_module
from bot.discord.board import charted
from bot.discord.embeds import position_embed
from bot.options.execution_paper import PaperExecutor
from bot.options.positions import Position
from bot.options.trade_ledger import TradeEvent
from tests.discord.fake_discord import EPHEMERAL, FakeDiscord
from tests.discord.wire import (
    CHANNEL_ID,
    GUILD_ID,
    ON_VIRTUAL_TIME,
    TRADER_ID,
    Wire,
    contract,
    desk_on_fake,
    notifier_running,
    settings,
)
from tests.reliability.checks import assert_nothing_lost
from tests.reliability.faults import PartlyFilling, ledger_writes_fail

pytestmark = ON_VIRTUAL_TIME

ADMIN_CHANNEL_ID = 910_000_000_000_000_011
# aiohttp's default total timeout (discord.py sets none of its own) is 300 s: a stalled request ends then.
FLUSH_DEADLINE = 400.0


def gateway_ops(fake: FakeDiscord) -> list[int]:
    return [frame["op"] for frame in fake.gateway_received]


async def storm_of_429s(fake: FakeDiscord) -> None:
    fake.fail_next("edit", status=429, count=8, retry_after=1.0)  # discord.py gives up after 5; the notifier retries


async def server_errors(fake: FakeDiscord) -> None:
    fake.fail_next("create", status=502, count=2)
    fake.fail_next("edit", status=500, count=3)
    fake.fail_next("edit", status=503, count=1)


async def stalled_request(fake: FakeDiscord) -> None:
    fake.stall_next("edit")


async def gateway_dropped(fake: FakeDiscord) -> None:
    await fake.drop_gateway()


async def session_invalidated(fake: FakeDiscord) -> None:
    await fake.invalidate_session()


FAULTS: dict[str, Callable[[FakeDiscord], Awaitable[None]]] = {
    "429 storm": storm_of_429s,
    "5xx": server_errors,
    "stalled request": stalled_request,
    "gateway dropped": gateway_dropped,
    "invalid session": session_invalidated,
}


def track_final_embeds(wire: Wire) -> dict[str, dict[str, Any]]:
    """What each position's message must show in the end, kept up to date as fills are recorded."""
    final: dict[str, dict[str, Any]] = {}

    async def remember(event: TradeEvent, position: Position) -> None:
        view = wire.bot.desk.notifier.view(position, event.event_id)
        final[position.position_id] = charted(position_embed(view)).to_dict()  # type: ignore[assignment]

    wire.bot.desk.manager.subscribe(remember)
    return final


def all_final(wire: Wire, final: dict[str, dict[str, Any]]) -> bool:
    return all([m.embeds for m in wire.messages_of(pid)] == [[embed]] for pid, embed in final.items())


@pytest.mark.parametrize("fault", FAULTS)
async def test_trading_goes_on_through_a_discord_fault_and_every_message_ends_final(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fault: str
) -> None:
    async with desk_on_fake(monkeypatch, tmp_path) as wire, notifier_running(wire.bot):
        fake, manager = wire.fake, wire.bot.desk.manager
        final = track_final_embeds(wire)
        contracts = [contract(450 + 5 * i) for i in range(3)]
        for traded in contracts:
            wire.quote(traded, "1.00", "1.10")
        ids = [(await manager.open_position(c, 6, strategy="orb")).position_id for c in contracts]
        await fake.wait_for(lambda: all_final(wire, final), FLUSH_DEADLINE, "the first posts")

        # Act: the fault, then every position trades twice and a trader asks for the positions.
        await FAULTS[fault](fake)
        for round_number in range(2):
            for pid, traded in zip(ids, contracts, strict=True):
                wire.quote(traded, f"1.{round_number + 2}0", f"1.{round_number + 2}5")
                await manager.trim(pid, qty=1)
            await asyncio.sleep(0.5)
        if fault == "invalid session":  # what was dispatched to the dead session is lost: ask once it identified
            await fake.wait_for(lambda: gateway_ops(fake).count(2) == 2, 30, "a new IDENTIFY")
        asked = await fake.send_slash(GUILD_ID, CHANNEL_ID, TRADER_ID, "positions")
        answer = await asked.response(timeout=30)

        # Assert: the trader got an answer, every message shows its position's last state, nothing was lost.
        assert answer["data"]["flags"] & EPHEMERAL and answer["data"]["content"] == "3 position(s)."
        await fake.wait_for(lambda: all_final(wire, final), FLUSH_DEADLINE, "every message in its final state")
        assert len(wire.position_messages()) == 3
        assert not [r for r in fake.requests if r.status == 429 and not r.injected]
        assert [manager.get(pid).qty for pid in ids] == [4, 4, 4]
        assert_nothing_lost(wire.storage, manager.all_positions())
        if fault == "gateway dropped":
            assert gateway_ops(fake).count(6) == 1 and gateway_ops(fake).count(2) == 1  # RESUMEd
        if fault == "stalled request":
            assert [r.status for r in fake.requests_of("edit") if r.injected] == [0]  # never answered


async def test_a_full_ledger_disk_refuses_the_trade_tells_the_trader_and_alerts_the_admins_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    base = settings()
    with_admins = base.replace(discord=base.discord.replace(admin_channel_id=ADMIN_CHANNEL_ID))
    async with desk_on_fake(monkeypatch, tmp_path, bot_settings=with_admins) as wire:
        fake, desk = wire.fake, wire.bot.desk
        fake.add_channel(GUILD_ID, ADMIN_CHANNEL_ID, "desk-admins")
        spy, qqq = contract(450), contract(455)
        wire.quote(spy, "1.00", "1.10")
        wire.quote(qqq, "2.00", "2.10")
        first = await desk.manager.open_position(spy, 10, strategy="orb")
        second = await desk.manager.open_position(qqq, 10, strategy="orb")
        before = wire.ledger_bytes()

        # Act: the disk is full; a trader trims, four times over, on both positions.
        with ledger_writes_fail(desk.ledger, errno.ENOSPC, half_first=True):
            answers = []
            for pid in (first.position_id, second.position_id) * 2:
                asked = await fake.send_slash(GUILD_ID, CHANNEL_ID, TRADER_ID, "trim", {"position": pid, "qty": 1})
                answers.append(await asked.response())
            await wire.bot.alerts.drain()

        # Assert: each trader told in an ephemeral sentence; nothing changed or written; the admins alerted once.
        for answer, traded in zip(answers, (spy, qqq) * 2, strict=True):
            assert answer["data"]["flags"] == EPHEMERAL
            assert answer["data"]["content"] == (
                f"The trade on {traded.label} could not be recorded, so nothing changed "
                "(the ledger could not be written)."
            )
        assert wire.ledger_bytes() == before
        assert (desk.manager.get(first.position_id).qty, desk.manager.get(second.position_id).qty) == (10, 10)
        (alert,) = fake.channel_messages(ADMIN_CHANNEL_ID)
        assert "No space left on device" in alert.content and "Trades are refused" in alert.content

        # Once space is back, both positions trade again.
        for pid in (first.position_id, second.position_id):
            asked = await fake.send_slash(GUILD_ID, CHANNEL_ID, TRADER_ID, "trim", {"position": pid, "qty": 1})
            assert (await asked.response())["data"]["content"].startswith("Sold 1 ")
        assert_nothing_lost(wire.storage, desk.manager.all_positions())


async def test_an_executor_timing_out_mid_order_sells_part_and_tells_the_trader_the_rest_was_not_sold(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    executors: list[PartlyFilling] = []

    def breaking_executor(*args: Any, **kwargs: Any) -> PartlyFilling:
        executors.append(PartlyFilling(PaperExecutor(*args, **kwargs), first=4, then="hang", armed=False))
        return executors[-1]

    monkeypatch.setattr(desk_module, "PaperExecutor", breaking_executor)
    async with desk_on_fake(monkeypatch, tmp_path) as wire:
        fake, manager = wire.fake, wire.bot.desk.manager
        spy = contract(450)
        wire.quote(spy, "1.00", "1.10")
        position = await manager.open_position(spy, 10, strategy="orb")
        (executor,) = executors
        executor.armed = True  # the broker stops answering after the first part of the next order

        asked = await fake.send_slash(GUILD_ID, CHANNEL_ID, TRADER_ID, "close", {"position": position.position_id})
        answer = await asked.response(timeout=300)

        assert answer["data"]["flags"] == EPHEMERAL
        content = answer["data"]["content"]
        assert content.startswith(f"Sold 4 {spy.label} @ 1.00 (realized ")
        limit = f"{settings().order_timeout_seconds:g}"
        assert content.endswith(
            f"; 6 left open. The other 6 were not sold: the executor did not finish within {limit} s."
        )
        assert manager.get(position.position_id).qty == 6
        assert_nothing_lost(wire.storage, manager.all_positions())
