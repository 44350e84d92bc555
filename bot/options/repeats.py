"""What was said last of each thing (a position, a position and a side), so that a line repeated at every quote is
said once: a halted desk refuses an exit rule that fires again at each mark, and the operator reads it once, then
again when what is said changes or after it stopped (`forget`)."""

from collections.abc import Hashable


class Repeats:
    def __init__(self) -> None:
        self._last: dict[Hashable, object] = {}

    def again(self, key: Hashable, said: object) -> bool:
        """Whether `said` is what was said last of `key`; it is from now on."""
        repeated = self._last.get(key) == said
        self._last[key] = said
        return repeated

    def forget(self, key: Hashable) -> None:
        """`key`'s next line is said, whatever it is (what repeated has stopped)."""
        self._last.pop(key, None)
