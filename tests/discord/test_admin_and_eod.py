"""`/reset-messages` and the end-of-day job: the position→message map is forgotten, on trading days only."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.base import STATE_PAUSED
from apscheduler.triggers.cron import CronTrigger
from simcord import assert_error, assert_responded

from bot.discord.rights import NotAllowed
from bot.runtime.eod import EOD_JOB_ID, latest_reset_time, reset_was_missed
from bot.runtime.message_map import MessageMap, PostedMessage
from tests.discord.conftest import NOW, QQQ, Desk, base_settings, fields_of, with_discord

NEW_YORK = ZoneInfo("America/New_York")


def new_york(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


# --- /reset-messages -----------------------------------------------------------------------------------


async def test_reset_messages_by_someone_not_a_desk_admin_is_refused(desk: Desk) -> None:
    # Arrange: a trader who manages the server, so Discord shows the command, but is no desk admin.
    await desk.open(qty=2)
    map_before = desk.message_map_bytes()

    # Act
    result = await desk.server_manager.slash(desk.channel, "reset-messages")

    # Assert
    assert_responded(result, content="Only desk admins may do that.", ephemeral=True)
    assert_error(desk.env, NotAllowed)
    assert desk.message_map_bytes() == map_before
    assert "reset-messages" not in desk.nobody.available_commands(desk.channel)


async def test_reset_messages_by_an_admin_clears_the_map_and_the_next_update_posts_anew(desk: Desk) -> None:
    # Arrange
    desk.quote(QQQ, "2.00", "2.10")
    position = await desk.open(qty=4)
    await desk.open(QQQ, 1)
    first = desk.message_of(position.position_id)

    # Act
    result = await desk.admin.slash(desk.channel, "reset-messages")
    after_reset = desk.message_map()
    await desk.manager.trim(position.position_id, qty=1)
    await desk.deliver()

    # Assert
    assert_responded(result, ephemeral=True, contains="Reset: 2 position message(s) forgotten.")
    assert after_reset.messages == {}
    assert after_reset.reset_at == NOW
    fresh = desk.message_of(position.position_id)
    assert fresh.id != first.id
    assert len(desk.posts()) == 3
    assert desk.edits(first) == []
    assert fields_of(fresh.embeds[0])["Open"] == "3"


# --- the end-of-day job's body -------------------------------------------------------------------------


async def test_end_of_day_on_a_trading_day_resets_the_map(desk: Desk) -> None:
    position = await desk.open(qty=2)
    first = desk.message_of(position.position_id)
    await desk.advance_to(new_york(2026, 11, 25, 16, 15))  # Wednesday

    count = await desk.bot.end_of_day()
    await desk.manager.trim(position.position_id, qty=1)
    await desk.deliver()

    assert count == 1
    assert desk.message_map().reset_at == new_york(2026, 11, 25, 16, 15)
    assert desk.message_of(position.position_id).id != first.id


@pytest.mark.parametrize(
    "day",
    [new_york(2026, 11, 26, 16, 15), new_york(2026, 11, 28, 16, 15)],
    ids=["thanksgiving", "saturday"],
)
async def test_end_of_day_off_a_trading_day_resets_nothing(desk: Desk, day: datetime) -> None:
    await desk.open(qty=2)
    map_before = desk.message_map_bytes()
    await desk.advance_to(day)

    count = await desk.bot.end_of_day()

    assert count == 0
    assert desk.message_map_bytes() == map_before


# --- its wiring ----------------------------------------------------------------------------------------


async def test_the_eod_job_is_a_weekday_cron_at_the_configured_time_and_zone(desk: Desk) -> None:
    scheduler = desk.bot.scheduler
    assert scheduler is not None

    job = scheduler.get_job(EOD_JOB_ID)

    assert job is not None and job.func == desk.bot.end_of_day
    trigger = job.trigger
    assert isinstance(trigger, CronTrigger)
    fields = {f.name: str(f) for f in trigger.fields}
    assert (fields["day_of_week"], fields["hour"], fields["minute"], fields["second"]) == ("mon-fri", "16", "15", "0")
    assert str(trigger.timezone) == "America/New_York"
    assert scheduler.state == STATE_PAUSED  # paused in tests (background off): it never fires on the wall clock here


@pytest.mark.parametrize(
    ("now", "next_run"),
    [
        (new_york(2026, 11, 25, 10, 0), new_york(2026, 11, 25, 16, 15)),  # later today
        (new_york(2026, 11, 25, 16, 15), new_york(2026, 11, 25, 16, 15)),  # right now
        (new_york(2026, 11, 25, 16, 16), new_york(2026, 11, 26, 16, 15)),  # Thanksgiving: fires, resets nothing
        (new_york(2026, 11, 27, 17, 0), new_york(2026, 11, 30, 16, 15)),  # Friday evening: Monday
        (new_york(2026, 3, 6, 17, 0), new_york(2026, 3, 9, 16, 15)),  # across the switch to daylight time
    ],
)
async def test_the_eod_job_next_fire_time(desk: Desk, now: datetime, next_run: datetime) -> None:
    assert desk.bot.scheduler is not None
    trigger = desk.bot.scheduler.get_job(EOD_JOB_ID).trigger

    fire = trigger.get_next_fire_time(None, now)

    assert fire == next_run
    assert fire.utcoffset() == next_run.utcoffset()


async def test_the_eod_job_follows_the_settings(desk: Desk) -> None:
    desk.bot.settings = with_discord(desk.bot.settings, eod_reset_time=time(17, 30)).replace(timezone="America/Chicago")

    await desk.restart()

    assert desk.bot.scheduler is not None
    trigger = desk.bot.scheduler.get_job(EOD_JOB_ID).trigger
    chicago = ZoneInfo("America/Chicago")
    assert trigger.get_next_fire_time(None, NOW) == datetime(2026, 11, 25, 17, 30, tzinfo=chicago)


# --- a reset missed while the bot was down --------------------------------------------------------------


def posted_at(when: datetime) -> PostedMessage:
    return PostedMessage(channel_id=1, message_id=2, event_id="evt-1", posted_at=when.astimezone(UTC).isoformat())


@pytest.mark.parametrize(
    ("posted", "now", "missed"),
    [
        (new_york(2026, 11, 24, 16, 0), new_york(2026, 11, 25, 10, 0), True),  # before Tuesday's reset
        (new_york(2026, 11, 24, 16, 30), new_york(2026, 11, 25, 10, 0), False),  # after it
        (new_york(2026, 11, 25, 16, 0), new_york(2026, 11, 25, 16, 14), False),  # today's is still to come
        (new_york(2026, 11, 25, 16, 0), new_york(2026, 11, 25, 16, 15), True),  # today's is due
        (new_york(2026, 11, 27, 17, 0), new_york(2026, 11, 30, 9, 0), False),  # a weekend in between
        (new_york(2026, 11, 25, 17, 0), new_york(2026, 11, 30, 9, 0), True),  # Friday's was missed
    ],
)
def test_reset_was_missed(tmp_path: Path, posted: datetime, now: datetime, missed: bool) -> None:
    message_map = MessageMap(tmp_path / "message_ids.json")
    message_map.set("pos-1", posted_at(posted))

    assert reset_was_missed(message_map, base_settings(), now) is missed


def test_latest_reset_time_skips_weekends_and_holidays() -> None:
    settings = base_settings()

    assert latest_reset_time(settings, new_york(2026, 11, 30, 9, 0)) == new_york(2026, 11, 27, 16, 15)
    assert latest_reset_time(settings, new_york(2026, 11, 27, 9, 0)) == new_york(2026, 11, 25, 16, 15)


async def test_a_reset_missed_while_down_is_done_at_start_up(desk: Desk) -> None:
    # Arrange: a message posted on Wednesday; the bot is down over Wednesday's 16:15.
    position = await desk.open(qty=2)
    first = desk.message_of(position.position_id)
    await desk.advance_to(new_york(2026, 11, 27, 9, 45))  # Friday morning

    # Act
    await desk.restart()
    after_start = desk.message_map()
    await desk.deliver()
    requests_after_start = len(desk.posts()) + len(desk.edits(first))
    await desk.manager.trim(position.position_id, qty=1)
    await desk.deliver()

    # Assert
    assert after_start.messages == {}
    assert after_start.reset_at == new_york(2026, 11, 27, 9, 45)
    assert requests_after_start == 2  # the first post and Wednesday's P&L summary; nothing re-posted at start
    assert desk.message_of(position.position_id).id != first.id
    assert desk.edits(first) == []
