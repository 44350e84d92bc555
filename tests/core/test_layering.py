"""The allowed-dependency table: which part of the project may import which, checked over the AST of every module.

A part imports only the parts listed for it (and itself); anything else is an import running the wrong way, such as
the trading core reaching up into the desk that runs it. Imports made inside functions and under TYPE_CHECKING
count too: a lazy import is still a dependency, and a type-only one still ties the core to what it names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.paths import PROJECT_ROOT

# Foundations, importing the standard library only: where the files are and how they are made durable (the ledger
# and the stores of every layer use them), the crash points the crash tests set, the first-run bootstrap.
BASE = {"bot.paths", "bot.crash"}
# Lowest first: each part with the parts it may import (and what lies inside them). A module belongs to the longest
# part its name starts with.
ALLOWED: dict[str, set[str]] = {
    "bot": set(),  # the package's own module: standard library only (see bot/__init__.py); not its subpackages
    "bot.paths": set(),
    "bot.crash": set(),
    "bot.bootstrap": set(),
    # The trading core: contracts, quotes, orders, positions, fills, risk, the ledger, the watcher.
    "bot.options": BASE,
    # Strategies and the shared exit rules: they read their settings through protocols of their own.
    "bot.strategies": BASE | {"bot.options"},
    # The daily analytics over the ledger.
    "bot.analytics": BASE | {"bot.options"},
    # Plain-text renderings and charts: positions, ledgers, reports, the desk status.
    "bot.render": BASE | {"bot.options", "bot.analytics"},
    # Settings: each section built into what the core and the strategies take. The broker's section lives with the
    # broker but belongs here (it imports only the settings' types).
    "bot.settings_check": set(),  # how raw values become the typed sections
    "bot.settings_types": {"bot.settings_check"},
    "bot.settings_sources": {"bot.settings_check"},  # where the settings come from: the environment and the file
    "bot.settings": BASE
    | {
        "bot.options",
        "bot.strategies",
        "bot.settings_check",
        "bot.settings_types",
        "bot.settings_sources",
        "bot.broker.config",
    },
    "bot.broker.config": {"bot.settings_check", "bot.settings_types"},
    "bot.storage_lock": BASE,
    # The broker adapter (Alpaca): the core's executor and feed, and the reconciliation with its fills.
    "bot.broker": BASE | {"bot.options", "bot.strategies", "bot.settings", "bot.broker.config"},
    # What runs the desk: the builder, resume, stores, notifier, supervisor, lifetime, demo and offline runs.
    "bot.runtime": BASE
    | {"bot.options", "bot.strategies", "bot.analytics", "bot.render", "bot.settings", "bot.storage_lock"}
    | {"bot.broker", "bot.broker.config", "bot.settings_check"},  # a backtest grid reads its --set values as settings
    # The Discord adapter, and the discord.py extensions (thin: parse, check, call, render).
    "bot.discord": BASE
    | {"bot.options", "bot.strategies", "bot.analytics", "bot.render", "bot.settings", "bot.runtime", "bot.broker"},
    "cogs": BASE
    | {"bot.options", "bot.analytics", "bot.render", "bot.settings", "bot.runtime", "bot.broker"}
    | {"bot.discord"},
    # The command line, on top of everything.
    "bot.cli": BASE
    | {"bot.options", "bot.strategies", "bot.analytics", "bot.render", "bot.settings", "bot.storage_lock"}
    | {"bot.runtime", "bot.broker", "bot.discord"},
    "bot.__main__": {"bot.bootstrap", "bot.cli", "bot.runtime"},
}
# Libraries that only some parts may use: the adapters own their libraries, the core and the strategies none.
LIBRARIES: dict[str, set[str]] = {
    "discord": {"bot.discord", "cogs", "bot.cli"},
    "aiohttp": {"bot.discord"},
    "apscheduler": {"bot.runtime", "bot.discord"},
    "alpaca": {"bot.broker", "bot.cli"},
    "requests": {"bot.broker", "bot.cli"},
    "aiosqlite": {"bot.runtime"},
    "sqlite3": {"bot.runtime"},
    "polars": {"bot.analytics"},
    "duckdb": {"bot.analytics"},
    "matplotlib": {"bot.render"},
    "socket": set(),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """The part of the table a module belongs to: the longest entry it is, or is inside of."""
    owners = [part for part in ALLOWED if module == part or (part != "bot" and module.startswith(part + "."))]
    if not owners:
        raise AssertionError(f"{module} belongs to no part of the dependency table; add it to ALLOWED")
    return max(owners, key=len)


def imports(source: str, module: str) -> set[str]:
    """Every module the source imports, anywhere in it (functions and TYPE_CHECKING blocks included)."""
    package = module if module in {"bot", "cogs"} or module.endswith(".__init__") else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            # `from bot import crash` imports bot.crash: a name after `from X import` may be a module of X.
            found |= {f"{base}.{alias.name}" if base in {"bot", "cogs"} else base for alias in node.names}
    return found


def violations(source: str, module: str) -> list[str]:
    importer = part_of(module)
    wrong = []
    for name in sorted(imports(source, module)):
        root = name.split(".")[0]
        if root in {"bot", "cogs"}:
            target = part_of(name)
            if not any(target == part or target.startswith(part + ".") for part in {importer} | ALLOWED[importer]):
                wrong.append(f"{module} imports {name} ({importer} may not import {target})")
        elif root in LIBRARIES and importer not in LIBRARIES[root]:
            wrong.append(f"{module} imports {name} (only {sorted(LIBRARIES[root]) or 'nothing'} may)")
    return wrong


MODULES = sorted([*(PROJECT_ROOT / "bot").rglob("*.py"), *(PROJECT_ROOT / "cogs").glob("*.py")])


def test_every_module_is_checked():
    names = {module_name(path) for path in MODULES}
    assert {"bot.options.order_manager", "bot.runtime.desk", "bot.discord.desk_bot", "bot.cli", "cogs.trading"} <= names


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_imports_follow_the_dependency_table(path: Path):
    assert violations(path.read_text(), module_name(path)) == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("bot.options.positions", "from bot.runtime.state_store import StateStore\n"),
        ("bot.options.risk", "def f():\n    from bot.settings import Settings\n"),
        ("bot.options.risk", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import bot.discord.ui\n"),
        ("bot.strategies.base", "from bot.settings import StrategyBase\n"),
        ("bot.broker.link", "from bot.runtime.state_store import StateStore\n"),
        ("bot.runtime.desk", "from bot.cli import main\n"),
        ("bot.runtime.desk", "from bot import cli\n"),
        ("bot.options.trade_ledger", "import discord\n"),
        ("bot.render.text", "from ..runtime import desk\n"),
    ],
)
def test_an_import_running_the_wrong_way_is_named(module: str, source: str):
    assert violations(source, module), f"{source!r} in {module} should break the table"


def test_imports_the_table_allows_pass():
    source = "from bot.options.positions import Position\nfrom bot import crash\nfrom . import text\n"
    assert violations(source, "bot.render.status") == []
