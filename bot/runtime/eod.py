"""The end-of-day reset: at the configured time on trading days, the position→message map is cleared,
so each open position gets a fresh message on its next update the next day.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.options.market_hours import is_trading_day
from bot.runtime.message_map import MessageMap
from bot.settings import Settings

log = logging.getLogger(__name__)

EOD_JOB_ID = "eod-reset"


def eod_trigger(settings: Settings) -> CronTrigger:
    at = settings.discord.eod_reset_time
    return CronTrigger(day_of_week="mon-fri", hour=at.hour, minute=at.minute, timezone=settings.zone)


def latest_reset_time(settings: Settings, now: datetime) -> datetime | None:
    """When the reset should last have run at or before `now` (trading days only)."""
    local = now.astimezone(settings.zone)
    for days_back in range(10):
        day = local.date() - timedelta(days=days_back)
        if is_trading_day(day):
            at = datetime.combine(day, settings.discord.eod_reset_time, tzinfo=settings.zone)
            if at <= now:
                return at
    return None


def reset_was_missed(message_map: MessageMap, settings: Settings, now: datetime) -> bool:
    """A message posted before the latest reset time is still mapped: the bot was down at that time."""
    latest = latest_reset_time(settings, now)
    return latest is not None and any(posted.posted < latest for posted in message_map.messages.values())


def reset_messages(message_map: MessageMap, now: datetime, why: str, *, posted_before: datetime | None = None) -> int:
    """Forget the positions' messages, or with `posted_before` only those posted before it (a reset done late keeps
    the messages posted after its time: they belong to the new day); returns how many were forgotten."""
    kept = {
        pid: p for pid, p in message_map.messages.items() if posted_before is not None and p.posted >= posted_before
    }
    count = message_map.reset(now) - len(kept)
    for position_id, posted in kept.items():
        message_map.set(position_id, posted)
    log.info("message map reset (%s): %d position messages forgotten", why, count)
    return count


def schedule_eod(scheduler: AsyncIOScheduler, settings: Settings, job: object) -> None:
    scheduler.add_job(
        job,
        eod_trigger(settings),
        id=EOD_JOB_ID,
        replace_existing=True,
        coalesce=True,
        misfire_grace_time=3600,
    )
