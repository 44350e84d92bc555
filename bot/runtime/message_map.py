"""`storage/message_ids.json`: which Discord message belongs to which position, written atomically.

Each entry also keeps the last ledger event the message shows, so that after a restart the bot knows
which messages are out of date (and edits them) without keeping a separate outbox. The end-of-day reset
clears the entries and records when it ran.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path

from bot.paths import write_atomically

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PostedMessage:
    channel_id: int
    message_id: int | None  # None: the position's events so far were not to be shown (notify "off")
    event_id: str | None  # the last ledger event the message shows
    posted_at: str  # UTC ISO time of the first post: tells a restart whether an end-of-day reset was missed
    posting: bool = False  # a post was started and its id not yet recorded: it may exist (a crash came between)

    @property
    def posted(self) -> datetime:
        return datetime.fromisoformat(self.posted_at)


_FIELDS = tuple(f.name for f in fields(PostedMessage))


class MessageMap:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: dict[str, PostedMessage] = {}
        self.reset_at: datetime | None = None
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text())
            self.messages = {pid: PostedMessage(**entry) for pid, entry in data.get("messages", {}).items()}
            reset_at = data.get("reset_at")
            self.reset_at = datetime.fromisoformat(reset_at) if reset_at else None
        except (ValueError, TypeError, AttributeError) as error:
            # Losing the map costs a second message per position, never a trade: keep the bad file aside.
            aside = self.path.with_name(f"{self.path.name}.corrupt-{os.getpid()}")
            self.path.replace(aside)
            log.error("message map %s is unreadable (%s); starting empty, kept as %s", self.path, error, aside)
            self.messages, self.reset_at = {}, None

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

    def _save(self) -> None:
        # Rewritten whole at every post and edit: `dataclasses.asdict` (a deep copy) and an indented dump (the slow
        # pure-Python encoder) made a save of 200 positions cost ~10 ms on the event loop under load.
        data = {
            "version": 1,
            "reset_at": self.reset_at.isoformat() if self.reset_at else None,
            "messages": {pid: _entry(posted) for pid, posted in self.messages.items()},
        }
        write_atomically(self.path, json.dumps(data).encode())


def _entry(posted: PostedMessage) -> dict[str, object]:
    return {name: getattr(posted, name) for name in _FIELDS}
