"""The trading core stays pure: only the ledger and the replay feed touch files. (Which libraries and which parts of the
project the core may import is the dependency table's, tests/core/test_layering.py.)"""

import ast
from pathlib import Path

import pytest

from bot.paths import PROJECT_ROOT

CORE = sorted((PROJECT_ROOT / "bot" / "options").glob("*.py"))
IO_MODULES = {"os", "pathlib", "io", "shutil", "tempfile"}
ALLOWED_IO = {"trade_ledger.py", "replay_feed.py"}  # the ledger, and the feed that reads recorded quotes


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_core_has_modules_to_check():
    assert {"order_manager.py", "positions.py", "trade_ledger.py"} <= {p.name for p in CORE}


@pytest.mark.parametrize("path", [p for p in CORE if p.name not in ALLOWED_IO], ids=lambda p: p.name)
def test_only_the_ledger_does_file_io(path):
    assert not imported_roots(path) & IO_MODULES
