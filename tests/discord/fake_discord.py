"""A small fake Discord (REST + gateway) on 127.0.0.1 that the real, unmodified discord.py client talks to.

What it covers (enough for a guild-scoped bot with slash commands, buttons and one message per position):

- Login: ``GET /users/@me``, ``GET /oauth2/applications/@me``.
- Commands: ``PUT``/``GET /applications/{app}/guilds/{gid}/commands`` (and the global variant); ids are stable
  per name so a re-sync keeps them.
- Messages: create (JSON or multipart with ``payload_json`` + ``files[n]``), edit, get, delete, history;
  attachments keep metadata and their bytes (served under ``/attachments/...`` so ``Attachment.read()`` works).
  ``add_message`` puts an older message (say, of an earlier day) into a channel's history.
  A deleted or unknown message answers 404 ``{"message": "Unknown Message", "code": 10008}``.
- Interactions: ``send_slash`` / ``click`` dispatch INTERACTION_CREATE; callbacks (``?with_response=1`` answer),
  ``@original`` get/edit/delete, follow-ups and their edits. Everything lands in ``fake.messages``.
- Gateway: HELLO, heartbeat ACK, IDENTIFY -> READY + GUILD_CREATE, RESUME with replay of missed dispatches,
  REQUEST_GUILD_MEMBERS -> GUILD_MEMBERS_CHUNK, a heartbeat request every ``heartbeat_request_every`` loop
  seconds, MESSAGE_CREATE/UPDATE/DELETE for non-ephemeral messages (with the guild messages intent). Text frames by
  default; ``zlib_stream=True`` sends zlib-stream binary frames when the client asks for them.
- Rate limits per route family and major parameter (fixed windows on ``loop.time()``, so they follow looptime),
  ``X-RateLimit-*`` headers on every REST answer, proper 429s (``Via`` header, JSON ``retry_after``).
- Faults: ``fail_next`` (5xx or 429 storms), ``stall_next`` (no answer until the fake stops: a client timeout),
  ``clear_faults`` (answer normally again), ``drop_gateway`` (resumable close), ``invalidate_session`` (op 9).
- Interactions from a DM: ``send_slash``/``click`` with ``guild_id=None`` (the user instead of a member).
- Any other route answers ``unknown_route_status`` (501 by default) and is recorded in ``unknown_routes``.

Route families (``FakeRequest.kind``, keys of ``rate_limits`` and ``fail_next``): me, application, commands,
create, edit, get_message, delete, history, channel, guild, callback, original, followup, webhook_message, cdn,
unknown.

Use from a test (start the fake and the bot inside the test body when it runs under looptime)::

    async with FakeDiscord(rate_limits={"edit": (5, 5.0)}) as fake:
        fake.patch(monkeypatch)  # Route.BASE and DiscordWebSocket.DEFAULT_GATEWAY
        fake.add_guild(GUILD, "Desk"); fake.add_channel(GUILD, CHANNEL, "trades")
        fake.add_role(GUILD, ROLE, "trader"); fake.add_member(GUILD, USER, "alice", roles=[ROLE])
        task = asyncio.create_task(bot.start("any-token")); await bot.wait_until_ready()
        interaction = await fake.send_slash(GUILD, CHANNEL, USER, "trim", options={"percent": 50})
        body = await interaction.response()  # the callback body; then .original, .followups
        await fake.wait_for(lambda: fake.channel_messages(CHANNEL)[-1].content == "done")
        fake.assert_no_unknown_routes()
        await bot.close(); await task
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import secrets
import socket
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import discord
import pytest
import yarl
from aiohttp import WSMsgType, web

Json = dict[str, Any]

API = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
EPHEMERAL = 1 << 6
LOADING = 1 << 7
GUILD_MESSAGES_INTENT = 1 << 9
# 5 per 5 s per channel is the commonly observed limit for message creates and edits; Discord documents none.
DEFAULT_RATE_LIMITS: dict[str, tuple[int, float]] = {"create": (5, 5.0), "edit": (5, 5.0)}
FALLBACK_RATE_LIMIT = (50, 1.0)
UNKNOWN_MESSAGE: Json = {"message": "Unknown Message", "code": 10008}
UNKNOWN_CHANNEL: Json = {"message": "Unknown Channel", "code": 10003}
UNKNOWN_WEBHOOK: Json = {"message": "Unknown Webhook", "code": 10015}
UNKNOWN_INTERACTION: Json = {"message": "Unknown interaction", "code": 10062}
OPTION_TYPES: dict[type, int] = {str: 3, int: 4, bool: 5, float: 10}
STALL = 0  # a fault "status": no answer at all


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _filler(*, none: str = "", false: str = "", zero: str = "", empty: str = "") -> Json:
    """Fields Discord always sends that the tests do not care about, from space-separated names."""
    return (
        dict.fromkeys(none.split())
        | dict.fromkeys(false.split(), False)
        | dict.fromkeys(zero.split(), 0)
        | {name: [] for name in empty.split()}
    )


def _json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Built from bytes: aiohttp's json_response says "application/json; charset=utf-8", which discord.py
    # does not take for JSON (it compares the header exactly) and then fails at login.
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={**(headers or {}), "Content-Type": "application/json"}
    )


@dataclass
class FakeFile:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class FakeRequest:
    """One REST request as the fake saw it; ``time`` is ``loop.time()``, ``status`` what it answered."""

    method: str
    path: str  # without the /api/v10 prefix
    kind: str
    query: dict[str, str]
    json: Any
    files: list[FakeFile]
    time: float
    status: int = 0
    injected: bool = False


REC = web.RequestKey("rec", FakeRequest)


@dataclass
class FakeMessage:
    """A message's current state. Ephemeral replies are kept too (flags & 64); deleted ones stay with deleted=True."""

    id: int
    channel_id: int
    guild_id: int | None
    author: Json
    content: str = ""
    embeds: list[Json] = field(default_factory=list)
    components: list[Json] = field(default_factory=list)
    attachments: list[Json] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    webhook_id: int | None = None
    interaction_id: int | None = None
    edits: int = 0
    deleted: bool = False

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    def payload(self) -> Json:
        data: Json = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": self.author,
            "content": self.content,
            "embeds": self.embeds,
            "components": self.components,
            "attachments": self.attachments,
            "flags": self.flags,
            "type": self.type,
            "timestamp": _now_iso(),
            "edited_timestamp": _now_iso() if self.edits else None,
        } | _filler(false="tts mention_everyone pinned", empty="mentions mention_roles")
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
            data["application_id"] = str(self.webhook_id)
        return data


@dataclass
class FakeGuild:
    id: int
    name: str
    channels: dict[int, Json] = field(default_factory=dict)
    roles: dict[int, Json] = field(default_factory=dict)
    members: dict[int, Json] = field(default_factory=dict)


@dataclass
class FakeInteraction:
    """An interaction the fake dispatched; the bot's answers show up here as it makes them."""

    fake: FakeDiscord = field(repr=False)
    id: int
    token: str
    type: int
    guild_id: int
    channel_id: int
    user_id: int
    message_id: int | None = None  # the message a clicked component sits on
    callback: Json | None = None  # body of POST /interactions/{id}/{token}/callback
    original_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)

    # A default deadline on the helpers (noqa ASYNC109) so a test fails with a message instead of hanging.
    async def response(self, timeout: float = 5.0) -> Json:  # noqa: ASYNC109
        """Wait for the interaction callback and return its body (``{"type": 4, "data": {...}}``)."""
        await self.fake.wait_for(lambda: self.callback is not None, timeout, f"no callback for interaction {self.id}")
        assert self.callback is not None
        return self.callback

    async def outcome(self, timeout: float = 5.0) -> Json:  # noqa: ASYNC109
        """The callback body, or for a deferred answer (type 5 "thinking", type 6 an update) the type with what
        followed it (an edit of the original or a follow-up) as its data: what the member sees in the end."""
        answer = await self.response(timeout)
        if answer["type"] not in (5, 6):
            return answer

        def after() -> list[FakeRequest]:
            kinds = {"original": "PATCH", "followup": "POST"}
            return [r for r in self.fake.requests if self.token in r.path and kinds.get(r.kind) == r.method]

        await self.fake.wait_for(lambda: bool(after()), timeout, f"nothing after the deferred answer to {self.id}")
        return {"type": answer["type"], "data": {**(answer.get("data") or {}), **after()[-1].json}}

    async def wait_followups(self, count: int, timeout: float = 5.0) -> list[FakeMessage]:  # noqa: ASYNC109
        await self.fake.wait_for(lambda: len(self.followup_ids) >= count, timeout, f"fewer than {count} follow-ups")
        return self.followups

    @property
    def original(self) -> FakeMessage | None:
        return None if self.original_id is None else self.fake.messages.get(self.original_id)

    @property
    def followups(self) -> list[FakeMessage]:
        return [self.fake.messages[i] for i in self.followup_ids]


@dataclass
class _Fault:
    match: Callable[[FakeRequest], bool]
    status: int
    remaining: int
    retry_after: float


@dataclass
class _Window:
    start: float
    count: int = 0


@dataclass
class _GatewayConn:
    ws: web.WebSocketResponse
    compressor: Any = None  # zlib compress object when speaking zlib-stream
    live: bool = False  # identified or resumed: dispatches may flow
    sent_seq: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    heartbeat_task: asyncio.Task[None] | None = None


class FakeDiscord:
    """The fake server. ``async with FakeDiscord() as fake: fake.patch(monkeypatch)`` then start the bot."""

    def __init__(
        self,
        *,
        rate_limits: dict[str, tuple[int, float]] | None = None,
        zlib_stream: bool = False,
        message_events: bool = True,
        heartbeat_interval_ms: int = 41_250,
        heartbeat_request_every: float = 30.0,
        unknown_route_status: int = 501,
        event_log_size: int = 10_000,
    ) -> None:
        self.rate_limits = DEFAULT_RATE_LIMITS | (rate_limits or {})
        self.zlib_stream = zlib_stream
        self.message_events = message_events
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.heartbeat_request_every = heartbeat_request_every
        # 501, not 500: discord.py retries 500/502/504/524 five times with 1+2*tries s sleeps (25 s) before
        # raising, while any other 5xx raises DiscordServerError at once, which is what "fail loudly" needs.
        self.unknown_route_status = unknown_route_status
        self._last_id = 0
        self.app_id = self.next_id()
        self.owner = self._user(self.next_id(), "desk-owner")
        self.bot_user = self._user(self.app_id, "optiondesk", bot=True)
        self.guilds: dict[int, FakeGuild] = {}
        self.users: dict[int, Json] = {self.app_id: self.bot_user}
        self.messages: dict[int, FakeMessage] = {}
        self.attachment_data: dict[int, bytes] = {}
        self.commands: dict[int | None, list[Json]] = {}  # guild id (None: global) -> registered commands
        self.interactions: dict[int, FakeInteraction] = {}
        self.requests: list[FakeRequest] = []
        self.unknown_routes: list[FakeRequest] = []
        self.errors: list[tuple[FakeRequest, str]] = []  # requests whose handler raised
        self.rate_limited = 0
        self.gateway_received: list[Json] = []  # every frame the client sent (token masked)
        self.gateway_connections: list[tuple[str, dict[str, str]]] = []  # (path, query) per connection
        self.session_id: str | None = None
        self.intents = 0
        self.seq = 0
        self._events: deque[Json] = deque(maxlen=event_log_size)
        self._conn: _GatewayConn | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._faults: list[_Fault] = []
        self._stopping = asyncio.Event()  # releases stalled requests
        self._windows: dict[tuple[str, str], _Window] = {}
        self._changed = asyncio.Event()
        self._kinds: dict[Any, str] = {}  # aiohttp route -> route family
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        add = self._add_route
        for path in ("/", "/resume-gateway/"):
            app.router.add_get(path, self._gateway)
        add(app, "GET", "/users/@me", "me", self._get_me)
        add(app, "GET", "/oauth2/applications/@me", "application", self._get_application)
        for path in ("/applications/{app}/guilds/{guild_id}/commands", "/applications/{app}/commands"):
            add(app, "PUT", path, "commands", self._put_commands)
            add(app, "GET", path, "commands", self._get_commands)
        add(app, "POST", "/channels/{channel_id}/messages", "create", self._create_message)
        add(app, "GET", "/channels/{channel_id}/messages", "history", self._history)
        add(app, "PATCH", "/channels/{channel_id}/messages/{message_id}", "edit", self._edit_message)
        add(app, "GET", "/channels/{channel_id}/messages/{message_id}", "get_message", self._get_message)
        add(app, "DELETE", "/channels/{channel_id}/messages/{message_id}", "delete", self._delete_message)
        add(app, "GET", "/channels/{channel_id}", "channel", self._get_channel)
        add(app, "GET", "/guilds/{guild_id}", "guild", self._get_guild)
        add(app, "POST", "/interactions/{interaction_id}/{token}/callback", "callback", self._callback)
        for method in ("GET", "PATCH", "DELETE"):
            add(app, method, "/webhooks/{app}/{token}/messages/@original", "original", self._webhook_message)
        add(app, "POST", "/webhooks/{app}/{token}", "followup", self._followup)
        for method in ("GET", "PATCH", "DELETE"):
            add(app, method, "/webhooks/{app}/{token}/messages/{message_id}", "webhook_message", self._webhook_message)
        self._kinds[app.router.add_get(r"/attachments/{attachment_id:\d+}/{filename}", self._cdn)] = "cdn"
        self._kinds[app.router.add_route("*", "/{tail:.*}", self._unknown)] = "unknown"
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        self._stopping.set()
        if self._conn and self._conn.heartbeat_task:
            self._conn.heartbeat_task.cancel()
        for ws in list(self._sockets):
            await ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def gateway_url(self) -> yarl.URL:
        return yarl.URL(f"ws://127.0.0.1:{self.port}/")

    def patch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point discord.py at the fake (REST, interaction callbacks, webhooks and the gateway)."""
        monkeypatch.setattr(discord.http.Route, "BASE", self.api_base)
        monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", self.gateway_url)

    # ------------------------------------------------------------------ world building
    def next_id(self) -> int:
        # Time-based snowflakes so discord.py's created_at looks sane; strictly increasing.
        self._last_id = max(self._last_id + 1, (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22)
        return self._last_id

    @staticmethod
    def _user(user_id: int, name: str, *, bot: bool = False) -> Json:
        user = {"id": str(user_id), "username": name, "discriminator": "0", "bot": bot}
        return user | _filler(none="global_name avatar", zero="flags public_flags")

    def add_guild(self, guild_id: int, name: str) -> FakeGuild:
        guild = self.guilds[guild_id] = FakeGuild(guild_id, name)
        self.add_role(guild_id, guild_id, "@everyone", permissions=int(discord.Permissions.general().value))
        self.add_member(guild_id, self.app_id, "optiondesk")
        return guild

    def add_channel(self, guild_id: int, channel_id: int, name: str) -> Json:
        guild = self.guilds[guild_id]
        channel = {"id": str(channel_id), "type": 0, "guild_id": str(guild_id), "name": name} | _filler(
            none="parent_id topic last_message_id",
            false="nsfw",
            empty="permission_overwrites",
            zero="rate_limit_per_user",
        )
        guild.channels[channel_id] = channel | {"position": len(guild.channels)}
        return guild.channels[channel_id]

    def add_role(self, guild_id: int, role_id: int, name: str, *, permissions: int = 0) -> Json:
        guild = self.guilds[guild_id]
        role = {"id": str(role_id), "name": name, "permissions": str(permissions), "position": len(guild.roles)}
        role |= _filler(zero="color flags", false="hoist managed mentionable")
        guild.roles[role_id] = role
        return role

    def add_member(self, guild_id: int, user_id: int, name: str, roles: Iterable[int] = ()) -> Json:
        user = self.users.setdefault(user_id, self._user(user_id, name))
        member = {"user": user, "roles": [str(r) for r in roles], "joined_at": _now_iso(), "flags": 0}
        member |= _filler(none="nick", false="deaf mute pending")
        self.guilds[guild_id].members[user_id] = member
        return member

    def member_permissions(self, guild_id: int, user_id: int) -> int:
        guild = self.guilds[guild_id]
        role_ids = [guild_id, *(int(r) for r in guild.members[user_id]["roles"])]
        value = 0
        for role_id in role_ids:
            value |= int(guild.roles[role_id]["permissions"])
        return discord.Permissions.all().value if value & discord.Permissions(administrator=True).value else value

    def guild_payload(self, guild_id: int, *, full: bool) -> Json:
        guild = self.guilds[guild_id]
        data: Json = {
            "id": str(guild.id),
            "name": guild.name,
            "owner_id": self.owner["id"],
            "preferred_locale": "en-US",
        }
        data |= {"roles": list(guild.roles.values())} | _filler(
            none="icon",
            empty="emojis stickers features",
            zero="premium_tier verification_level default_message_notifications explicit_content_filter mfa_level "
            "nsfw_level system_channel_flags",
        )
        if full:  # the GUILD_CREATE shape
            data |= {
                "joined_at": _now_iso(),
                "member_count": len(guild.members),
                "channels": list(guild.channels.values()),
                # Like Discord without the presences intent: only the bot itself; the rest comes by op 8 (members
                # intent) or inside interactions.
                "members": [guild.members[self.app_id]],
            } | _filler(
                false="unavailable large",
                empty="threads presences voice_states stage_instances guild_scheduled_events soundboard_sounds",
            )
        return data

    def add_message(
        self,
        channel_id: int,
        *,
        created_at: datetime,
        content: str = "",
        embeds: list[Json] | None = None,
        author_id: int | None = None,
    ) -> FakeMessage:
        """A message posted before the test (by the bot unless ``author_id`` says who), its id dated ``created_at``:
        e.g. a position's message of an earlier day, for the channel history."""
        message_id = (int(created_at.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22
        while message_id in self.messages:
            message_id += 1
        found = self._channel(channel_id)
        author = self.bot_user if author_id is None else self.users[author_id]
        message = FakeMessage(message_id, channel_id, found[0] if found else None, author, content, embeds or [])
        self.messages[message_id] = message
        return message

    # ------------------------------------------------------------------ reading state
    def channel_messages(self, channel_id: int, *, include_deleted: bool = False) -> list[FakeMessage]:
        """Messages of a channel, oldest first (ephemeral ones included: filter on ``.ephemeral``)."""
        found = [m for m in self.messages.values() if m.channel_id == channel_id and (include_deleted or not m.deleted)]
        return sorted(found, key=lambda m: m.id)  # messages added with an earlier date sit among the older ones

    def requests_of(self, kind: str, *, status: int | None = None) -> list[FakeRequest]:
        return [r for r in self.requests if r.kind == kind and (status is None or r.status == status)]

    def assert_no_unknown_routes(self) -> None:
        """Fail if the client used a route the fake does not know, or one the fake failed to handle."""
        assert not self.unknown_routes, "fake Discord got routes it does not know: " + ", ".join(
            f"{r.method} {r.path}" for r in self.unknown_routes
        )
        assert not self.errors, "fake Discord failed on: " + ", ".join(
            f"{r.method} {r.path}: {e}" for r, e in self.errors
        )

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
        what: str = "condition",
    ) -> None:
        """Wait (loop time) until ``predicate()`` holds; it is re-checked after every request and gateway frame."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"fake Discord: {what} not met within {timeout} s") from None

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ faults
    def fail_next(
        self,
        kind_or_predicate: str | Callable[[FakeRequest], bool],
        status: int = 500,
        count: int = 1,
        retry_after: float = 0.2,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` (a 429 carries ``retry_after``)."""
        kind = kind_or_predicate
        match = (lambda r: r.kind == kind) if isinstance(kind, str) else kind
        self._faults.append(_Fault(match, status, count, retry_after))

    def clear_faults(self) -> None:
        """Answer every request normally from now on (faults still waiting are dropped; stalled ones stay stalled)."""
        self._faults.clear()

    def stall_next(self, kind_or_predicate: str | Callable[[FakeRequest], bool], count: int = 1) -> None:
        """Leave the next ``count`` matching requests unanswered (not handled) until the fake stops, so the client's
        own timeout ends them."""
        self.fail_next(kind_or_predicate, status=STALL, count=count)

    async def drop_gateway(self, code: int = 4000) -> None:
        """Close the gateway socket with a resumable code; the client reconnects and RESUMEs."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.live = False
            await conn.ws.close(code=code)

    async def invalidate_session(self) -> None:
        """Op 9 with d=false: the session is gone and the client must IDENTIFY again."""
        self.session_id = None
        if self._conn is not None:
            await self._send(self._conn, {"op": 9, "d": False})

    # ------------------------------------------------------------------ interactions
    async def send_slash(
        self,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        name: str,
        options: list[Json] | dict[str, Any] | None = None,
    ) -> FakeInteraction:
        """Dispatch a slash command. ``options`` is Discord's raw list or ``{name: value}`` (types from the sync)."""
        command = next((c for c in self.commands.get(guild_id, []) if c["name"] == name), None)
        command = command or next((c for g in self.commands.values() for c in g if c["name"] == name), None)
        if isinstance(options, dict):
            declared = {o["name"]: o["type"] for o in (command or {}).get("options", [])}
            options = [
                {"name": k, "type": declared.get(k, OPTION_TYPES.get(type(v), 3)), "value": v}
                for k, v in options.items()
            ]
        data = {
            "id": command["id"] if command else str(self.next_id()),
            "name": name,
            "type": 1,
            "options": options or [],
        }
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        return await self._interact(2, guild_id, channel_id, user_id, data, None)

    async def click(
        self,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        message_id: int,
        custom_id: str,
        values: list[str] | None = None,
    ) -> FakeInteraction:
        """Press a button (or pick ``values`` in a string select) on a message the fake holds."""
        data: Json = {"custom_id": custom_id, "component_type": 2 if values is None else 3}
        if values is not None:
            data["values"] = values
        return await self._interact(3, guild_id, channel_id, user_id, data, message_id)

    async def _interact(
        self, itype: int, guild_id: int | None, channel_id: int, user_id: int, data: Json, message_id: int | None
    ) -> FakeInteraction:
        inter = FakeInteraction(
            self, self.next_id(), secrets.token_urlsafe(24), itype, guild_id or 0, channel_id, user_id, message_id
        )
        self.interactions[inter.id] = inter
        payload: Json = {
            "id": str(inter.id),
            "application_id": str(self.app_id),
            "type": itype,
            "token": inter.token,
            "version": 1,
            "channel_id": str(channel_id),
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,  # discord.py 2.7.1 reads it unconditionally
            "data": data,
        }
        if guild_id is None:  # a DM with the bot: the user, no member, no guild
            user = self.users[user_id]
            payload |= {
                "user": user,
                "channel": {"id": str(channel_id), "type": 1, "recipients": [user], "last_message_id": None},
                "app_permissions": str(discord.Permissions.text().value),
                "authorizing_integration_owners": {"1": str(user_id)},
                "context": 1,
            }
        else:
            guild = self.guilds[guild_id]
            payload |= {
                "guild_id": str(guild_id),
                "channel": guild.channels[channel_id],
                "member": guild.members[user_id] | {"permissions": str(self.member_permissions(guild_id, user_id))},
                "app_permissions": str(self.member_permissions(guild_id, self.app_id)),
                "guild_locale": "en-US",
                "authorizing_integration_owners": {"0": str(guild_id)},
                "context": 0,
            }
        if message_id is not None:
            payload["message"] = self.messages[message_id].payload()
        await self.dispatch("INTERACTION_CREATE", payload)
        return inter

    # ------------------------------------------------------------------ gateway
    async def dispatch(self, event: str, data: Json) -> None:
        """Queue a dispatch with the next sequence number; it is sent now if a session is live, else on RESUME."""
        self.seq += 1
        self._events.append({"op": 0, "t": event, "s": self.seq, "d": data})
        if self._conn is not None:
            await self._flush(self._conn)

    async def _flush(self, conn: _GatewayConn) -> None:
        async with conn.lock:
            # One frame at a time with indexes recomputed: dispatches may be appended while a send is awaited.
            while conn.live and not conn.ws.closed and self._events and conn.sent_seq < self.seq:
                first = self._events[0]["s"]
                frame = self._events[max(conn.sent_seq + 1 - first, 0)]
                await self._send_raw(conn, frame)
                conn.sent_seq = frame["s"]

    async def _send(self, conn: _GatewayConn, frame: Json) -> None:
        async with conn.lock:
            await self._send_raw(conn, frame)

    async def _send_raw(self, conn: _GatewayConn, frame: Json) -> None:
        if conn.ws.closed:
            return
        text = json.dumps(frame)
        try:
            if conn.compressor is None:
                await conn.ws.send_str(text)
            else:
                # zlib-stream: one shared deflate stream, each message ending in the Z_SYNC_FLUSH suffix.
                compressed = conn.compressor.compress(text.encode()) + conn.compressor.flush(zlib.Z_SYNC_FLUSH)
                await conn.ws.send_bytes(compressed)
        except ConnectionError:
            conn.live = False

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        zlib_on = self.zlib_stream and request.query.get("compress") == "zlib-stream"
        conn = _GatewayConn(ws, zlib.compressobj() if zlib_on else None)
        self.gateway_connections.append((request.path, dict(request.query)))
        self._conn = conn
        try:
            await self._send(conn, {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            conn.heartbeat_task = asyncio.create_task(self._request_heartbeats(conn))
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_frame(conn, json.loads(msg.data))
        finally:
            if conn.heartbeat_task:
                conn.heartbeat_task.cancel()
            conn.live = False
            if self._conn is conn:
                self._conn = None
            self._sockets.discard(ws)
            self._notify()
        return ws

    async def _request_heartbeats(self, conn: _GatewayConn) -> None:
        # The client's receive timeout counts loop time: under looptime a quiet minute passes instantly and it
        # would reconnect, so ask for a beat regularly (Discord may send op 1 too).
        while not conn.ws.closed:
            await asyncio.sleep(self.heartbeat_request_every)
            await self._send(conn, {"op": 1, "d": self.seq})

    async def _on_frame(self, conn: _GatewayConn, frame: Json) -> None:
        op, raw = frame.get("op"), frame.get("d")
        d: Json = raw if isinstance(raw, dict) else {}
        if "token" in d:
            frame = frame | {"d": d | {"token": "<masked>"}}
        self.gateway_received.append(frame)
        if op == 1:
            await self._send(conn, {"op": 11})
        elif op == 2:
            await self._identify(conn, d)
        elif op == 6:
            await self._resume(conn, d)
        elif op == 8:
            await self._request_members(d)
        self._notify()

    async def _identify(self, conn: _GatewayConn, d: Json) -> None:
        self.session_id = secrets.token_hex(16)
        self.intents = int(d.get("intents", 0))
        self._events.clear()  # a new session starts from seq 1; whatever the old one missed is lost
        self.seq = 0
        conn.sent_seq = 0
        conn.live = True
        resume_url = f"ws://127.0.0.1:{self.port}/resume-gateway/"
        await self.dispatch(
            "READY",
            {
                "v": 10,
                "user": self.bot_user,
                "session_id": self.session_id,
                "resume_gateway_url": resume_url,
                "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds],
                "application": {"id": str(self.app_id), "flags": 0},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "geo_ordered_rtc_regions": [],
            },
        )
        for guild_id in self.guilds:
            await self.dispatch("GUILD_CREATE", self.guild_payload(guild_id, full=True))

    async def _resume(self, conn: _GatewayConn, d: Json) -> None:
        seq = d.get("seq") or 0
        first = self._events[0]["s"] if self._events else self.seq + 1
        if d.get("session_id") != self.session_id or self.session_id is None or seq + 1 < first:
            await self._send(conn, {"op": 9, "d": False})
            return
        conn.sent_seq = seq
        conn.live = True
        await self._flush(conn)  # replay what the client missed, then RESUMED
        await self.dispatch("RESUMED", {})

    async def _request_members(self, d: Json) -> None:
        guild = self.guilds.get(int(d["guild_id"]))
        if guild is None:
            return
        wanted = {int(u) for u in d.get("user_ids") or []}
        query = (d.get("query") or "").lower()
        if wanted:
            members = [m for uid, m in guild.members.items() if uid in wanted]
        else:
            members = [m for m in guild.members.values() if m["user"]["username"].lower().startswith(query)]
        limit = d.get("limit") or len(members)
        chunk: Json = {"guild_id": str(guild.id), "members": members[:limit], "chunk_index": 0, "chunk_count": 1}
        if d.get("nonce"):
            chunk["nonce"] = d["nonce"]
        await self.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    def _wants_message_events(self, message: FakeMessage) -> bool:
        return self.message_events and not message.ephemeral and bool(self.intents & GUILD_MESSAGES_INTENT)

    # ------------------------------------------------------------------ REST plumbing
    def _add_route(self, app: web.Application, method: str, path: str, kind: str, handler: Any) -> None:
        # Ids are digits only, so e.g. GET /channels/1/messages/pins is an unknown route, not a bad message id.
        path = re.sub(r"\{(app|\w+_id)\}", r"{\1:\\d+}", path)
        self._kinds[app.router.add_route(method, API + path, handler)] = kind

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        kind = self._kinds.get(request.match_info.route)
        if kind is None:  # the gateway websocket
            return await handler(request)
        loop = asyncio.get_running_loop()
        body, files = await self._read_body(request)
        path = request.path.removeprefix(API)
        rec = FakeRequest(request.method, path, kind, dict(request.query), body, files, loop.time())
        self.requests.append(rec)
        request[REC] = rec
        try:
            response = await self._answer(request, handler, rec, rec.time)
        except Exception as exc:  # a bug in the fake or a body it cannot take: loud, and not retried (see 501 above)
            self.errors.append((rec, repr(exc)))
            response = _json_response({"message": f"fake Discord failed: {exc!r}", "code": 0}, 501)
        rec.status = response.status
        if response.status == 429:
            self.rate_limited += 1
        self._notify()
        return response

    async def _answer(self, request: web.Request, handler: Any, rec: FakeRequest, now: float) -> web.StreamResponse:
        if rec.kind == "unknown":
            self.unknown_routes.append(rec)
            body = {"message": f"fake Discord does not know {rec.method} {rec.path}", "code": 0}
            return _json_response(body, self.unknown_route_status)
        major = self._major(request)
        fault = next((f for f in self._faults if f.remaining > 0 and f.match(rec)), None)
        if fault is not None:
            fault.remaining -= 1
            rec.injected = True
            if fault.status == STALL:
                await self._stopping.wait()
                return _json_response({"message": "stalled", "code": 0}, 503)
            headers = self._rate_headers(rec.kind, major, now, consume=False)[1]
            if fault.status == 429:
                return self._too_many(fault.retry_after, headers)
            return _json_response({"message": f"{fault.status}: injected", "code": 0}, fault.status, headers)
        allowed, headers, reset_after = self._rate_headers(rec.kind, major, now, consume=True)
        if not allowed:
            return self._too_many(reset_after, headers)
        response = await handler(request)
        response.headers.update(headers)
        return response

    @staticmethod
    def _too_many(retry_after: float, headers: dict[str, str]) -> web.Response:
        # discord.py retries a 429 only with a Via header and a JSON body with retry_after; otherwise it takes it
        # for a Cloudflare ban and raises.
        headers = headers | {
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Scope": "user",
            "Retry-After": str(math.ceil(retry_after)),
            "Via": "1.1 google",
        }
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
        return _json_response(body, 429, headers)

    @staticmethod
    def _major(request: web.Request) -> str:
        info = request.match_info
        for key in ("channel_id", "guild_id", "interaction_id"):
            if key in info:
                return f"{key}={info[key]}"
        return f"token={info['token']}" if "token" in info else ""

    def _rate_headers(self, kind: str, major: str, now: float, *, consume: bool) -> tuple[bool, dict[str, str], float]:
        """Fixed window per (family, major parameter), opened by its first accepted request, like Discord's."""
        limit, per = self.rate_limits.get(kind, FALLBACK_RATE_LIMIT)
        window = self._windows.get((kind, major))
        if window is None or now >= window.start + per:
            if not consume:
                window = _Window(now)  # a peek must not open a window
            else:
                window = self._windows[(kind, major)] = _Window(now)
        allowed = window.count < limit
        if allowed and consume:
            window.count += 1
        # Rounded up to the millisecond so a client sleeping exactly this long lands in the next window.
        reset_after = max(math.ceil((window.start + per - now) * 1000) / 1000, 0.001)
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(limit - window.count),
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Bucket": f"fake-{kind}",
        }
        return allowed, headers, reset_after

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, list[FakeFile]]:
        if request.content_type == "multipart/form-data":
            form = await request.post()
            files = [
                FakeFile(name, v.filename, v.content_type, v.file.read())
                for name, v in form.items()
                if isinstance(v, web.FileField)
            ]
            raw = form.get("payload_json")
            return (json.loads(raw) if isinstance(raw, str) else None), files
        raw_body = await request.read()
        return (json.loads(raw_body) if raw_body else None), []

    # ------------------------------------------------------------------ REST handlers
    async def _unknown(self, request: web.Request) -> web.Response:
        raise AssertionError("answered by the middleware")

    async def _get_me(self, request: web.Request) -> web.Response:
        return _json_response(self.bot_user)

    async def _get_application(self, request: web.Request) -> web.Response:
        app: Json = {"id": str(self.app_id), "name": "optiondesk", "description": "", "summary": ""}
        app["verify_key"] = "0" * 64
        app |= {"owner": self.owner, "bot": self.bot_user}
        return _json_response(
            app
            | _filler(none="icon team", false="bot_public bot_require_code_grant", zero="flags", empty="rpc_origins")
        )

    async def _put_commands(self, request: web.Request) -> web.Response:
        rec = request[REC]
        guild_id = int(request.match_info["guild_id"]) if "guild_id" in request.match_info else None
        old_ids = {c["name"]: c["id"] for c in self.commands.get(guild_id, [])}
        registered = []
        for command in rec.json or []:
            command = {
                **command,
                "id": old_ids.get(command["name"]) or str(self.next_id()),
                "application_id": str(self.app_id),
                "version": str(self.next_id()),
            }
            if guild_id is not None:
                command["guild_id"] = str(guild_id)
            registered.append(command)
        self.commands[guild_id] = registered
        return _json_response(registered)

    async def _get_commands(self, request: web.Request) -> web.Response:
        guild_id = int(request.match_info["guild_id"]) if "guild_id" in request.match_info else None
        return _json_response(self.commands.get(guild_id, []))

    def _channel(self, channel_id: int) -> tuple[int, Json] | None:
        for guild in self.guilds.values():
            if channel_id in guild.channels:
                return guild.id, guild.channels[channel_id]
        return None

    def _live_message(self, request: web.Request) -> FakeMessage | None:
        message = self.messages.get(int(request.match_info["message_id"]))
        if message is None or message.deleted or message.channel_id != int(request.match_info["channel_id"]):
            return None
        return message

    @staticmethod
    def _invalid(data: Json | None, files: list[FakeFile], *, creating: bool) -> Json | None:
        data = data or {}
        if len(data.get("content") or "") > 2000:
            return {"message": "Invalid Form Body", "code": 50035, "errors": {"content": "at most 2000 characters"}}
        if len(data.get("embeds") or []) > 10:
            return {"message": "Invalid Form Body", "code": 50035, "errors": {"embeds": "at most 10 embeds"}}
        keys = ("content", "embeds", "components", "attachments", "sticker_ids", "poll")
        if creating and not files and not any(data.get(k) for k in keys):
            return {"message": "Cannot send an empty message", "code": 50006}
        return None

    def _apply(self, message: FakeMessage, data: Json | None, files: list[FakeFile], *, edit: bool) -> None:
        """Apply a create/edit body to a message, like Discord: only the fields present change."""
        data = data or {}
        if "content" in data:
            message.content = data["content"] or ""
        if "embeds" in data:
            message.embeds = data["embeds"] or []
        if "components" in data:
            message.components = data["components"] or []
        if "flags" in data and data["flags"] is not None:
            # Ephemerality is fixed at creation.
            message.flags = (int(data["flags"]) & ~EPHEMERAL) | (message.flags & EPHEMERAL)
        uploaded = {f.field: f for f in files}
        new_attachments = []
        for spec in data.get("attachments", []) if "attachments" in data else []:
            kept = next((a for a in message.attachments if a["id"] == str(spec.get("id"))), None)
            upload = uploaded.pop(f"files[{spec.get('id')}]", None)
            if kept is not None:
                new_attachments.append(kept)
            elif upload is not None:
                new_attachments.append(self._store_attachment(upload, spec))
        if "attachments" in data:
            message.attachments = new_attachments
        message.attachments += [self._store_attachment(f, {}) for f in uploaded.values()]
        if edit:
            message.flags &= ~LOADING  # the first edit of a deferred ("thinking") reply replaces it
            message.edits += 1

    def _store_attachment(self, upload: FakeFile, spec: Json) -> Json:
        attachment_id = self.next_id()
        self.attachment_data[attachment_id] = upload.data
        filename = spec.get("filename") or upload.filename
        url = f"http://127.0.0.1:{self.port}/attachments/{attachment_id}/{filename}"
        return {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(upload.data),
            "url": url,
            "proxy_url": url,
            "content_type": upload.content_type,
            "description": spec.get("description"),
        }

    def _new_message(self, channel_id: int, *, flags: int = 0, mtype: int = 0, webhook: bool = False) -> FakeMessage:
        found = self._channel(channel_id)
        message = FakeMessage(
            id=self.next_id(),
            channel_id=channel_id,
            guild_id=found[0] if found else None,
            author=self.bot_user,
            flags=flags,
            type=mtype,
            webhook_id=self.app_id if webhook else None,
        )
        self.messages[message.id] = message
        return message

    async def _announce(self, event: str, message: FakeMessage) -> None:
        if self._wants_message_events(message):
            if event == "MESSAGE_DELETE":
                data = {"id": str(message.id), "channel_id": str(message.channel_id), "guild_id": str(message.guild_id)}
                await self.dispatch(event, data)
            else:
                await self.dispatch(event, message.payload())

    async def _create_message(self, request: web.Request) -> web.Response:
        rec = request[REC]
        channel_id = int(request.match_info["channel_id"])
        if self._channel(channel_id) is None:
            return _json_response(UNKNOWN_CHANNEL, 404)
        if (error := self._invalid(rec.json, rec.files, creating=True)) is not None:
            return _json_response(error, 400)
        message = self._new_message(channel_id, flags=int((rec.json or {}).get("flags") or 0) & ~EPHEMERAL)
        self._apply(message, rec.json, rec.files, edit=False)
        await self._announce("MESSAGE_CREATE", message)
        return _json_response(message.payload())

    async def _edit_message(self, request: web.Request) -> web.Response:
        rec = request[REC]
        message = self._live_message(request)
        if message is None:
            return _json_response(UNKNOWN_MESSAGE, 404)
        if (error := self._invalid(rec.json, rec.files, creating=False)) is not None:
            return _json_response(error, 400)
        self._apply(message, rec.json, rec.files, edit=True)
        await self._announce("MESSAGE_UPDATE", message)
        return _json_response(message.payload())

    async def _get_message(self, request: web.Request) -> web.Response:
        message = self._live_message(request)
        return _json_response(UNKNOWN_MESSAGE, 404) if message is None else _json_response(message.payload())

    async def _delete_message(self, request: web.Request) -> web.Response:
        message = self._live_message(request)
        if message is None:
            return _json_response(UNKNOWN_MESSAGE, 404)
        await self.delete_message(message.id)
        return web.Response(status=204)

    async def delete_message(self, message_id: int) -> None:
        """Delete a message as a moderator would: later edits get 404 Unknown Message."""
        message = self.messages[message_id]
        message.deleted = True
        await self._announce("MESSAGE_DELETE", message)
        self._notify()

    async def _history(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        if self._channel(channel_id) is None:
            return _json_response(UNKNOWN_CHANNEL, 404)
        limit = int(request.query.get("limit", 50))
        before = int(request.query.get("before", 1 << 63))
        after = int(request.query.get("after", 0))
        found = [m for m in self.channel_messages(channel_id) if not m.ephemeral and after < m.id < before]
        found = found[:limit] if "after" in request.query else found[-limit:]
        return _json_response([m.payload() for m in reversed(found)])

    async def _get_channel(self, request: web.Request) -> web.Response:
        found = self._channel(int(request.match_info["channel_id"]))
        return _json_response(UNKNOWN_CHANNEL, 404) if found is None else _json_response(found[1])

    async def _get_guild(self, request: web.Request) -> web.Response:
        guild_id = int(request.match_info["guild_id"])
        if guild_id not in self.guilds:
            return _json_response({"message": "Unknown Guild", "code": 10004}, 404)
        return _json_response(self.guild_payload(guild_id, full=False))

    async def _callback(self, request: web.Request) -> web.Response:
        rec = request[REC]
        inter = self.interactions.get(int(request.match_info["interaction_id"]))
        if inter is None or inter.token != request.match_info["token"]:
            return _json_response(UNKNOWN_INTERACTION, 404)
        if inter.callback is not None:
            return _json_response({"message": "Interaction has already been acknowledged.", "code": 40060}, 400)
        body = rec.json or {}
        rtype, data = int(body.get("type", 0)), body.get("data") or {}
        message: FakeMessage | None = None
        if rtype in (4, 5):  # a new message: with content, or a "thinking" placeholder
            flags = int(data.get("flags") or 0) | (LOADING if rtype == 5 else 0)
            message = self._new_message(
                inter.channel_id, flags=flags, mtype=20 if inter.type == 2 else 19, webhook=True
            )
            if rtype == 4:
                self._apply(message, data, rec.files, edit=False)
            message.interaction_id = inter.id
            inter.original_id = message.id
            await self._announce("MESSAGE_CREATE", message)
        elif rtype in (6, 7) and inter.message_id is not None:  # acknowledge or update the clicked message
            inter.original_id = inter.message_id
            if rtype == 7:
                message = self.messages[inter.message_id]
                self._apply(message, data, rec.files, edit=True)
                await self._announce("MESSAGE_UPDATE", message)
        inter.callback = body
        answer: Json = {
            "interaction": {
                "id": str(inter.id),
                "type": inter.type,
                "response_message_loading": rtype == 5,
                "response_message_ephemeral": bool(message and message.ephemeral),
            }
        }
        if message is not None:
            answer["interaction"]["response_message_id"] = str(message.id)
            answer["resource"] = {"type": rtype, "message": message.payload()}
        return _json_response(answer)

    def _webhook_interaction(self, request: web.Request) -> FakeInteraction | None:
        if request.match_info["app"] != str(self.app_id):
            return None
        token = request.match_info["token"]
        return next((i for i in self.interactions.values() if i.token == token), None)

    async def _followup(self, request: web.Request) -> web.Response:
        rec = request[REC]
        inter = self._webhook_interaction(request)
        if inter is None:
            return _json_response(UNKNOWN_WEBHOOK, 404)
        if (error := self._invalid(rec.json, rec.files, creating=True)) is not None:
            return _json_response(error, 400)
        message = self._new_message(inter.channel_id, flags=int((rec.json or {}).get("flags") or 0), webhook=True)
        self._apply(message, rec.json, rec.files, edit=False)
        message.interaction_id = inter.id
        inter.followup_ids.append(message.id)
        await self._announce("MESSAGE_CREATE", message)
        if request.query.get("wait") in ("1", "true", "True"):
            return _json_response(message.payload())
        return web.Response(status=204)

    async def _webhook_message(self, request: web.Request) -> web.Response:
        rec = request[REC]
        inter = self._webhook_interaction(request)
        if inter is None:
            return _json_response(UNKNOWN_WEBHOOK, 404)
        raw_id = request.match_info.get("message_id")
        message_id = inter.original_id if raw_id is None else int(raw_id)
        allowed = {inter.original_id, *inter.followup_ids}
        message = self.messages.get(message_id) if message_id in allowed and message_id is not None else None
        if message is None or message.deleted:
            return _json_response(UNKNOWN_MESSAGE, 404)
        if request.method == "DELETE":
            await self.delete_message(message.id)
            return web.Response(status=204)
        if request.method == "PATCH":
            if (error := self._invalid(rec.json, rec.files, creating=False)) is not None:
                return _json_response(error, 400)
            self._apply(message, rec.json, rec.files, edit=True)
            await self._announce("MESSAGE_UPDATE", message)
        return _json_response(message.payload())

    async def _cdn(self, request: web.Request) -> web.Response:
        data = self.attachment_data.get(int(request.match_info["attachment_id"]))
        return web.Response(status=404) if data is None else web.Response(body=data)
