"""The real OptionDeskBot against our fake Discord (tests/discord/fake_discord.py): wire level, on virtual time.

The unmodified discord.py client logs in, does the gateway handshake and RESUMEs after a dropped connection; slash
commands go the whole way (INTERACTION_CREATE in, callback out); position messages are posted and edited through
429 storms and 5xx answers with Discord's headers, within the limits the fake enforces (5 creates and 5 edits per
5 s per channel); a deleted message is posted anew; an interrupted post is found again in the channel history, and
a failed first post of the day does not take the position's message of an earlier day; the bot shuts down cleanly.
Trades are driven through the bot's own order manager (background=False: no market feed, no strategies), so every
message has a known final state.

Every test runs under looptime, started inside the test body: discord.py's rate-limit sleeps, the fake's windows,
the notifier's backoff and discord.py's 2 s guild-ready wait all pass on the virtual clock, so the file takes a
second or two of wall time.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.discord.board import charted
from bot.discord.desk_bot import create_bot
from bot.discord.embeds import position_embed
from bot.options.contracts import Right
from bot.options.ledger_verify import verify_events
from bot.options.trade_ledger import LedgerError
from bot.render.position_view import PositionView
from bot.runtime.message_map import PostedMessage
from tests.discord.fake_discord import EPHEMERAL, FALLBACK_RATE_LIMIT, FakeDiscord, FakeRequest
from tests.discord.wire import (
    CHANNEL_ID,
    GUILD_ID,
    NOBODY_ID,
    TRADER_ID,
    DeskClock,
    Wire,
    contract,
    desk_on_fake,
    eventually,
    fake_discord,
    fields,
    notifier_running,
    settings,
    until_ready,
)

COMMANDS = {
    "positions",
    "position",
    "trim",
    "close",
    "chain",
    "open",
    "add",
    "reset-messages",
    "reconcile",
    "pnl",
    "status",
    "halt",
    "reduce-only",
    "resume",
}

pytestmark = (
    [pytest.mark.looptime]
    if importlib.util.find_spec("looptime")
    else [pytest.mark.skip(reason="looptime is not installed")]
)


def gateway_ops(fake: FakeDiscord) -> list[int]:
    return [frame["op"] for frame in fake.gateway_received]


# ---------------------------------------------------------------------------------------------------------------
# 1. Login, handshake, command sync, RESUME


async def test_login_sync_and_resume_after_a_dropped_gateway(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    async with desk_on_fake(monkeypatch, tmp_path) as wire:
        fake, bot = wire.fake, wire.bot
        assert bot.user is not None and bot.user.id == fake.app_id
        assert [r.kind for r in fake.requests[:2]] == ["me", "application"]
        assert gateway_ops(fake).count(2) == 1  # one IDENTIFY
        assert fake.intents == bot.intents.value and not bot.intents.members  # no privileged intent asked for
        guild = bot.get_guild(GUILD_ID)
        assert guild is not None and guild.get_channel(CHANNEL_ID) is not None

        # The tree went to the guild, not globally, with the options the cogs declare.
        (put,) = fake.requests_of("commands")
        assert (put.method, put.path) == ("PUT", f"/applications/{fake.app_id}/guilds/{GUILD_ID}/commands")
        assert {c["name"] for c in fake.commands[GUILD_ID]} == COMMANDS
        assert None not in fake.commands
        trim = next(c for c in fake.commands[GUILD_ID] if c["name"] == "trim")
        options = {o["name"]: o for o in trim["options"]}
        assert list(options) == ["position", "percent", "qty"]
        assert (options["percent"]["min_value"], options["percent"]["max_value"]) == (1, 100)

        spy = contract(450)
        wire.quote(spy, "1.00", "1.10")
        position = await bot.desk.manager.open_position(spy, 4, strategy="orb")
        await wire.deliver()

        # Act: Discord drops the gateway; a slash command is dispatched while the bot is away.
        await fake.drop_gateway()
        during = await fake.send_slash(GUILD_ID, CHANNEL_ID, TRADER_ID, "positions")
        await fake.wait_for(lambda: 6 in gateway_ops(fake), what="RESUME (op 6)")
        body = await during.response()

        # Assert: resumed (not identified again) on READY's resume URL, and the missed command was answered.
        resume = next(f for f in fake.gateway_received if f["op"] == 6)
        assert resume["d"]["session_id"] == fake.session_id and resume["d"]["token"] == "<masked>"
        assert gateway_ops(fake).count(2) == 1
        assert fake.gateway_connections[-1][0] == "/resume-gateway/"
        assert body["type"] == 4 and body["data"]["flags"] & EPHEMERAL
        assert body["data"]["content"] == "1 position(s)."
        assert position.position_id in body["data"]["embeds"][0]["description"]

        # The bot keeps working: a new round trip after the RESUME, and its messages still go out.
        after = await fake.send_slash(GUILD_ID, CHANNEL_ID, TRADER_ID, "position", {"position": position.position_id})
        shown = await after.response()
        assert shown["data"]["content"] == f"Position `{position.position_id}`"
        assert shown["data"]["embeds"][0]["title"] == spy.label and shown["data"]["flags"] & EPHEMERAL
        await bot.desk.manager.trim(position.position_id, qty=1)
        await wire.deliver()
        (message,) = wire.messages_of(position.position_id)
        assert fields(message)["Open"] == "3" and message.edits == 1


# ---------------------------------------------------------------------------------------------------------------
# 2. A slash command round trip, with and without the trader role


async def test_trim_by_a_trader_trades_and_a_member_without_the_role_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with desk_on_fake(monkeypatch, tmp_path) as wire:
        fake, manager = wire.fake, wire.bot.desk.manager
        spy = contract(450)
        wire.quote(spy, "1.00", "1.10")
        position = await manager.open_position(spy, 10, strategy="orb")
        await wire.deliver()

        # A trader trims half.
        trim = await fake.send_slash(
            GUILD_ID, CHANNEL_ID, TRADER_ID, "trim", {"position": position.position_id, "percent": 50}
        )
        body = await trim.response()
        assert body["type"] == 4
        assert body["data"]["flags"] == EPHEMERAL and body["data"]["allowed_mentions"] == {"parse": []}
        assert body["data"]["content"].startswith(f"Sold 5 {spy.label} @ 1.00 (realized ")
        assert body["data"]["content"].endswith("; 5 left open.")
        assert trim.original is not None and trim.original.ephemeral
        last = wire.ledger_lines()[-1]
        assert (last["kind"], last["qty"], last["position_qty"]) == ("trim", 5, 5)
        assert (last["actor"], last["source"]) == (f"discord:{TRADER_ID}", "manual")
        assert manager.get(position.position_id).qty == 5
        await wire.deliver()
        message = wire.mapped_message(position.position_id)
        assert fields(message)["Open"] == "5"
        assert fields(message)["History"].splitlines()[-1].endswith(f"(<@{TRADER_ID}>)")  # shown, never pinged

        # A member without the role: refused in one ephemeral sentence, nothing traded or written.
        ledger_before = wire.ledger_bytes()
        requests_before = len(fake.requests)
        refused = await fake.send_slash(
            GUILD_ID, CHANNEL_ID, NOBODY_ID, "trim", {"position": position.position_id, "percent": 50}
        )
        answer = await refused.response()
        assert answer["type"] == 4 and answer["data"]["flags"] == EPHEMERAL
        assert answer["data"]["content"] == "You need a trader role to use optiondesk."
        await wire.deliver()
        assert wire.ledger_bytes() == ledger_before
        assert manager.get(position.position_id).qty == 5
        assert [r.kind for r in fake.requests[requests_before:]] == ["callback"]  # no message edit either


# ---------------------------------------------------------------------------------------------------------------
# 3. 429 storms and 5xx while trading: final states, nothing lost, within the limits


def fixed_windows(times: list[float], per: float) -> list[int]:
    """Requests per fixed window as the fake (and Discord) count them: a window opens with the first request
    after the previous one ended."""
    counts: list[int] = []
    end = float("-inf")
    for at in sorted(times):
        if at >= end:
            end = at + per
            counts.append(0)
        counts[-1] += 1
    return counts


def busiest_windows(fake: FakeDiscord) -> dict[tuple[str, str], tuple[int, int]]:
    """For each route family and channel (or other major parameter): (most requests let through in one window,
    the limit). Like the fake's limiter, count every request it let through (a 404 too), not injected failures
    nor its own 429s."""
    accepted: dict[tuple[str, str], list[float]] = {}
    for request in fake.requests:
        if request.status != 429 and not request.injected:
            major = "/".join(request.path.split("/")[:3])  # e.g. /channels/<id>
            accepted.setdefault((request.kind, major), []).append(request.time)
    result = {}
    for (kind, major), times in accepted.items():
        limit, per = fake.rate_limits.get(kind, FALLBACK_RATE_LIMIT)
        result[(kind, major)] = (max(fixed_windows(times, per)), limit)
    return result


ROUNDS: list[Callable[[int], tuple[str, dict[str, Any]]]] = [
    lambda i: ("open", {"qty": 10}),
    lambda i: ("add", {"qty": 5}),
    lambda i: ("trim", {"qty": 3}),
    lambda i: ("trim", {"percent": 25}),
    lambda i: ("add", {"qty": 2}),
    lambda i: ("trim", {"qty": 4}),
    lambda i: ("close", {}) if i < 4 else ("trim", {"qty": 1}),  # the last position stays open
]
POSITIONS = 5
BETWEEN_TRADES = 0.1  # virtual seconds: bursts of five trades...
BETWEEN_ROUNDS = 3.0  # ...every 3.5 s, about 1.4 position updates a second against 1 edit a second allowed
# Armed before the rounds with these numbers, in this order: (route family, status, count, retry_after). discord.py
# counts a 429 as one of its 5 tries, retries 500/502/504/524 after 1 + 2 * tries seconds and raises on other 5xx.
FAULTS: dict[int, list[tuple[str, int, int, float]]] = {
    0: [("create", 429, 3, 1.5), ("create", 503, 1, 0.0)],  # a 429 storm on the first post, then a 503 for it
    1: [("edit", 500, 1, 0.0), ("edit", 429, 3, 1.0)],  # a 500 that discord.py retries, then a 429 storm
    3: [("edit", 429, 5, 0.5), ("edit", 503, 1, 0.0)],  # 5 x 429: discord.py gives up on the edit; then a 503
}
# Besides, the first edit that carries a position's final state is answered 503: only a retry can deliver it.
# From the last trade until every message is final: the batch of edits in flight (taken before the last trades,
# so possibly stale: up to one window to wait out), the 503s and the notifier's 1 s backoff, then the last states
# (up to one more window).
FLUSH_DEADLINE = 12.0


def fail_once(fake: FakeDiscord, embed: dict[str, Any]) -> None:
    """Answer 503 to the first edit that would make a message show `embed`."""

    def carries(request: FakeRequest) -> bool:
        return request.kind == "edit" and isinstance(request.json, dict) and request.json.get("embeds") == [embed]

    fake.fail_next(carries, status=503, count=1)


async def test_storms_of_429s_and_5xxs_end_with_every_message_final_within_the_limits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The real limits: 5 posts and 5 edits per 5 s per channel.
    async with desk_on_fake(monkeypatch, tmp_path) as wire, notifier_running(wire.bot):
        fake, bot, loop = wire.fake, wire.bot, asyncio.get_running_loop()
        manager = bot.desk.manager
        contracts = [contract(440 + 5 * i, Right.CALL if i % 2 else Right.PUT) for i in range(POSITIONS)]
        ids: list[str] = []
        final_embeds: dict[str, dict[str, Any]] = {}
        trade_times: list[float] = []

        # Act: seven rounds of trades on five positions, with faults injected on the way.
        for number, action_of in enumerate(ROUNDS):
            for kind, status, count, retry_after in FAULTS.get(number, []):
                fake.fail_next(kind, status=status, count=count, retry_after=retry_after)
            for i, traded in enumerate(contracts):
                bid = Decimal("1.00") + Decimal("0.05") * number + Decimal("0.01") * i
                wire.quote(traded, f"{bid}", f"{bid + Decimal('0.10')}")
                action, amount = action_of(i)
                started = loop.time()
                if action == "open":
                    position = await manager.open_position(traded, amount["qty"], strategy="orb")
                    ids.append(position.position_id)
                elif action == "add":
                    position = await manager.add(ids[i], amount["qty"])
                elif action == "trim":
                    position = await manager.trim(ids[i], **amount)
                else:
                    position = await manager.close(ids[i])
                last_trade = loop.time()
                trade_times.append(last_trade - started)
                if number == len(ROUNDS) - 1:  # what the message must show in the end (not sent yet: no await)
                    last_event = wire.ledger_events()[-1]
                    assert last_event.position_id == position.position_id
                    view = PositionView(position, wire.mark(traded), None, last_event.event_id)
                    final_embeds[position.position_id] = charted(position_embed(view)).to_dict()  # type: ignore[assignment]
                    fail_once(fake, final_embeds[position.position_id])
                await asyncio.sleep(BETWEEN_TRADES)
            await asyncio.sleep(BETWEEN_ROUNDS)

        def all_final() -> bool:
            return all([m.embeds for m in wire.messages_of(pid)] == [[embed]] for pid, embed in final_embeds.items())

        await fake.wait_for(all_final, FLUSH_DEADLINE, "every position message in its final state")
        flushed_after = loop.time() - last_trade
        last_events = {e.position_id: e.event_id for e in wire.ledger_events()}

        def all_recorded() -> bool:
            return not bot.desk.notifier.backlog and all(
                (posted := bot.message_map.get(pid)) is not None and posted.event_id == event_id
                for pid, event_id in last_events.items()
            )

        await eventually(all_recorded, "the message map records every final state")  # once the answers are in

        # Assert: trading never waited for Discord.
        assert len(trade_times) == len(ROUNDS) * POSITIONS and max(trade_times) < 0.5, max(trade_times)
        # Every message final within the deadline (virtual seconds), each final state only through a retry.
        assert flushed_after <= FLUSH_DEADLINE
        for pid, embed in final_embeds.items():
            carrying = [r.status for r in fake.requests_of("edit") if r.json and r.json.get("embeds") == [embed]]
            assert carrying[0] == 503 and carrying[-1] == 200, (pid, carrying)

        # Every fault was met, and no other 429 was answered: the bot followed the headers.
        injected = Counter((r.kind, r.status) for r in fake.requests if r.injected)
        armed: Counter[tuple[str, int]] = Counter({("edit", 503): POSITIONS})
        for kind, status, count, _ in (fault for faults in FAULTS.values() for fault in faults):
            armed[(kind, status)] += count
        assert injected == armed
        assert not [r for r in fake.requests if r.status == 429 and not r.injected]
        assert fake.rate_limited == armed[("create", 429)] + armed[("edit", 429)]
        busiest = busiest_windows(fake)
        assert all(most <= limit for most, limit in busiest.values()), busiest
        assert busiest[("edit", f"/channels/{CHANNEL_ID}")] == (5, 5)  # the limit was reached, never passed

        # One message per position, each showing its final state, and the map pointing at it.
        positions = {pid: manager.get(pid) for pid in ids}
        assert [p.is_open for p in positions.values()] == [False] * 4 + [True]
        assert len(wire.position_messages()) == POSITIONS
        for pid, position in positions.items():
            (message,) = wire.messages_of(pid)
            assert wire.mapped_message(pid) is message
            assert fields(message)["Open"] == str(position.qty)
            assert message.embeds[0]["description"].startswith(f"**{position.status.value.upper()}**")
            assert len(fields(message)["History"].splitlines()) == len(ROUNDS)
            # Its chart came up as a multipart upload: one PNG, the latest replacing the earlier ones.
            [chart] = message.attachments
            assert chart["filename"] == "chart.png"
            assert fake.attachment_data[int(chart["id"])].startswith(b"\x89PNG\r\n\x1a\n")
            buttons = [b["custom_id"] for row in message.components for b in row["components"]]
            assert buttons == (
                [f"pos:trim:25:{pid}", f"pos:trim:50:{pid}", f"pos:close:{pid}", f"pos:add:{pid}"]
                if position.is_open
                else []
            )
        accepted_posts = fake.requests_of("create", status=200)
        assert len(accepted_posts) == POSITIONS  # the 503'd post was looked up in the history, then posted once
        assert [r.status for r in fake.requests_of("history")] == [200]
        # Bursts were coalesced: fewer message writes than fills.
        assert len(accepted_posts) + len(fake.requests_of("edit", status=200)) < len(ROUNDS) * POSITIONS

        # Nothing lost: every fill in the ledger, once, and the ledger replays to the manager's positions.
        events = wire.ledger_events()
        report = verify_events(events)
        assert report.ok, report.problems
        fills = sorted(a.fill_id for p in positions.values() for a in p.actions)
        assert sorted(e.fill_id for e in events) == fills and len(fills) == len(ROUNDS) * POSITIONS
        assert {pid: (p.qty, p.realized_pnl) for pid, p in report.positions.items()} == {
            pid: (p.qty, p.realized_pnl) for pid, p in positions.items()
        }


# ---------------------------------------------------------------------------------------------------------------
# 4. A deleted message, and a post interrupted before its id was recorded


async def test_a_deleted_message_is_posted_anew_and_an_interrupted_post_is_found_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with desk_on_fake(monkeypatch, tmp_path) as wire:
        fake, manager, message_map = wire.fake, wire.bot.desk.manager, wire.bot.message_map
        spy, qqq, iwm = contract(450), contract(455, Right.PUT), contract(460)
        for traded in (spy, qqq, iwm):
            wire.quote(traded, "2.00", "2.10")
        first = await manager.open_position(spy, 6, strategy="orb")
        second = await manager.open_position(qqq, 6, strategy="mr")
        await wire.deliver()
        third = await manager.open_position(iwm, 6, strategy="orb")  # posted after the second: newer in history
        await wire.deliver()
        deleted = wire.mapped_message(first.position_id)
        interrupted = wire.mapped_message(second.position_id)

        # A moderator deletes the first position's message; its next update posts a new one.
        await fake.delete_message(deleted.id)
        await manager.trim(first.position_id, qty=2)
        await wire.deliver()
        reposted = wire.mapped_message(first.position_id)
        assert reposted.id != deleted.id and fake.messages[deleted.id].deleted
        assert [m.id for m in wire.messages_of(first.position_id)] == [reposted.id]
        assert fields(reposted)["Open"] == "4"
        assert [r.status for r in fake.requests if r.path.endswith(f"/messages/{deleted.id}")] == [404]

        # The second position's post was interrupted (a crash) after Discord took it, before its id was written.
        posted = message_map.get(second.position_id)
        assert posted is not None
        message_map.set(second.position_id, PostedMessage(CHANNEL_ID, None, posted.event_id, posted.posted_at, True))
        posts_before = len(fake.requests_of("create"))
        await manager.trim(second.position_id, qty=1)
        await wire.deliver()

        # It was found in the channel history by its footer and edited: no second message.
        assert len(fake.requests_of("create")) == posts_before
        (lookup,) = fake.requests_of("history")
        assert lookup.method == "GET" and int(lookup.query["limit"]) >= 3
        assert wire.mapped_message(second.position_id) is interrupted
        assert fields(interrupted)["Open"] == "5" and interrupted.edits == 1
        assert [m.id for m in wire.messages_of(second.position_id)] == [interrupted.id]
        assert fields(wire.mapped_message(third.position_id))["Open"] == "6"  # the newer message was left alone
        assert len(wire.position_messages()) == 3
        stored = json.loads((wire.storage / "message_ids.json").read_text())["messages"]
        assert stored[second.position_id]["message_id"] == interrupted.id
        assert stored[second.position_id]["posting"] is False
        assert stored[first.position_id]["message_id"] == reposted.id


async def test_a_first_post_of_the_day_that_failed_does_not_take_an_earlier_days_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with desk_on_fake(monkeypatch, tmp_path) as wire:
        fake, manager, message_map = wire.fake, wire.bot.desk.manager, wire.bot.message_map
        spy = contract(450)
        wire.quote(spy, "2.00", "2.10")
        position = await manager.open_position(spy, 6, strategy="orb")
        # The position's message of yesterday is still in the channel; the end-of-day reset forgot it.
        yesterday = datetime.now(UTC) - timedelta(days=1)
        old_embed = {"title": spy.label, "footer": {"text": f"{position.position_id} · fees 0"}}
        old = fake.add_message(CHANNEL_ID, created_at=yesterday, embeds=[old_embed])
        message_map.reset(yesterday + timedelta(hours=1))

        # Act: today's first post fails outright (whether Discord took it is unknown), then it is retried.
        fake.fail_next("create", status=503)
        assert await wire.bot.desk.notifier.flush() == 1
        await wire.deliver()

        # Assert: the channel was searched, yesterday's message left alone, and a fresh one posted.
        assert [r.status for r in fake.requests_of("history")] == [200]
        assert [r.status for r in fake.requests_of("create")] == [503, 200]
        assert not fake.requests_of("edit") and old.edits == 0 and old.embeds == [old_embed]
        today = wire.mapped_message(position.position_id)
        assert today.id != old.id and fields(today)["Open"] == "6"


# ---------------------------------------------------------------------------------------------------------------
# 5. Clean shutdown


async def test_close_stops_tasks_scheduler_and_ledger_without_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with fake_discord(monkeypatch) as fake:
        storage = tmp_path / "storage"
        clock = DeskClock()
        # With its background tasks this time (no strategies are configured): the feed, the notifier, expiry.
        bot = create_bot(settings(), storage=storage, clock=clock)

        async def run_like_the_cli() -> None:  # bot/cli/__init__.py: `async with bot: await bot.start(token)`
            async with bot:
                await bot.start("fake-token")

        running = asyncio.create_task(run_like_the_cli())
        await until_ready(bot, running)
        wire = Wire(fake, bot, storage, clock)
        tasks = list(bot._tasks)
        assert {t.get_name() for t in tasks} == {"feed", "notifier", "expiry", "expiry guard", "trading state"}
        assert bot.scheduler is not None and bot.scheduler.running
        spy = contract(450)
        wire.quote(spy, "1.00", "1.10")
        position = await bot.desk.manager.open_position(spy, 3, strategy="orb")
        await fake.wait_for(lambda: len(wire.messages_of(position.position_id)) == 1, what="the notifier's post")
        ledger = bot.desk.ledger

        # Act: what the SIGTERM handler does.
        closing = asyncio.ensure_future(bot.close())
        done, _ = await asyncio.wait({running}, timeout=10)
        if not done:  # unblock a close stuck on its tasks, so that the test fails instead of hanging
            for task in tasks:
                task.cancel()
            await asyncio.wait({running}, timeout=10)
            pytest.fail("bot.close() did not finish")

        # Assert
        assert running.result() is None and closing.result() is None
        assert all(t.done() for t in tasks) and all(t.cancelled() for t in tasks)
        assert not bot.scheduler.running
        assert ledger._fd is None
        with pytest.raises(LedgerError):
            await ledger.append(wire.ledger_events()[-1])
        assert bot.is_closed()
        assert fake._conn is None  # the gateway socket was closed
        fake.assert_no_unknown_routes()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    assert "Scheduler has been shut down" in caplog.text
