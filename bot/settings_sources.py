"""Where the settings come from, before they are checked: the environment (OPTIONDESK_...) over the settings file
over the defaults, as one nested dict for bot/settings_check.py to read as the sections of bot/settings.py.

Read here with the standard library rather than through pydantic-settings, which every command paid for at start
(with python-dotenv and asyncio behind it, some 50 ms) for these few rules:
- OPTIONDESK_<FIELD> sets a setting, OPTIONDESK_<SECTION>__<FIELD> one inside a section (any case);
- a value that is a section, a list or a table (`strategies`, `[discord] trader_role_ids`) is JSON;
- the environment's values are merged into the file's, section by section; an OPTIONDESK_ name that is no setting
  (OPTIONDESK_CONFIG_FILE, say) is not one.
"""

from __future__ import annotations

import json
import os
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from bot.settings_check import Section, is_section

PREFIX = "OPTIONDESK_"
NESTED = "__"


class NotJson(ValueError):
    """An environment variable that should hold JSON (a section, a list, a table) does not."""

    def __init__(self, setting: str, variable: str) -> None:
        super().__init__(f"bad setting {setting}: {variable} is not valid JSON")


def raw_settings(model: type[Section], file: Path) -> dict[str, Any]:
    """The file's values (none when it does not exist) with the environment's merged in. Raises OSError,
    tomllib.TOMLDecodeError or UnicodeDecodeError for a file that cannot be read, NotJson for a variable."""
    values = {}
    if file.exists():
        import tomllib  # a desk without a settings file runs on its defaults and the environment

        values = tomllib.loads(file.read_text(encoding="utf-8"))
    return _merged(values, _from_environment(model, os.environ))


def _from_environment(model: type[Section], environ: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    # A section's own variable (its JSON) first, so that a variable inside it is merged into it, not lost under it.
    for variable, value in sorted(environ.items(), key=lambda item: item[0].count(NESTED)):
        if not variable.upper().startswith(PREFIX):
            continue
        path = variable[len(PREFIX) :].lower().split(NESTED)
        if path[0] not in model.fields:
            continue
        node = found
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                break
        else:
            node[path[-1]] = _value(model, path, value, variable)
    return found


def _value(model: type[Section], path: list[str], value: str, variable: str) -> Any:
    """The variable's text, or its JSON when the setting it names holds a section, a list or a table."""
    annotation: Any = model
    for key in path:
        section = _section_in(annotation)
        fields = section.fields if section is not None else {}
        if key not in fields:
            return value  # no such setting: the check refuses it by its name
        annotation = fields[key].type
    if not _structured(annotation):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise NotJson(".".join(path), variable) from None


def _arms(annotation: Any) -> list[Any]:
    """The types a field's annotation may hold, with Annotated and unions taken apart."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _arms(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [arm for part in get_args(annotation) for arm in _arms(part)]
    return [annotation]


def _section_in(annotation: Any) -> type[Section] | None:
    return next((arm for arm in _arms(annotation) if is_section(arm)), None)


def _structured(annotation: Any) -> bool:
    return any(is_section(arm) or get_origin(arm) in (list, tuple, dict, set) for arm in _arms(annotation))


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        merged[key] = _merged(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return merged
