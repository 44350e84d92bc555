"""Reading the JSON files the desk keeps (the trade ledger's lines, the message map) with the standard library:
each field through a small reader that returns its value or raises ValueError saying what is wrong with it, and
`read_object` naming the first wrong field. A command that only reads these files starts without a validation library.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

Reader = Callable[[Any], Any]
REQUIRED = object()  # as a field's default: the object must hold it

# A JSON number with a fraction is read as the exact Decimal its digits say, never through a float; one past a
# float's range (1E400) is refused as no finite number, as before.
_DECODER = json.JSONDecoder(parse_float=Decimal)
_LARGEST = Decimal(sys.float_info.max)

_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")  # an escaped half of a surrogate pair, perhaps alone

# The shapes of ISO 8601 read before (pydantic's): Python reads more (20250602T1430Z, week dates, an offset of +01),
# which no desk writes and an earlier desk refused. A lower-case z is UTC, as it was.
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_DATE_SHAPE = re.compile(_DATE)
_CLOCK = r"[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?"
_TIME_SHAPE = re.compile(_DATE + r"[Tt _]" + _CLOCK + r"(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})?")


class Unreadable(ValueError):
    """Where a JSON document is wrong (its keys joined by dots; empty for the document itself), and how."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: {what}" if where else what)
        self.where = where
        self.what = what


def parse_json(data: bytes) -> Any:
    """The JSON value of UTF-8 `data`, its fractions as Decimals; raises Unreadable for anything else."""
    try:
        value = _DECODER.decode(data.decode())
    except (ValueError, RecursionError) as error:  # not UTF-8, not JSON, nested too deep
        if not data.strip():
            raise Unreadable("", "not JSON: empty") from None
        if data.startswith(b"\xef\xbb\xbf"):
            raise Unreadable("", "not JSON: it begins with a byte order mark (an editor's U+FEFF); remove it") from None
        raise Unreadable("", f"not JSON: {error}") from None
    if b"\\u" in data and _SURROGATE.search(data) and not _unicode(value):
        # \ud800 alone: Python's json takes it, but no UTF-8 file can hold the text, so it could not be written again.
        raise Unreadable("", "not JSON: a \\u escape of half a character (a lone surrogate)")
    return value


def _unicode(value: Any) -> bool:
    """Whether every text in `value` is Unicode that UTF-8 can encode."""
    if type(value) is str:
        return value.isascii() or not any("\ud800" <= char <= "\udfff" for char in value)
    if type(value) is dict:
        return all(_unicode(key) and _unicode(each) for key, each in value.items())
    if type(value) is list:
        return all(map(_unicode, value))
    return True


def read_object(value: Any, fields: Iterable[tuple[str, Reader, object]], where: str = "") -> list[Any]:
    """The values of the named fields of the JSON object `value`, in the order of `fields`, each through its reader
    (a field left out takes its default); other keys are ignored, so that a later version may add some. Raises
    Unreadable naming the first wrong field. A list, for a positional call: keyword arguments named by the keys of a
    parsed object (not interned) are matched by comparing strings, which took a third of reading a ledger line."""
    if type(value) is not dict:
        raise Unreadable(where, "not a JSON object")
    values = []
    for name, read, default in fields:
        item = value.get(name, default)
        if item is REQUIRED:
            raise Unreadable(f"{where}.{name}" if where else name, "missing")
        try:
            values.append(read(item))
        except ValueError as error:
            raise Unreadable(f"{where}.{name}" if where else name, str(error)) from None
    return values


# The readers.


def text(value: Any) -> str:
    if type(value) is str:
        return value
    raise ValueError("not a string")


def non_empty(value: Any) -> str:
    if type(value) is str and value:
        return value
    raise ValueError("not a string" if type(value) is not str else "empty")


def boolean(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise ValueError("not true or false")


def whole(value: Any) -> int:
    # A bool is a JSON true or false, not a number; 10.0 (a JSON number, read as a Decimal) is whole.
    if type(value) is int:
        return value
    if type(value) is Decimal and value.is_finite() and value == value.to_integral_value():
        if abs(value) > _LARGEST:
            raise ValueError("not a finite number")
        return int(value)
    raise ValueError("not a whole number")


def positive(value: Any) -> int:
    number = whole(value)
    if number > 0:
        return number
    raise ValueError("not above 0")


def not_negative(value: Any) -> int:
    number = whole(value)
    if number >= 0:
        return number
    raise ValueError("below 0")


def decimal(value: Any) -> Decimal:
    """A finite decimal, from a string (as the desk writes amounts) or a JSON number."""
    if type(value) is str or type(value) is int or type(value) is Decimal:
        try:
            amount = Decimal(value)
        except ArithmeticError:
            raise ValueError("not a decimal number") from None
        if amount.is_finite() and (type(value) is not Decimal or abs(amount) <= _LARGEST):
            return amount
        raise ValueError("not a finite number")
    raise ValueError("not a decimal number (a string or a number)")


def aware_time(value: Any) -> datetime:
    """An ISO 8601 time with its offset from UTC: one without is refused, as its moment is not known."""
    if type(value) is str and _TIME_SHAPE.fullmatch(value):
        try:
            ts = datetime.fromisoformat(value if value[-1] != "z" else value[:-1] + "Z")
        except ValueError:
            raise ValueError("not an ISO 8601 time") from None
        if ts.utcoffset() is not None:
            return ts
        raise ValueError("a time without its time zone")
    raise ValueError("not an ISO 8601 time")


def iso_date(value: Any) -> date:
    if type(value) is str and _DATE_SHAPE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("not an ISO 8601 date")


def one_of(values: Iterable[Any]) -> Reader:
    """A reader of one of `values` (str enums, or strings) written as its text."""
    members: dict[str, Any] = {str(value): value for value in values}
    wanted = "not one of " + ", ".join(members)

    def read(value: Any) -> Any:
        try:
            return members[value]
        except (KeyError, TypeError):  # TypeError: a list or an object, which cannot be looked up
            raise ValueError(wanted) from None

    return read


def or_none(read: Reader) -> Reader:
    def optional(value: Any) -> Any:
        return None if value is None else read(value)

    return optional
