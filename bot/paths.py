"""Where the bot keeps its files: one storage directory, `storage/` at the project root by default."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


DEFAULT_STORAGE = PROJECT_ROOT / "storage"


def private_dir(path: Path) -> Path:
    """Create `path` and every missing parent owner-only (0700): `mkdir(parents=True)` would make the parents with
    the default mode. (A umask only takes bits away, so it cannot widen them.)"""
    for directory in reversed([p for p in (path, *path.parents) if not p.exists()]):
        directory.mkdir(mode=0o700, exist_ok=True)
    return path


def ledger_path(storage: Path) -> Path:
    return storage / "options" / "trade_events.jsonl"
