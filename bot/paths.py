"""Where the bot keeps its files: one storage directory, `storage/` at the project root by default."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


DEFAULT_STORAGE = PROJECT_ROOT / "storage"


def ledger_path(storage: Path) -> Path:
    return storage / "options" / "trade_events.jsonl"
