"""The real OptionDeskBot against our fake Discord (tests/discord/fake_discord.py), wire level: the world the
tests build (a guild, its trade channel, a trader and a member without a role), the bot started until ready, and
what the tests read back (ledger, position messages, the message map).

Start the fake and the bot inside the test body when it runs under looptime, so that every timer is virtual.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from queue import SimpleQueue
from typing import Any

import aiosqlite.core
import discord
import pytest

from bot.discord.desk_bot import OptionDeskBot, create_bot
from bot.options.contracts import OptionContract, Right
from bot.options.positions import Position
from bot.options.quotes import Quote
from bot.options.trade_ledger import TradeEvent, read_ledger
from bot.paths import ledger_path
from bot.settings import DiscordSettings, RiskSettings, Settings
from tests.discord.fake_discord import FakeDiscord, FakeMessage

GUILD_ID = 910_000_000_000_000_001
CHANNEL_ID = 910_000_000_000_000_010
TRADER_ROLE_ID = 910_000_000_000_000_020
ADMIN_ROLE_ID = 910_000_000_000_000_021
TRADER_ID = 910_000_000_000_000_030
NOBODY_ID = 910_000_000_000_000_031  # a member without any desk role
READY_WITHIN = 30.0  # virtual seconds; discord.py alone waits 2 s for more guilds before on_ready
# Mark for a test on virtual time; where looptime is not installed, such a test is skipped.
ON_VIRTUAL_TIME = (
    pytest.mark.looptime
    if importlib.util.find_spec("looptime")
    else pytest.mark.skip(reason="looptime is not installed")
)
# Far enough ahead that no quote ever reaches the expiry, whenever the tests run.
EXPIRY = date(datetime.now(UTC).year + 3, 12, 17)


def contract(strike: int, right: Right = Right.CALL) -> OptionContract:
    return OptionContract("SPY", EXPIRY, right, Decimal(strike))


class DeskClock:
    """The desk's market clock: a fixed start plus the loop's (virtual) time since the test began."""

    def __init__(self) -> None:
        self.start = datetime.now(UTC).replace(microsecond=0)
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=self._loop.time() - self._t0)


def follow_sqlite_on_loop_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let looptime wait for the state store's SQLite thread instead of jumping ahead of it.

    aiosqlite runs each query on its own thread and wakes the loop with `call_soon_threadsafe`. looptime cannot
    see that thread: with nothing ready in the loop it moves the clock to the next timer (a heartbeat 30 s ahead,
    the 30 s ready deadline) while the query runs, and the test's timings lose all meaning. looptime does wait,
    in real time, for futures of `run_in_executor`; so each aiosqlite request is paired with an executor job that
    ends when the request's future is done.
    """

    class TrackedQueue(SimpleQueue[tuple[asyncio.Future[Any] | None, Callable[[], Any]]]):
        def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
            future = item[0]
            if future is not None:
                finished = threading.Event()
                future.add_done_callback(lambda _: finished.set())
                future.get_loop().run_in_executor(None, finished.wait)
            super().put_nowait(item)

    monkeypatch.setattr(aiosqlite.core, "SimpleQueue", TrackedQueue)


@dataclass
class Wire:
    fake: FakeDiscord
    bot: OptionDeskBot
    storage: Path
    clock: DeskClock

    def quote(self, contract: OptionContract, bid: str, ask: str) -> None:
        """A fresh quote (stamped with the desk's clock) that paper fills take: buys at the ask, sells at the bid."""
        quote = Quote(bid=Decimal(bid), ask=Decimal(ask), bid_size=500, ask_size=500, ts=self.clock())
        self.bot.desk.quotes.update(contract.symbol, quote)

    def mark(self, contract: OptionContract) -> Decimal | None:
        quote = self.bot.desk.quotes.get(contract.symbol)
        return quote.mark if quote else None

    def ledger_bytes(self) -> bytes:
        path = ledger_path(self.storage)
        return path.read_bytes() if path.exists() else b""

    def ledger_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.ledger_bytes().splitlines()]

    def ledger_events(self) -> list[TradeEvent]:
        return read_ledger(ledger_path(self.storage)).events

    def position_messages(self) -> list[FakeMessage]:
        """The live, non-ephemeral messages in the trade channel that carry an embed (position messages)."""
        return [m for m in self.fake.channel_messages(CHANNEL_ID) if not m.ephemeral and m.embeds]

    def messages_of(self, position_id: str) -> list[FakeMessage]:
        """Live messages whose footer names the position (how the bot itself finds its messages)."""
        return [m for m in self.position_messages() if footer(m).startswith(f"{position_id} ")]

    def mapped_message(self, position_id: str) -> FakeMessage:
        posted = self.bot.message_map.get(position_id)
        assert posted is not None and posted.message_id is not None and not posted.posting, posted
        return self.fake.messages[posted.message_id]

    async def open_shown(self, traded: OptionContract, qty: int) -> tuple[Position, FakeMessage]:
        """A position opened at 1.00 / 1.10 and its message, delivered."""
        self.quote(traded, "1.00", "1.10")
        position = await self.bot.desk.manager.open_position(traded, qty, strategy="orb")
        await self.deliver()
        return position, self.mapped_message(position.position_id)

    async def deliver(self) -> None:
        """Deliver what the notifier has queued (its worker does not run with background=False)."""
        assert await self.bot.desk.notifier.flush() == 0


def footer(message: FakeMessage) -> str:
    text: str = message.embeds[0].get("footer", {}).get("text", "")
    return text


def fields(message: FakeMessage) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message.embeds[0].get("fields", [])}


def populate(fake: FakeDiscord) -> None:
    fake.add_guild(GUILD_ID, "Desk")
    fake.add_channel(GUILD_ID, CHANNEL_ID, "trades")
    fake.add_role(GUILD_ID, TRADER_ROLE_ID, "trader")
    fake.add_role(GUILD_ID, ADMIN_ROLE_ID, "desk admin")
    fake.add_member(GUILD_ID, TRADER_ID, "tina", roles=[TRADER_ROLE_ID])
    fake.add_member(GUILD_ID, NOBODY_ID, "nora")


def settings() -> Settings:
    discord_settings = DiscordSettings(
        guild_id=GUILD_ID,
        trade_channel_id=CHANNEL_ID,
        trader_role_ids=[TRADER_ROLE_ID],
        admin_role_ids=[ADMIN_ROLE_ID],
    )
    # The desk's clock here is the wall clock, whatever the hour: limits on the time of day are not tested here.
    risk = RiskSettings(market_hours_only=False, no_entry_minutes_before_close=False)
    return Settings(discord=discord_settings, strategies=[], risk=risk)


async def until_ready(bot: discord.Client, running: asyncio.Task[None], within: float = READY_WITHIN) -> None:
    """Wait for on_ready; a start that fails raises here instead of hanging."""
    ready = asyncio.create_task(bot.wait_until_ready())
    try:
        done, _ = await asyncio.wait({running, ready}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        if running in done:
            running.result()
        assert ready in done, "the bot was not ready in time"
    finally:
        ready.cancel()


@asynccontextmanager
async def fake_discord(monkeypatch: pytest.MonkeyPatch, **options: Any) -> AsyncIterator[FakeDiscord]:
    follow_sqlite_on_loop_time(monkeypatch)
    async with FakeDiscord(**options) as fake:
        fake.patch(monkeypatch)
        populate(fake)
        yield fake


@asynccontextmanager
async def desk_on_fake(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    bot_settings: Settings | None = None,
    world: Callable[[FakeDiscord], None] | None = None,
    **options: Any,
) -> AsyncIterator[Wire]:
    """The fake and the bot, both started here (inside the test body, so on the virtual clock), until ready;
    `world` adds to what the fake holds before the bot connects (more guilds, members, channels)."""
    async with fake_discord(monkeypatch, **options) as fake:
        if world is not None:
            world(fake)
        clock = DeskClock()
        storage = tmp_path / "storage"
        bot = create_bot(bot_settings or settings(), storage=storage, background=False, clock=clock)
        running = asyncio.create_task(bot.start("fake-token"))
        try:
            await until_ready(bot, running)
            yield Wire(fake, bot, storage, clock)
            fake.assert_no_unknown_routes()
        finally:
            await bot.close()
            await running


@asynccontextmanager
async def notifier_running(bot: OptionDeskBot) -> AsyncIterator[None]:
    """The notifier's worker, as the bot runs it in the background: it delivers queued updates as they come."""
    worker = asyncio.create_task(bot.desk.notifier.run())
    try:
        yield
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)


async def eventually(predicate: Callable[[], bool], what: str, within: float = 5.0, step: float = 0.05) -> None:
    """For what the bot does after Discord's answer (the fake sees nothing more): poll on the loop's clock."""
    for _ in range(round(within / step)):
        if predicate():
            return
        await asyncio.sleep(step)
    assert predicate(), f"{what}: not within {within} s"
