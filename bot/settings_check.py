"""How the raw settings (TOML, the environment's text, a backtest's `--set`) become the typed sections of
bot/settings.py, each refusal naming the setting.

The sections derive from `Section`: their annotations say what each value is, with the checks of
bot/settings_types.py attached through `Annotated`, and a section reads its values so when it is made, from a file
or by `Settings(...)` in code alike. Type checkers read a section as a frozen, keyword-only dataclass
(`dataclass_transform`).

Every command reads the settings at start, so this must cost little to import and to define sections with: a
validation library (pydantic: some 100 ms) or a dataclass per section (Python 3.11 compiles each one's methods,
1.3 ms a section) cost the read-only commands more than all the rest of their start, against a bare interpreter's
35 ms.
"""

import re
import types
from collections.abc import Callable
from datetime import time
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import (
    Annotated,
    Any,
    ClassVar,
    Literal,
    NamedTuple,
    Self,
    Union,
    dataclass_transform,
    get_args,
    get_origin,
)

Loc = tuple[str | int, ...]


class Refused(ValueError):
    """A value the settings cannot take: `loc` is where (risk.max_daily_loss is ("risk", "max_daily_loss")).

    A section's `__post_init__` raises it with the loc of the value it refuses, relative to the section; a plain
    ValueError there refuses the section as a whole."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message

    @property
    def setting(self) -> str:
        return ".".join(map(str, self.loc))


class Before(NamedTuple):
    """Runs on the raw value, before it is read as its type: reads words (true, false, 15:00) and refuses what the
    type would take for something else (`true` for 1)."""

    read: Callable[[Any], Any]


class After(NamedTuple):
    """Runs on the typed value: a range, or what the type alone cannot say; raises ValueError with the message."""

    check: Callable[[Any], Any]


class Text(NamedTuple):
    """A text's length."""

    min_length: int = 0
    max_length: int | None = None


_REQUIRED: Any = object()


class Field(NamedTuple):
    name: str
    type: Any
    default: Any = _REQUIRED
    default_factory: Callable[[], Any] | None = None

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED and self.default_factory is None

    def fresh_default(self) -> Any:
        return self.default_factory() if self.default_factory is not None else self.default


def setting(*, default_factory: Callable[[], Any]) -> Any:
    """A setting whose default is made anew for each section: a list, a table, a section."""
    return Field("", None, default_factory=default_factory)


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(setting,))
class Section:
    """The base of the settings' sections: annotated values, given by keyword, read as their annotations say when
    the section is made, and frozen. The annotations must be types, not text (no annotations from __future__). A
    section refuses what its values' types alone cannot say in `__post_init__`, which runs once they are set."""

    fields: ClassVar[dict[str, Field]] = {}

    def __init_subclass__(cls) -> None:
        fields = dict(cls.fields)  # a base's first, in their order
        for name, annotation in cls.__annotations__.items():  # this class's own
            if get_origin(annotation) is not ClassVar:
                default = cls.__dict__.get(name, _REQUIRED)
                if isinstance(default, Field):
                    fields[name] = default._replace(name=name, type=annotation)
                else:
                    fields[name] = Field(name, annotation, default)
        cls.fields = fields

    def __init__(self, **values: Any) -> None:
        if unknown := values.keys() - self.fields.keys():
            raise TypeError(f"{type(self).__name__} has no setting {', '.join(sorted(unknown))}")
        for name, field in self.fields.items():
            if name in values:
                value = check(field.type, values[name], (name,))
            elif field.required:
                raise Refused((name,), "required, and not given")
            else:
                value = field.fresh_default()
            object.__setattr__(self, name, value)
        self.__post_init__()

    def __post_init__(self) -> None:
        """What the section refuses beyond its values' types: raises Refused or ValueError."""

    def replace(self, **changes: Any) -> Self:
        """This section with some values changed (and read again)."""
        return type(self)(**({name: getattr(self, name) for name in self.fields} | changes))

    def as_dict(self) -> dict[str, Any]:
        """The values as plain data (sections as dicts, at any depth), which `check` takes back."""
        return {name: _plain(getattr(self, name)) for name in self.fields}

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"settings are frozen: make changed ones with .replace({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("settings are frozen")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.fields)
        return f"{type(self).__name__}({shown})"

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.fields)


def _plain(value: Any) -> Any:
    if isinstance(value, Section):
        return value.as_dict()
    if isinstance(value, list | tuple):
        return type(value)(_plain(each) for each in value)
    if isinstance(value, dict):
        return {key: _plain(each) for key, each in value.items()}
    return value


def check(annotation: Any, value: Any, loc: Loc = ()) -> Any:
    """`value` read as `annotation`; raises Refused."""
    try:
        return _read(annotation, value, loc)
    except Refused:
        raise
    except ValueError as error:
        raise Refused(loc, str(error)) from None


def is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Section)


def _read(annotation: Any, value: Any, loc: Loc) -> Any:
    origin = get_origin(annotation)
    if origin is Annotated:
        kind, *marks = get_args(annotation)
        for mark in marks:
            if isinstance(mark, Before):
                value = mark.read(value)
        value = check(kind, value, loc)
        for mark in marks:
            if isinstance(mark, After):
                value = mark.check(value)
            elif isinstance(mark, Text):
                _text(mark, value)
        return value
    if origin is Union or origin is types.UnionType:
        return _either(get_args(annotation), value, loc)
    if origin is Literal:
        choices = get_args(annotation)
        if value not in choices or isinstance(value, bool):
            raise ValueError(f"expected {_words(choices)}, not {_shown(value)}")
        return value
    if origin is list:
        (item,) = get_args(annotation)
        return [check(item, each, (*loc, i)) for i, each in enumerate(_sequence(value, "a list"))]
    if origin is tuple:
        items = get_args(annotation)
        values = _sequence(value, f"a list of {len(items)}")
        if len(values) != len(items):
            raise ValueError(f"expected a list of {len(items)}, not {len(values)}")
        return tuple(check(item, each, (*loc, i)) for i, (item, each) in enumerate(zip(items, values, strict=True)))
    if origin is dict:
        key_type, item = get_args(annotation)
        if not isinstance(value, dict):
            raise ValueError(f"expected a table, not {_shown(value)}")
        return {check(key_type, key, (*loc, key)): check(item, each, (*loc, key)) for key, each in value.items()}
    if is_section(annotation):
        return _section(annotation, value, loc)
    return _scalar(annotation, value)


def _section(section: type[Section], value: Any, loc: Loc) -> Any:
    if isinstance(value, section):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"expected a section of settings, not {_shown(value)}")
    unknown = [name for name in value if name not in section.fields]
    # The values it knows first (a bad one is named before a misspelt one, as pydantic did), saying the misspelt one
    # too: it may be the missing one.
    named = ", ".join(".".join(map(str, (*loc, name))) for name in unknown)
    also = f" (and {named}: no such setting)" if unknown else ""
    try:
        made = section(**{name: each for name, each in value.items() if name not in unknown})
    except Refused as refused:
        raise Refused((*loc, *refused.loc), refused.message + also) from None
    except ValueError as error:
        raise Refused(loc, str(error) + also) from None
    if unknown:
        raise Refused((*loc, unknown[0]), "no such setting; check its spelling and its section")
    return made


def _either(arms: tuple[Any, ...], value: Any, loc: Loc) -> Any:
    if value is None and type(None) in arms:
        return None
    arms = tuple(arm for arm in arms if arm is not type(None))
    if len(arms) == 1:
        return check(arms[0], value, loc)
    # A choice of sections (the strategies) is made by their `kind`, which each has as its default.
    if isinstance(value, Section) and type(value) in arms:
        return value
    kinds = {arm.fields["kind"].default: arm for arm in arms}
    if not isinstance(value, dict):
        raise ValueError(f"expected a section of settings, not {_shown(value)}")
    kind = value.get("kind")
    if kind not in kinds:
        wanted = _words(tuple(kinds))
        raise Refused(
            (*loc, "kind"), f"required: {wanted}" if kind is None else f"expected {wanted}, not {_shown(kind)}"
        )
    return check(kinds[kind], value, loc)


def _sequence(value: Any, wanted: str) -> list[Any] | tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected {wanted}, not {_shown(value)}")
    return value


def _scalar(kind: Any, value: Any) -> Any:
    if isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool):
        return value
    if isinstance(value, bool) or kind is bool:
        raise ValueError(f"expected {_name(kind)}, not {_shown(value)}")
    try:
        if kind is int and isinstance(value, str | float | Decimal):
            return _whole(value)
        elif kind is float and isinstance(value, int | str | Decimal):
            if not isinstance(value, str) or value.strip().isascii():  # float reads other scripts' digits
                return float(value)
        elif kind is Decimal and isinstance(value, int | float | str):
            return Decimal(str(value).strip())
        elif kind is Path and isinstance(value, str):
            return Path(value)
        elif kind is time and isinstance(value, str):
            return time.fromisoformat(value)
        elif issubclass(kind, Enum):
            return kind(value)
    except (ValueError, ArithmeticError, InvalidOperation):
        pass
    raise ValueError(f"expected {_name(kind)}, not {_shown(value)}")


# A whole number's text: "5", "5.0" and " 1_000 " are 5, 5 and 1000, as pydantic read them; Python's other digits
# (an Arabic-Indic or a full-width digit) are not.
_WHOLE_TEXT = re.compile(r"([+-]?[0-9_]+)(?:\.0+)?", re.ASCII)


def _whole(value: str | float | Decimal) -> int:
    """A whole number from its text or a number without a fraction, within 64 bits for a number (1e300 is no
    count, though it has no fraction); ValueError (or ArithmeticError, for NaN) otherwise."""
    if isinstance(value, str):
        text = _WHOLE_TEXT.fullmatch(value.strip())
        if text is not None:
            return int(text[1])  # int refuses an underscore out of place
    elif -(1 << 63) < value < 1 << 63 and value == int(value):
        return int(value)
    raise ValueError(value)


def _name(kind: Any) -> str:
    if issubclass(kind, Enum):
        return _words(tuple(kind))
    return _NAMES.get(kind, kind.__name__)


_NAMES = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    Decimal: "a number",
    str: "text",
    Path: "a path",
    time: 'a time of day such as "15:00"',
}


def _text(text: Text, value: str) -> None:
    if len(value) < text.min_length:
        raise ValueError(f"expected at least {text.min_length} characters, not {value!r}")
    if text.max_length is not None and len(value) > text.max_length:
        raise ValueError(f"expected at most {text.max_length} characters, not {value!r}")


def _words(choices: tuple[Any, ...]) -> str:
    shown = [_shown(choice) for choice in choices]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict | Section):
        return "a section" if isinstance(value, Section) else "a table"
    if isinstance(value, list | tuple):
        return "a list"
    return str(value)
