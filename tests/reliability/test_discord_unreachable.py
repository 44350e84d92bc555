"""Discord out of reach when the desk starts, four ways: a name that does not resolve, a refused connection, 500s,
a server that accepts and never answers. The desk trades meanwhile, the log has one line per attempt, `status`
says Discord is unreachable, and once Discord answers the messages queued meanwhile arrive. A refused token (401)
stops at once with one line; Discord refusing the start (a 403 on the command sync) too; SIGINT while retrying is a
clean stop. No request leaves 127.0.0.1: names other than it do not resolve here.

In-process runs are on virtual time (looptime): the backoff (1, 2, 4 ... 60 s) and the simulated market's ticks
take no wall time. The processes (`python -m bot`) reach the fake through tests/reliability/discord_child/.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import discord
import pytest

import bot.discord.desk_bot as desk_bot_module
import bot.runtime.desk as desk_module
from bot.discord.desk_bot import OptionDeskBot, create_bot
from bot.discord.link import SIGN_IN_WITHIN, serve
from bot.options.trade_ledger import TradeEvent, read_ledger
from bot.paths import PROJECT_ROOT, ledger_path
from bot.runtime.eod import reset_messages
from bot.runtime.message_map import MessageMap, PostedMessage
from bot.settings import DiscordSettings, Settings, SettingsError
from bot.storage_lock import StorageLock, read_holder
from tests.discord.fake_discord import FakeDiscord
from tests.discord.wire import CHANNEL_ID, GUILD_ID, ON_VIRTUAL_TIME, TRADER_ROLE_ID, fake_discord, footer

NO_SUCH_HOST = "optiondesk-no-such-host.invalid"
# 09:30 New York on a day whose simulated market (the default seed) has the default strategies trade by 09:57.
MARKET_OPEN = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
CHILD_PATH = Path(__file__).with_name("discord_child")
ATTEMPT = "Discord unreachable ("
A_WHILE = 3 * 3600.0  # virtual seconds: far more than the desk needs to trade or Discord to be reached
PROCESS_BOUND = 120.0  # real seconds a child gets to do what it must (a loaded machine is slow to start Python)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def only_loopback_resolves() -> Iterator[None]:
    """Every name but the loopback's fails to resolve, as a name Discord's DNS does not know would: no query leaves."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "localhost", None):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        yield


def unresolvable(fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://{NO_SUCH_HOST}/api/v10")
    return f"cannot resolve {NO_SUCH_HOST}"


def refused(fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> str:
    port = closed_port()
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{port}/api/v10")
    return f"connection refused by 127.0.0.1:{port}"


def server_errors(fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> str:
    fake.fail_next("me", status=500, count=1_000_000)  # discord.py tries a 500 five times per log-in
    return "Discord answered 500 Internal Server Error"


def no_answer(fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> str:
    fake.stall_next("me", count=1_000_000)
    return f"no answer within {SIGN_IN_WITHIN:g} s"


OUTAGES: dict[str, Callable[[FakeDiscord, pytest.MonkeyPatch], str]] = {
    "DNS failure": unresolvable,
    "connection refused": refused,
    "500s": server_errors,
    "no answer": no_answer,
}


def desk_settings() -> Settings:
    """The default strategies on the simulated market, in the fake's guild; no chart drawing (not tested here)."""
    return Settings(
        discord=DiscordSettings(
            guild_id=GUILD_ID, trade_channel_id=CHANNEL_ID, trader_role_ids=[TRADER_ROLE_ID], charts=False
        )
    )


def ledger_events(storage: Path) -> list[TradeEvent]:
    path = ledger_path(storage)
    return read_ledger(path).events if path.exists() else []


def attempts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(ATTEMPT)]


def expected_attempts(why: str, count: int) -> list[str]:
    return [f"Discord unreachable ({why}); retry {n} in {min(2 ** (n - 1), 60)} s" for n in range(1, count + 1)]


async def until(predicate: Callable[[], bool], what: str, serving: asyncio.Task[None]) -> None:
    """Wait on the loop's (virtual) clock until `predicate()` holds; a desk that stopped fails at once."""
    for _ in range(int(A_WHILE)):
        if predicate():
            return
        if serving.done():
            serving.result()
            raise AssertionError(f"{what}: the desk stopped")
        await asyncio.sleep(1.0)
    raise AssertionError(f"{what}: not within {A_WHILE:g} s")


@asynccontextmanager
async def desk_serving(bot: OptionDeskBot) -> AsyncIterator[asyncio.Task[None]]:
    serving = asyncio.create_task(serve(bot, "fake-token"))
    try:
        yield serving
    finally:
        serving.cancel()  # what SIGINT does
        await asyncio.gather(serving, return_exceptions=True)


@ON_VIRTUAL_TIME
@pytest.mark.parametrize("outage", OUTAGES)
async def test_discord_out_of_reach_at_start_the_desk_trades_and_its_messages_arrive_once_discord_answers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture, outage: str
) -> None:
    caplog.set_level(logging.INFO)
    # APScheduler runs on wall time, which looptime does not move: the end-of-day job is tested elsewhere.
    monkeypatch.setattr(desk_bot_module, "schedule_eod", lambda *args: None)
    storage = tmp_path / "storage"
    storage.mkdir()
    with only_loopback_resolves():
        async with fake_discord(monkeypatch) as fake:
            why = OUTAGES[outage](fake, monkeypatch)
            with StorageLock(storage, "python -m bot run (Discord)") as lock:
                loop = asyncio.get_running_loop()
                began = loop.time()
                bot = create_bot(
                    desk_settings(),
                    storage=storage,
                    link_note=lambda text: lock.note(discord=text),
                    clock=lambda: MARKET_OPEN + timedelta(seconds=loop.time() - began),  # wall time, from the open
                )
                async with desk_serving(bot) as serving:
                    # Act: Discord stays out of reach while the desk's strategies trade.
                    await until(
                        lambda: len(ledger_events(storage)) >= 2 and len(attempts(caplog)) >= 6,
                        "trades while Discord is out of reach",
                        serving,
                    )

                    # Assert: one line per attempt, growing apart; the link's state in the lock's note; no post yet.
                    tried = attempts(caplog)
                    assert tried == expected_attempts(why, len(tried))
                    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
                    holder = read_holder(storage)
                    assert holder is not None and holder.discord is not None
                    assert holder.discord.startswith("unreachable since ")
                    assert holder.discord.endswith(f" UTC ({why}), retrying")
                    assert fake.requests_of("create") == []
                    traded = {event.position_id for event in ledger_events(storage)}

                    # Act: Discord answers again.
                    healed = loop.time()
                    fake.clear_faults()
                    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)

                    # Assert: every position traded meanwhile gets its one message; the link says connected.
                    def shown(position_id: str) -> int:
                        messages = fake.channel_messages(CHANNEL_ID)
                        return len([m for m in messages if m.embeds and footer(m).startswith(f"{position_id} ")])

                    await until(lambda: all(shown(pid) == 1 for pid in traded), "the queued messages", serving)
                    await until(lambda: bot.link.text == "connected", "the gateway's READY", serving)
                    holder = read_holder(storage)
                    assert holder is not None and holder.discord == "connected"
                    answered = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Discord answered")]
                    assert answered == [f"Discord answered at attempt {len(attempts(caplog)) + 1}; logged in"]
                    figures = {
                        "outage": outage,
                        "unreachable_s": round(healed - began),
                        "attempts": len(attempts(caplog)),
                        "fills_meanwhile": len(ledger_events(storage)),
                        "positions_shown": len(traded),
                        "shown_within_s": round(loop.time() - healed, 1),
                    }
                    print(json.dumps(figures))
                fake.assert_no_unknown_routes()
    assert bot.desk.ledger._fd is None  # closed with the bot
    assert len({event.position_id for event in ledger_events(storage)}) >= len(traded)


@ON_VIRTUAL_TIME
async def test_a_refused_token_stops_at_once_before_anything_trades(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with fake_discord(monkeypatch) as fake:
        fake.fail_next("me", status=401)
        bot = create_bot(desk_settings(), storage=tmp_path / "storage", clock=lambda: MARKET_OPEN)

        with pytest.raises(discord.LoginFailure):
            await serve(bot, "not-a-token")

        assert len(fake.requests_of("me")) == 1  # never retried
        assert not bot._tasks  # nothing started: no strategy traded on a desk that cannot show its trades
        assert bot.desk.ledger._fd is None and not ledger_events(tmp_path / "storage")


# ---------------------------------------------------------------------------------------------------------------
# The real process: one line and exit 1, or a clean stop; never a traceback, never a hang.


def child_env(url: str, **extra: str) -> dict[str, str]:
    from tests.reliability.test_one_writer import quiet_env

    return quiet_env(
        DISCORD_TOKEN="MTAfake.token.for-the-fake",
        OPTIONDESK_TEST_DISCORD_URL=url,
        OPTIONDESK_DISCORD__GUILD_ID=str(GUILD_ID),
        OPTIONDESK_DISCORD__TRADE_CHANNEL_ID=str(CHANNEL_ID),
        PYTHONPATH=str(CHILD_PATH),
        **extra,
    )


async def bot_process(storage: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--storage",
        str(storage),
        cwd=PROJECT_ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def ended(process: asyncio.subprocess.Process) -> tuple[int, str]:
    try:
        async with asyncio.timeout(PROCESS_BOUND):
            _, err = await process.communicate()
    except TimeoutError:
        process.kill()
        raise AssertionError(f"the bot did not end within {PROCESS_BOUND:g} s") from None
    assert process.returncode is not None
    return process.returncode, err.decode()


def last_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.strip()][-1]


@pytest.mark.parametrize(
    ("refusal", "line"),
    [
        (("me", 401), "optiondesk: Discord refused the token (DISCORD_TOKEN); check it in the developer portal"),
        (
            ("commands", 403),
            "optiondesk: Discord refused the desk's start (403 403: injected); check the bot's invite (scopes bot "
            "and applications.commands) and discord.guild_id",
        ),
    ],
    ids=["401 token", "403 command sync"],
)
async def test_discord_refusing_the_bot_ends_the_process_with_one_line(
    tmp_path: Path, refusal: tuple[str, int], line: str
) -> None:
    async with FakeDiscord() as fake:
        fake.add_guild(GUILD_ID, "Desk")
        fake.add_channel(GUILD_ID, CHANNEL_ID, "trades")
        fake.fail_next(*refusal)
        storage = tmp_path / "storage"

        code, stderr = await ended(await bot_process(storage, child_env(f"http://127.0.0.1:{fake.port}")))

    assert code == 1
    assert last_line(stderr) == line
    assert len(fake.requests_of("me")) == 1
    assert read_holder(storage) is None and not ledger_events(storage)


async def test_sigint_while_discord_is_unreachable_is_a_clean_stop_and_status_says_unreachable(
    tmp_path: Path,
) -> None:
    port = closed_port()
    storage = tmp_path / "storage"
    process = await bot_process(storage, child_env(f"http://127.0.0.1:{port}"))
    assert process.stderr is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(PROCESS_BOUND):
            while len([line for line in seen if ATTEMPT in line]) < 2:  # retried once: the desk is in its backoff
                seen.append((await process.stderr.readline()).decode())
                assert seen[-1], "the bot ended: " + "".join(seen)
        status = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "status",
            "--json",
            "--storage",
            str(storage),
            cwd=PROJECT_ROOT,
            env=child_env(""),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await status.communicate()

        # Act: Ctrl-C, twice.
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGINT)
        code, rest = await ended(process)
    finally:
        if process.returncode is None:
            process.kill()

    stderr = "".join(seen) + rest
    assert code == 0
    assert "Traceback" not in stderr, stderr
    assert f"Discord unreachable (connection refused by 127.0.0.1:{port}); retry 1 in 1 s" in stderr
    assert json.loads(out)["discord"].startswith("unreachable since ")
    assert read_holder(storage) is None


# ---------------------------------------------------------------------------------------------------------------
# A fatal start-up error ends the process within a bound, whatever the path.


def non_daemon_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if not thread.daemon and thread is not threading.main_thread()}


async def test_a_start_that_fails_after_the_state_store_opened_leaves_no_thread_behind(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def strategies_that_cannot_be_built(settings: Settings) -> list[Any]:
        raise SettingsError("bad setting strategies: raised late")

    monkeypatch.setattr(desk_module, "build_strategies", strategies_that_cannot_be_built)
    before = non_daemon_threads()
    bot = create_bot(desk_settings(), storage=tmp_path / "storage")

    with pytest.raises(SettingsError, match="raised late"):
        await serve(bot, "fake-token")

    # aiosqlite's thread (not a daemon) would have kept the process alive after its one line. A closed connection's
    # thread ends a moment after the close returns: it is given that moment, generously.
    for thread in non_daemon_threads() - before:
        thread.join(timeout=30)  # a loaded machine may be slow to end it; a thread never ended fails all the same
    assert non_daemon_threads() == before


def test_a_thread_left_running_does_not_keep_the_process_alive() -> None:
    code = (
        "import threading; from bot.runtime.lifetime import exit_after; "
        "threading.Thread(target=threading.Event().wait, name='stuck').start(); "
        "exit_after(0.5, 3, 'the process')"
    )

    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=PROCESS_BOUND
    )

    assert done.returncode == 3
    assert done.stderr == "optiondesk: the process did not end within 0.5 s; exiting\n"


def test_a_reset_done_late_keeps_the_messages_posted_since_its_time(tmp_path: Path) -> None:
    # Arrange: yesterday's message, and one posted this morning while the reset of 16:15 yesterday was still due
    # (the desk traded while Discord was out of reach, and posted once it answered).
    missed = datetime(2026, 11, 24, 21, 15, tzinfo=UTC)
    message_map = MessageMap(tmp_path / "message_ids.json")
    message_map.set("pos-yesterday", PostedMessage(CHANNEL_ID, 1, "evt-1", "2026-11-24T15:00:00+00:00"))
    message_map.set("pos-today", PostedMessage(CHANNEL_ID, 2, "evt-2", "2026-11-25T14:52:00+00:00"))

    forgotten = reset_messages(message_map, datetime(2026, 11, 25, 15, 0, tzinfo=UTC), "late", posted_before=missed)

    assert forgotten == 1
    assert list(MessageMap(tmp_path / "message_ids.json").messages) == ["pos-today"]
