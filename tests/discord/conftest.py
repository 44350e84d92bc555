"""The bot under simcord (an in-process Discord for the real discord.py client): a desk with its trade
channel, a trader, an admin and a member without a role.

One clock for everything: the desk's market clock is simcord's virtual clock (which is also what
`discord.utils.utcnow()` returns inside the bot), set to NOW when the desk is built and moved only by
`await env.advance_time(...)`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import discord
import pytest
import simcord

from bot.discord.desk_bot import OptionDeskBot, create_bot
from bot.options.contracts import OptionContract
from bot.options.positions import Position
from bot.options.quotes import Quote
from bot.paths import ledger_path
from bot.runtime.message_map import MessageMap, PostedMessage
from bot.settings import DiscordSettings, Settings

GUILD_ID = 111_111_111_111_111_111
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York
SPY = OptionContract.parse("SPY   261127C00450000")
QQQ = OptionContract.parse("QQQ   261127P00400000")


def base_settings() -> Settings:
    # Channel and role ids are created by the simulator; the fixture fills them in once they exist. Charts
    # cost a tenth of a second a message to draw: on only where a test looks at them (test_charts_delivery).
    return Settings(discord=DiscordSettings(guild_id=GUILD_ID, trade_channel_id=1, charts=False), strategies=[])


def with_discord(settings: Settings, **changes: object) -> Settings:
    """The same settings with some Discord settings changed (settings are frozen)."""
    return settings.replace(discord=settings.discord.replace(**changes))


def market_quote(bid: str, ask: str, ts: datetime = NOW) -> Quote:
    return Quote(bid=Decimal(bid), ask=Decimal(ask), bid_size=50, ask_size=50, ts=ts)


class VirtualClock:
    """The desk's clock: simcord's virtual time once the environment runs, NOW before."""

    def __init__(self) -> None:
        self.env: simcord.Env | None = None

    def __call__(self) -> datetime:
        return self.env.now() if self.env is not None else NOW


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def bots() -> list[OptionDeskBot]:
    """Every bot a test starts (a restart starts another one)."""
    return []


@pytest.fixture
async def simcord_bot(storage: Path, clock: VirtualClock, bots: list[OptionDeskBot]) -> AsyncIterator[OptionDeskBot]:
    bots.append(create_bot(base_settings(), storage=storage, background=False, clock=clock))
    yield bots[0]
    # simcord detaches the bots at the end but leaves closing them to us: their state stores and ledgers close here.
    for bot in bots:
        await bot.close()


@dataclass
class Desk:
    env: simcord.Env
    bot: OptionDeskBot
    storage: Path
    clock: VirtualClock
    guild: simcord.GuildHandle
    channel: simcord.ChannelHandle
    other_channel: simcord.ChannelHandle
    trader: simcord.MemberActor
    admin: simcord.MemberActor
    nobody: simcord.MemberActor
    moderator: simcord.MemberActor
    server_manager: simcord.MemberActor  # manages the server (sees /reset-messages); a trader, not a desk admin
    trader_role: simcord.RoleHandle
    bots: list[OptionDeskBot]  # every bot started, closed at the end
    marks: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def manager(self):
        return self.bot.desk.manager

    def quote(self, contract: OptionContract, bid: str, ask: str) -> None:
        """Quote a contract now (the paper executor fills buys at the ask and sells at the bid)."""
        self.marks[contract.symbol] = (bid, ask)
        self.bot.desk.quotes.update(contract.symbol, market_quote(bid, ask, self.env.now()))

    async def advance_to(self, when: datetime) -> None:
        """Move the virtual clock (the desk's and Discord's) to `when`; the quotes are given again then."""
        await self.env.advance_time((when - self.env.now()).total_seconds())
        self.requote()

    def requote(self) -> None:
        for symbol, (bid, ask) in self.marks.items():
            self.bot.desk.quotes.update(symbol, market_quote(bid, ask, self.env.now()))

    async def deliver(self) -> None:
        """Let the notifier deliver what is queued (background tasks are off in tests)."""
        await self.bot.desk.notifier.flush()
        await self.env.settle()

    async def open(self, contract: OptionContract = SPY, qty: int = 10, *, strategy: str = "orb") -> Position:
        """A strategy opens a position (at the ask of the current quote) and its message is delivered."""
        if contract.symbol not in self.marks:
            self.quote(contract, "1.00", "1.10")
        position = await self.manager.open_position(contract, qty, strategy=strategy)
        await self.deliver()
        return position

    async def restart(self) -> None:
        """Stop the bot and start a new one on the same settings and storage; quotes are given again."""
        bot = create_bot(self.bot.settings, storage=self.storage, background=False, clock=self.clock)
        self.bots.append(bot)
        await self.env.restart_bot(bot)
        self.bot = bot
        self.requote()

    def use_settings(self, **changes: object) -> None:
        """Change Discord settings of the running bot (they are read at each use)."""
        self.bot.settings = with_discord(self.bot.settings, **changes)

    # --- what the desk wrote and what Discord shows ---------------------------------------------------

    @property
    def ledger_file(self) -> Path:
        return ledger_path(self.storage)

    def ledger_bytes(self) -> bytes:
        return self.ledger_file.read_bytes() if self.ledger_file.exists() else b""

    def ledger_lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.ledger_bytes().splitlines()]

    def message_map(self) -> MessageMap:
        """The map as stored on disk right now."""
        return MessageMap(self.storage / "message_ids.json")

    def message_map_bytes(self) -> bytes:
        path = self.storage / "message_ids.json"
        return path.read_bytes() if path.exists() else b""

    def posted(self, position_id: str) -> PostedMessage | None:
        return self.message_map().get(position_id)

    def messages(self) -> list[discord.Message]:
        return [m for m in self.channel.history() if m.author.id == self.bot.user.id and m.embeds]

    def message_of(self, position_id: str) -> discord.Message:
        posted = self.posted(position_id)
        assert posted is not None and posted.message_id is not None, f"no message for {position_id}"
        [message] = [m for m in self.channel.history() if m.id == posted.message_id]
        return message

    def requests(self, method: str, path: str) -> list[simcord.HttpLogEntry]:
        return [r for r in self.env.http_requests if r.method == method and r.path == path]

    def posts(self) -> list[simcord.HttpLogEntry]:
        return self.requests("POST", f"/channels/{self.channel.id}/messages")

    def edits(self, message: discord.Message | int) -> list[simcord.HttpLogEntry]:
        message_id = message if isinstance(message, int) else message.id
        return self.requests("PATCH", f"/channels/{self.channel.id}/messages/{message_id}")


def button_ids(message: discord.Message) -> list[str]:
    return [child.custom_id for row in message.components for child in row.children]  # type: ignore[union-attr]


def fields_of(embed: discord.Embed) -> dict[str, str]:
    return {f.name: f.value for f in embed.fields}  # type: ignore[misc]


@pytest.fixture
async def desk(simcord_env: simcord.Env, storage: Path, clock: VirtualClock, bots: list[OptionDeskBot]) -> Desk:
    env = simcord_env
    guild = env.create_guild("Desk", id=GUILD_ID)
    channel = guild.create_text_channel("trades")
    other = guild.create_text_channel("chat")
    trader_role = guild.create_role("trader")
    admin_role = guild.create_role("admin", permissions=discord.Permissions(manage_guild=True))
    manager_role = guild.create_role("server manager", permissions=discord.Permissions(manage_guild=True))
    moderator_role = guild.create_role("moderator", permissions=discord.Permissions(manage_messages=True))
    trader = guild.add_member(env.create_user("tina"), roles=[trader_role])
    admin = guild.add_member(env.create_user("adam"), roles=[admin_role])
    nobody = guild.add_member(env.create_user("nora"))
    moderator = guild.add_member(env.create_user("mo"), roles=[moderator_role])
    server_manager = guild.add_member(env.create_user("sam"), roles=[trader_role, manager_role])
    bot = env.bot
    assert isinstance(bot, OptionDeskBot)
    bot.settings = with_discord(
        bot.settings,
        trade_channel_id=channel.id,
        trader_role_ids=[trader_role.id],
        admin_role_ids=[admin_role.id],
    )
    await env.advance_time((NOW - env.now()).total_seconds())
    clock.env = env
    await env.settle()
    members = (trader, admin, nobody, moderator, server_manager)
    return Desk(env, bot, storage, clock, guild, channel, other, *members, trader_role, bots)
