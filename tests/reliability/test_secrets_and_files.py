"""Secrets never leave the environment: with a recognisable Discord token and broker keys set, a session of the bot
(login, trades, commands, a refused command, a settings error, a login Discord refuses) writes none of them to the
logs, stderr, errors, the ledger, any storage file or any message. And every file and directory under storage is
created readable by its owner only, whatever the umask."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import discord
import pytest

from bot import cli
from bot.discord.desk_bot import create_bot
from bot.options.trade_ledger import TradeLedger
from bot.paths import ledger_path
from bot.runtime.resume import STATE_FILE
from bot.settings import discord_token
from tests.core.factories import quote
from tests.discord.conftest import SPY
from tests.discord.wire import (
    CHANNEL_ID,
    GUILD_ID,
    NOBODY_ID,
    ON_VIRTUAL_TIME,
    TRADER_ID,
    DeskClock,
    Wire,
    contract,
    fake_discord,
    settings,
    until_ready,
)
from tests.reliability.checks import open_offline_desk

SECRETS = {
    "DISCORD_TOKEN": "MTAfakeTOKENsecret.Zx9Qw7.never-show-this-token-1234567890",
    "APCA_API_KEY_ID": "PKFAKEKEYID7Q9W2E4R6T8Y",
    "APCA_API_SECRET_KEY": "fakeSECRETkey0aZ9bY8cX7dW6eV5fU4gT3hS2iR1",
}


def leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [name for name, secret in SECRETS.items() if secret.encode() in data]


def storage_files(storage: Path) -> Iterator[Path]:
    for root, _, files in os.walk(storage):
        for name in files:
            yield Path(root) / name


@ON_VIRTUAL_TIME
async def test_no_secret_reaches_logs_errors_ledger_storage_or_messages(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # discord.py's own request logs too
    for name, secret in SECRETS.items():
        monkeypatch.setenv(name, secret)
    token = discord_token()
    assert token is not None and SECRETS["DISCORD_TOKEN"] not in repr(token)
    async with fake_discord(monkeypatch) as fake:
        clock = DeskClock()
        bot = create_bot(settings(), storage=tmp_path / "storage", background=False, clock=clock)
        running = asyncio.create_task(bot.start(token.get_secret_value()))
        try:
            await until_ready(bot, running)
            wire = Wire(fake, bot, bot.storage, clock)
            spy = contract(450)
            wire.quote(spy, "1.00", "1.10")
            position = await bot.desk.manager.open_position(spy, 5, strategy="orb")
            await wire.deliver()
            for user_id in (TRADER_ID, NOBODY_ID):  # a trim, and a refusal
                options = {"position": position.position_id, "qty": 1}
                await (await fake.send_slash(GUILD_ID, CHANNEL_ID, user_id, "trim", options)).response()
        finally:
            await bot.close()
            await running

        # A login Discord refuses, with the same token.
        fake.fail_next("me", status=401)
        refused = create_bot(settings(), storage=tmp_path / "other", background=False)
        with pytest.raises(discord.LoginFailure) as failure:
            await refused.login(token.get_secret_value())
        await refused.close()

        # A settings error while the secrets are set.
        monkeypatch.setenv("OPTIONDESK_MARKET__SEED", "not a number")
        assert cli.main(["positions", "--storage", str(wire.storage)]) == 1

        # Assert: nothing anywhere holds a secret.
        sent = [json.dumps(r.json) for r in fake.requests if r.json is not None]
        shown = [json.dumps([m.content, m.embeds, m.components]) for m in fake.messages.values()]
        captured = capsys.readouterr()
        places = {
            "logs": caplog.text,
            "stdout": captured.out,
            "stderr": captured.err,
            "the login error": str(failure.value),
            "requests sent to Discord": "\n".join(sent),
            "messages": "\n".join(shown),
            "gateway frames": json.dumps(fake.gateway_received),
        }
        places |= {str(path): path.read_bytes() for path in storage_files(tmp_path)}
        assert len(wire.ledger_lines()) == 2  # the session traded: the scan saw real files
        assert {where: leaks(text) for where, text in places.items() if leaks(text)} == {}


@pytest.mark.parametrize("umask", [0o000, 0o022])
async def test_storage_files_and_directories_are_created_owner_only_whatever_the_umask(
    tmp_path: Path, umask: int
) -> None:
    storage = tmp_path / "not" / "there" / "storage"
    previous = os.umask(umask)
    try:
        desk = await open_offline_desk(storage)
        desk.quotes.update(SPY.symbol, quote("1.00", "1.10"))
        position = await desk.manager.open_position(SPY, 5, strategy="orb")
        await desk.manager.trim(position.position_id, qty=1)
        await desk.notifier.flush()  # message_ids.json (through a temp file)
        open_files = list(storage_files(storage))  # the state store's -wal and -shm exist while it is open
        await desk.close()
        with ledger_path(storage).open("ab") as ledger:
            ledger.write(b'{"torn')  # a crash mid-line: the next open keeps the bytes in a side file
        TradeLedger.open(ledger_path(storage)).close()
        (storage / STATE_FILE).write_bytes(b"garbage")  # set aside as corrupt at the next start
        await (await open_offline_desk(storage)).close()
    finally:
        os.umask(previous)

    files = [*open_files, *storage_files(storage)]
    names = {p.name for p in files}
    assert {"trade_events.jsonl", "message_ids.json", STATE_FILE, f"{STATE_FILE}-wal", f"{STATE_FILE}-shm"} <= names
    assert [n for n in names if ".torn-" in n] and [n for n in names if ".corrupt-" in n]
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in files if p.exists()}
    assert {str(p.relative_to(tmp_path)): oct(mode) for p, mode in modes.items() if mode & 0o077} == {}
    for directory in (tmp_path / "not", tmp_path / "not" / "there", storage, storage / "options"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
