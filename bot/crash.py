"""Named crash points for the crash tests.

`OPTIONDESK_CRASH_AT=<point>[:<n>]` makes the process kill itself with SIGKILL the n-th time (default the
first) it reaches that point, so a test can hit every point of a fill's lifecycle deterministically.
Unset, a crash point costs one comparison.
"""

from __future__ import annotations

import os

POINTS = (
    "state-mid-write",  # an order's intent written to the state store, not committed: the order is not sent yet
    "fill-before-ledger",  # the executor filled; nothing is written yet
    "ledger-mid-write",  # half of the ledger line is on disk
    "after-ledger",  # the line is durable; Discord knows nothing yet
    "before-message",  # about to post or edit the position's message
    "after-post",  # the message is posted; the message map does not know it yet
)

_point, _, _nth = (os.environ.get("OPTIONDESK_CRASH_AT") or "").partition(":")
_remaining = int(_nth or 1)


def armed(name: str) -> bool:
    """True when reaching `name` now will crash (lets a point do half of its work first)."""
    return name == _point and _remaining == 1


def crash_point(name: str) -> None:
    global _remaining
    if name != _point:
        return
    _remaining -= 1
    if _remaining == 0:
        import signal  # only a process that crashes needs it: every command imports this module, through the ledger

        os.kill(os.getpid(), signal.SIGKILL)
