"""One message per position per day, on a message board: a Discord channel, or the terminal offline.

The sink finds a position's message through the message map (so a restart edits instead of posting
again), posts anew if the message was deleted, and follows the per-kind noise setting: notify, silent
(no push notification) or off (no update for that kind of event). Before a post it records the intent,
so that a crash between the post and the map write is found again after a restart, never posted twice.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol, TextIO

from bot import crash
from bot.options.positions import ActionKind
from bot.render.position_view import PositionView, render_text
from bot.runtime.message_map import MessageMap, PostedMessage
from bot.settings import Notify

log = logging.getLogger(__name__)

# How much earlier than the recorded intent Discord may date the post (clocks differ a little).
CLOCK_SKEW = timedelta(minutes=1)


class MessageGone(Exception):
    """The position's message no longer exists (a moderator deleted it)."""


class Board(Protocol):
    @property
    def channel_id(self) -> int: ...

    async def post(self, view: PositionView, *, silent: bool) -> int:
        """Post a new message showing `view`; return its id."""
        ...

    async def edit(self, message_id: int, view: PositionView) -> None:
        """Make the message show `view`; raise MessageGone if it was deleted."""
        ...

    async def find(self, position_id: str, since: datetime) -> int | None:
        """The id of a message posted for the position at or after `since`, if any (after an interrupted post)."""
        ...


class BoardSink:
    """The message sink over a board. Noise settings are read at each delivery, so a change counts at once."""

    def __init__(
        self,
        board: Board,
        message_map: MessageMap,
        notify: Callable[[], dict[ActionKind, Notify]],
        clock: Callable[[], datetime],
    ) -> None:
        self._board = board
        self._clock = clock
        self._map = message_map
        self._notify = notify

    async def show(self, view: PositionView) -> None:
        position_id = view.position.position_id
        posted = self._map.get(position_id)
        if posted is not None and posted.event_id == view.event_id and not view.status_note and not posted.posting:
            return  # already shows this state (a restart found it delivered after all)
        last = view.last_action
        mode = self._notify().get(last.kind, "notify") if last else "notify"
        now = self._clock().isoformat()  # the desk's clock: the one its resets are stamped on
        # An order note comes without an event when the message already shows the position's last one.
        shown = view.event_id or (posted.event_id if posted else None)
        if mode == "off" and not view.status_note:
            # Nothing to show for this kind of event; remember it as handled so a restart does not post it.
            handled = posted._replace(event_id=shown) if posted else None
            self._map.set(position_id, handled or PostedMessage(self._board.channel_id, None, shown, now))
            return
        message_id = posted.message_id if posted else None
        if posted is not None and posted.posting:
            message_id = await self._board.find(position_id, self._posted_since(posted))
        crash.crash_point("before-message")
        if message_id is not None:
            try:
                await self._board.edit(message_id, view)
            except MessageGone:
                log.info("the message of position %s was deleted; posting a new one", position_id)
            else:
                assert posted is not None
                self._map.set(position_id, posted._replace(message_id=message_id, event_id=shown, posting=False))
                return
        self._map.set(position_id, PostedMessage(self._board.channel_id, None, shown, now, posting=True))
        message_id = await self._board.post(view, silent=mode == "silent")
        crash.crash_point("after-post")
        self._map.set(position_id, PostedMessage(self._board.channel_id, message_id, shown, now))

    def _posted_since(self, posting: PostedMessage) -> datetime:
        """Since when the interrupted post's message may exist: an earlier day's message of the same position
        (from before the last reset) must not be taken for it, or the position gets no fresh message that day."""
        since = posting.posted - CLOCK_SKEW
        reset_at = self._map.reset_at
        return max(since, reset_at) if reset_at is not None else since


class ConsoleBoard:
    """The terminal as a message board: each post or edit prints the message with what the embed holds.

    A position's message id is derived from its id, so an interrupted post is found again by itself.
    """

    channel_id = 0

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self._unread = False  # the terminal's reader went away

    @staticmethod
    def message_id(position_id: str) -> int:
        return int(hashlib.sha256(position_id.encode()).hexdigest()[:12], 16)

    async def post(self, view: PositionView, *, silent: bool) -> int:
        message_id = self.message_id(view.position.position_id)
        self._print(f"[message {message_id} posted]", view)
        return message_id

    async def edit(self, message_id: int, view: PositionView) -> None:
        self._print(f"[message {message_id} edited]", view)

    async def find(self, position_id: str, since: datetime) -> int | None:
        return self.message_id(position_id)

    def _print(self, head: str, view: PositionView) -> None:
        if self._unread:
            return
        try:
            print(head, render_text(view), sep="\n", file=self._out or sys.stdout, flush=True)
        except OSError as error:
            # `python -m bot demo | head` (the reader went away), `> /dev/full` (no room): no message can be shown
            # again, and retrying each one would say so at every fill. The desk trades on; the messages go where a
            # closed terminal's go.
            self._unread = True
            why = "its reader went away" if isinstance(error, BrokenPipeError) else error.strerror or error
            log.warning("the terminal cannot be written (%s): position messages are no longer printed", why)
