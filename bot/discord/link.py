"""The desk on Discord: open and trading first, then logged in, retried with growing backoff while Discord is out
of reach; how the link is goes to the log (one line per attempt) and to `python -m bot status` (the storage lock's
note).

A refused token (401) stops at once. A name that does not resolve, a refused or dropped connection, a 5xx (or a
Cloudflare 429) and no answer at all are retried 1, 2, 4 ... up to 60 s apart, while the desk trades and its
position messages wait in the notifier's queue; they go out once Discord answers.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

import aiohttp
import discord

from bot.options.clock import Clock, utc_now

if TYPE_CHECKING:
    from bot.discord.desk_bot import OptionDeskBot

log = logging.getLogger(__name__)

# The log-in requests and the command sync: a Discord that accepts the connection and never answers is given up on
# after this long (aiohttp's own limit is 5 minutes), and tried again.
SIGN_IN_WITHIN = 30.0
FIRST_DELAY, MAX_DELAY = 1.0, 60.0

Note = Callable[[str], None]


def _no_note(text: str) -> None:
    return None


class LinkState:
    """How the link to Discord is, in the operator's words: "connecting", "connected", "unreachable since ...".
    Each change goes to `note` (the storage lock's note, which `python -m bot status` shows)."""

    def __init__(self, note: Note | None = None, clock: Clock = utc_now) -> None:
        self._note = note or _no_note
        self._clock = clock
        self._down_since: datetime | None = None
        self.text = "not connected"

    def _say(self, text: str) -> None:
        if text != self.text:
            self.text = text
            self._note(text)

    def _since(self) -> str:
        self._down_since = self._down_since or self._clock()
        return f"{self._down_since:%Y-%m-%d %H:%M:%S} UTC"

    def connecting(self) -> None:
        self._say("connecting")

    def unreachable(self, why: str) -> None:
        self._say(f"unreachable since {self._since()} ({why}), retrying")

    def connected(self) -> None:
        self._down_since = None
        self._say("connected")

    def disconnected(self) -> None:
        self._say(f"disconnected since {self._since()}, reconnecting")


def why_unreachable(error: BaseException) -> str | None:
    """What kept Discord out of reach, in a few words, when `error` is a fault of the network or of Discord's
    servers that a retry can get over; None for anything else (a refused token, a bad request, a bug)."""
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve {error.host}"
    if isinstance(error, aiohttp.ClientConnectorError):
        if isinstance(error.os_error, ConnectionRefusedError):
            return f"connection refused by {error.host}:{error.port}"
        return f"cannot connect to {error.host}:{error.port}: {error.os_error.strerror or error.os_error}"
    if isinstance(error, discord.HTTPException) and (error.status >= 500 or error.status == 429):
        return f"Discord answered {error.status} {error.response.reason}"
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, aiohttp.ClientError | OSError):
        return f"connection failed: {type(error).__name__} {error}".rstrip()
    return None


async def serve(bot: OptionDeskBot, token: str) -> None:
    """The desk on Discord until cancelled (SIGINT/SIGTERM) or a fault no retry gets over (raised: a refused token is
    discord.LoginFailure); the bot and its desk are closed either way."""
    try:
        await bot.open()
        bot.link.connecting()
        await sign_in(bot, token)
        await bot.connect(reconnect=True)
    finally:
        await bot.close()


async def sign_in(
    bot: OptionDeskBot,
    token: str,
    *,
    within: float = SIGN_IN_WITHIN,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Log in (discord.py's `login`, which ends in the bot's `setup_hook`), retrying while Discord is out of reach.
    The desk's background work starts with the first answer, or with the first failure: never on a refused token."""
    delay = FIRST_DELAY
    for attempt in itertools.count(1):
        try:
            await _log_in(bot, token, within)
        except discord.LoginFailure:
            raise
        except Exception as error:
            why = why_unreachable(error)
            if why is None:
                raise
            if isinstance(error, TimeoutError):
                why = f"no answer within {within:g} s"
            await _forget_session(bot)
            bot.start_workers()
            bot.link.unreachable(why)
            log.warning("Discord unreachable (%s); retry %d in %s s", why, attempt, f"{delay:g}")
            await sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
        else:
            if attempt > 1:
                log.info("Discord answered at attempt %d; logged in", attempt)
            return


async def _log_in(bot: OptionDeskBot, token: str, within: float) -> None:
    """`bot.login(token)`, given `within` s to get as far as `bot.linked` (signed in, commands synced); what comes
    after (the start-up's message deliveries, which rate limits may slow down) has no deadline."""
    bot.linked.clear()
    login = asyncio.ensure_future(bot.login(token))
    linked = asyncio.ensure_future(bot.linked.wait())
    try:
        done, _ = await asyncio.wait({login, linked}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            raise TimeoutError
        await login
    finally:
        linked.cancel()
        if not login.done():
            login.cancel()
            await asyncio.gather(login, return_exceptions=True)


async def _forget_session(bot: OptionDeskBot) -> None:
    """Close the failed attempt's HTTP session; its connector goes with it, so the next log-in makes new ones."""
    await bot.http.close()
    bot.http.connector = discord.utils.MISSING


class OneLineReconnects(logging.Filter):
    """discord.py logs each attempt to reconnect its gateway with a whole traceback; the operator reads one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith("Attempting a reconnect in"):
            error = record.exc_info[1]
            why = (why_unreachable(error) if error is not None else None) or type(error).__name__
            retry = record.args[0] if isinstance(record.args, tuple) and record.args else 0.0
            record.msg, record.args = "Discord gateway unreachable (%s); reconnecting in %.0f s", (why, retry)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
