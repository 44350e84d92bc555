"""`storage/message_ids.json`: which Discord message belongs to which position, written atomically.

Each entry also keeps the last ledger event the message shows, so that after a restart the bot knows
which messages are out of date (and edits them) without keeping a separate outbox. The end-of-day reset
clears the entries and records when it ran.

Losing the map costs a second message per position, never a trade: content it cannot use is set aside and
the desk starts with an empty map, and a save that fails (a full disk) is one warning while the map lives
on in memory. Only a map the desk can never read or replace (a directory, a file it may not write) stops
the start, as the operator has to fix that.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from bot.options.json_values import (
    REQUIRED,
    Unreadable,
    aware_time,
    boolean,
    or_none,
    parse_json,
    read_object,
    text,
    whole,
)
from bot.paths import StorageError, write_atomically

if TYPE_CHECKING:
    from bot.options.trade_ledger import TradeEvent

# Loggers are taken where a rare path warns (`import logging` there): `status` imports this module, and logging takes
# some 8 ms to load.

MESSAGE_FILE = "message_ids.json"  # in the storage folder


# A NamedTuple, not a frozen dataclass: `status` imports this module, and a dataclass takes Python 3.11 ~1.5 ms to make.
class PostedMessage(NamedTuple):
    channel_id: int
    message_id: int | None  # None: the position's events so far were not to be shown (notify "off")
    event_id: str | None  # the last ledger event the message shows
    posted_at: str  # UTC ISO time of the first post: tells a restart whether an end-of-day reset was missed
    posting: bool = False  # a post was started and its id not yet recorded: it may exist (a crash came between)

    @property
    def posted(self) -> datetime:
        return datetime.fromisoformat(self.posted_at)


def _posted_at(value: object) -> str:
    return aware_time(value).isoformat()  # compared with the reset times, which are aware


_FILE = (("version", whole, 1), ("reset_at", or_none(aware_time), None))
_ENTRY = (
    ("channel_id", whole, REQUIRED),
    ("message_id", or_none(whole), REQUIRED),
    ("event_id", or_none(text), REQUIRED),
    ("posted_at", _posted_at, REQUIRED),
    ("posting", boolean, False),
)


def _read(data: bytes) -> tuple[datetime | None, dict[str, PostedMessage]]:
    """The reset time and the messages the file holds; raises Unreadable naming where it is wrong."""
    stored = parse_json(data)
    _, reset_at = read_object(stored, _FILE)
    entries = stored.get("messages", {})
    if type(entries) is not dict:
        raise Unreadable("messages", "not a JSON object")
    messages = {pid: PostedMessage(*read_object(entry, _ENTRY, f"messages.{pid}")) for pid, entry in entries.items()}
    return reset_at, messages


class MessageMap:
    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        """`read_only`: for a command that writes nothing: the file is read as it is (no check that it could be
        replaced, nothing set aside); one that cannot be read raises OSError or ValueError. No file: an empty map."""
        self.path = path
        # Each save synced. A backtest's map, which no restart reads, is not: it is saved once, at the close (`flush`);
        # rewritten whole at each of a year's fills, it cost a tenth of the run.
        self.durable = True
        self._held = False  # changed since the last save, held back until `flush` (a map that is not durable)
        self.messages: dict[str, PostedMessage] = {}
        self.reset_at: datetime | None = None
        self._unsaved = False  # the last save failed: said once, until a save goes through again
        if not read_only:
            self._load()
        elif path.exists():
            self.reset_at, self.messages = _read(path.read_bytes())

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
            # A save replaces the file by a rename: a file the desk may not write cannot be replaced either
            # when the folder or the file is read-only or immutable. Opened, not written.
            os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND))
        except FileNotFoundError:
            return
        except IsADirectoryError:
            raise StorageError(
                f"the message map {self.path} is a directory, not a file: move it away and start again "
                "(the desk then posts a new message per position)"
            ) from None
        except OSError as error:
            raise StorageError(
                f"the message map {self.path} cannot be used ({error.strerror or error}): make it readable and "
                "writable by this user, or move it away and start again"
            ) from None
        try:
            self.reset_at, self.messages = _read(data)
        except Unreadable as error:
            where = error.where or "the file"
            aside = self.path.with_name(f"{self.path.name}.corrupt-{os.getpid()}")
            try:
                self.path.replace(aside)
            except OSError as moving:
                raise StorageError(
                    f"the message map {self.path} is unreadable ({where}: {error.what}) and cannot be set "
                    f"aside ({moving.strerror}): move it away and start again"
                ) from None
            import logging

            logging.getLogger(__name__).warning(
                "message map %s is unreadable (%s: %s); kept as %s, and the desk starts with an empty map "
                "(each position gets a new message)",
                self.path,
                where,
                error.what,
                aside,
            )

    def get(self, position_id: str) -> PostedMessage | None:
        return self.messages.get(position_id)

    def set(self, position_id: str, posted: PostedMessage) -> None:
        self.messages[position_id] = posted
        self._save()

    def reset(self, now: datetime) -> int:
        """Forget every message (the next update of a position posts a fresh one); returns how many."""
        count = len(self.messages)
        self.messages = {}
        self.reset_at = now
        self._save()
        return count

    def flush(self) -> None:
        """Save what a map that is not durable held back."""
        if self._held:
            self._held = False
            self._write()

    def _save(self) -> None:
        if not self.durable:
            self._held = True
            return
        self._write()

    def _write(self) -> None:
        # Rewritten whole at every post and edit: an indented dump (the slow pure-Python encoder) made a save of 200
        # positions cost ~10 ms on the event loop under load.
        data = {
            "version": 1,
            "reset_at": self.reset_at.isoformat() if self.reset_at else None,
            "messages": {pid: posted._asdict() for pid, posted in self.messages.items()},
        }
        try:
            write_atomically(self.path, json.dumps(data).encode(), durable=self.durable)
        except OSError as error:
            # The message was shown and the map lives on in memory; the next save that goes through writes
            # it whole. Only a crash before then costs a second message per position.
            if not self._unsaved:
                import logging

                logging.getLogger(__name__).warning(
                    "could not save the message map: %s; trading goes on, and the map is saved at the next "
                    "update that can write it",
                    error,
                )
            self._unsaved = True
            return
        if self._unsaved:
            import logging

            logging.getLogger(__name__).info("message map %s saved again", self.path)
            self._unsaved = False


def out_of_date(events: list[TradeEvent], message_map: MessageMap, since: datetime | None = None) -> dict[str, str]:
    """Positions whose message does not show their last event, with that event: a restart's backlog.

    Only events after the last reset count, and after `since` (the latest end-of-day reset time): an
    earlier day's positions get no message now, even when the map was never reset (a first start on a
    ledger with history, or a lost map).
    """
    floors = [t for t in (message_map.reset_at, since) if t is not None]
    floor = max(floors) if floors else None
    last_event: dict[str, str] = {}
    for event in events:
        if floor is None or event.ts > floor:
            last_event[event.position_id] = event.event_id
    return {
        position_id: event_id
        for position_id, event_id in last_event.items()
        if (posted := message_map.get(position_id)) is None or posted.event_id != event_id or posted.posting
    }
