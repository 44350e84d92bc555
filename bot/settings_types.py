"""The value types of the settings: each value means one thing, from the TOML file or the environment alike.

A boolean is never taken for a number nor a number for a boolean (TOML's `true` is not 1); numbers are finite
and in the range of what they control, and a refusal names that range; `false` is the one spelling of "off"
for a limit or a rule. The environment holds text only, so its `true`, `false` and numbers are read as words.
"""

import math
import re
from datetime import time
from decimal import Decimal
from typing import Annotated, TypeVar

from bot.settings_check import After, Before

N = TypeVar("N", int, float, Decimal)


def _word(value: object) -> str | None:
    return value.strip().lower() if isinstance(value, str) else None


def _flag(value: object) -> object:
    if isinstance(value, bool):
        return value
    if _word(value) in ("true", "false"):
        return _word(value) == "true"
    raise ValueError("expected true or false")


def _number(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("expected a number, not true or false")
    return value


# Words an operator may write for "off" that mean nothing here: refused rather than guessed at.
_NOT_OFF = ("true", "off", "no", "none", "null", "disabled", "never")


def _off(value: object) -> object:
    if value is False or _word(value) == "false":
        return None
    if value is True or _word(value) in _NOT_OFF:
        raise ValueError(f"expected a value, or false to switch it off, not {str(value).strip().lower()}")
    return value


def _off_mode(value: object) -> object:
    # A setting whose modes include "off" takes `false` for it too, as every rule does.
    return "off" if value is False or _word(value) == "false" else value


def _clock_text(value: object) -> object:
    # A number is no time of day (read as seconds after midnight, 900 would quietly be 00:15).
    if isinstance(value, bool | int | float | Decimal):
        raise ValueError(f'expected a time of day such as "15:00", not {str(value).lower()}')
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"\d{1,2}:\d\d(:\d\d)?", text):
            raise ValueError(f'expected a time of day such as "15:00" (HH:MM), not {text!r}')
        return f"0{text}" if text.index(":") == 1 else text  # "9:45" as people write it
    return value


def _local(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError('expected a New York time of day without an offset, such as "15:00"')
    return value


def _shown(value: float | Decimal) -> str:
    return f"{value.normalize():f}" if isinstance(value, Decimal) and value.is_finite() else str(value)


def within(
    low: int | None = None, high: int | None = None, *, above: bool = False, unit: str = "", off: bool = False
) -> After:
    """A finite number from `low` to `high` (above `low` with `above`); a refusal names the range."""
    if low is not None and high is not None:
        wanted = f"above {low} and at most {high}" if above else f"from {low} to {high}"
    elif low is not None:
        wanted = f"above {low}" if above else f"of {low} or more"
    else:
        wanted = f"of at most {high}"
    wanted = f"a number {wanted}{f' {unit}' if unit else ''}{', or false to switch it off' if off else ''}"

    def check(value: N) -> N:
        finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
        if (
            not finite
            or (low is not None and (value <= low if above else value < low))
            or (high is not None and value > high)
        ):
            raise ValueError(f"expected {wanted}, not {_shown(value)}")
        return value

    return After(check)


Flag = Annotated[bool, Before(_flag)]
Int = Annotated[int, Before(_number)]
Real = Annotated[float, Before(_number)]
# Infinity and NaN get as far as `within`, which refuses them with the range.
Dec = Annotated[Decimal, Before(_number)]
ClockTime = Annotated[time, Before(_clock_text), After(_local)]

# Put on `X | None`: a limit or rule that `false` switches off (None).
OFF = Before(_off)
# Put on a choice of words that includes "off": `false` is read as "off".
OFF_MODE = Before(_off_mode)
Percent = Annotated[Dec, within(0, 100, above=True)]
PercentOrOff = Annotated[Annotated[Dec, within(0, 100, above=True, off=True)] | None, OFF]
