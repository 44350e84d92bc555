"""The demo's own folder: its invented market never trades into a desk's books, nor a desk into the demo's.

The demo marks the folder it writes (`DEMO_MARK`) the first time; it refuses a folder whose ledger holds
trades without that mark (a desk's), and a desk on Discord refuses a folder with it.
"""

from __future__ import annotations

from pathlib import Path

from bot.paths import StorageError, ledger_path, write_atomically

DEMO_FOLDER = "demo"  # under the storage folder, when the demo is not given --storage
DEMO_MARK = "DEMO"
_MARK_TEXT = b"This folder holds the offline demo's simulated trades (python -m bot demo); no desk trades here.\n"


def is_demo_folder(storage: Path) -> bool:
    return (storage / DEMO_MARK).is_file()


def claim_demo_folder(storage: Path) -> None:
    """Mark `storage` as the demo's, unless a desk's ledger is already there (StorageError)."""
    if is_demo_folder(storage):
        return
    ledger = ledger_path(storage)
    if ledger.exists() and ledger.stat().st_size > 0:
        raise StorageError(
            f"storage {storage} holds a desk's trades ({ledger}); the demo never writes into a desk's books: "
            f"run it without --storage (it uses {DEMO_FOLDER}/ under the storage) or give it an empty folder"
        )
    write_atomically(storage / DEMO_MARK, _MARK_TEXT)


def refuse_demo_folder(storage: Path) -> None:
    """A desk on Discord never trades in the demo's folder, whose books hold simulated trades."""
    if is_demo_folder(storage):
        raise StorageError(
            f"storage {storage} is the offline demo's folder ({DEMO_MARK} in it); give the desk its own --storage"
        )
