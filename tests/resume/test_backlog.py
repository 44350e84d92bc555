"""`python -m bot status`'s Discord backlog comes from the files a restart delivers from: the ledger and the message
map (each position whose message does not show its last event since the last reset), read without writing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli.desk_state import status_command
from bot.runtime.message_map import MESSAGE_FILE
from bot.runtime.state_file import STATE_FILE
from bot.settings import Settings
from tests.core.factories import quote
from tests.discord.conftest import QQQ, SPY
from tests.reliability.checks import open_offline_desk


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def status(capsys: pytest.CaptureFixture[str], storage: Path, *, as_json: bool) -> tuple[str, str]:
    """What `status` prints: its output and its warnings."""
    capsys.readouterr()
    assert status_command(Settings(), storage, as_json=as_json) == 0
    shown = capsys.readouterr()
    return shown.out, shown.err


async def traded(storage: Path) -> None:
    """Two positions shown on their messages, then a trim of one not shown yet."""
    desk = await open_offline_desk(storage)
    try:
        desk.quotes.update(SPY.symbol, quote("1.00", "1.10", size=100))
        desk.quotes.update(QQQ.symbol, quote("2.00", "2.10", size=100))
        spy = await desk.manager.open_position(SPY, 4, strategy="orb")
        await desk.manager.open_position(QQQ, 2, strategy="mr")
        await desk.notifier.flush()
        await desk.manager.trim(spy.position_id, qty=1)
    finally:
        await desk.close()


async def test_status_counts_the_messages_not_yet_delivered_from_the_ledger_and_the_message_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await traded(tmp_path)
    for suffix in ("", "-wal", "-shm"):  # the state store plays no part
        (tmp_path / f"{STATE_FILE}{suffix}").unlink(missing_ok=True)
    before = files(tmp_path)

    shown = json.loads(status(capsys, tmp_path, as_json=True)[0])

    assert shown["discord_backlog"] == 1  # the trim
    assert files(tmp_path) == before  # nothing written, nothing created


async def test_a_message_map_that_cannot_be_read_makes_the_backlog_unknown_and_is_left_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await traded(tmp_path)
    (tmp_path / MESSAGE_FILE).write_text("{not json")
    before = files(tmp_path)

    text, warned = status(capsys, tmp_path, as_json=False)

    assert "Discord backlog: unknown (the message map cannot be read)" in text
    [line] = warned.splitlines()
    assert line.startswith("optiondesk: warning: message map ") and "backlog is unknown" in line
    assert str(tmp_path / MESSAGE_FILE) in line
    assert files(tmp_path) == before  # not set aside: a command that reads writes nothing
