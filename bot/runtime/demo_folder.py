"""The simulated folders: the demo's and the backtests' invented trades never mix with a desk's books.

The demo marks the folder it writes (`DEMO_MARK`) the first time, a backtest its own (`BACKTEST_MARK`); the demo
refuses a folder whose ledger holds trades without its mark (a desk's), and a desk refuses a folder with either.
"""

from __future__ import annotations

from pathlib import Path

from bot.paths import StorageError, ledger_path, write_atomically

DEMO_FOLDER = "demo"  # under the storage folder, when the demo is not given --storage
DEMO_MARK = "DEMO"
BACKTEST_MARK = "BACKTEST"
_MARK_TEXT = b"This folder holds the offline demo's simulated trades (python -m bot demo); no desk trades here.\n"


def is_demo_folder(storage: Path) -> bool:
    return (storage / DEMO_MARK).is_file()


def claim_demo_folder(storage: Path) -> None:
    """Mark `storage` as the demo's, unless a desk's ledger is already there (StorageError)."""
    if is_demo_folder(storage):
        return
    ledger = ledger_path(storage)
    if ledger.exists() and ledger.stat().st_size > 0:
        whose = "a backtest's" if (storage / BACKTEST_MARK).is_file() else "a desk's"
        raise StorageError(
            f"storage {storage} holds {whose} trades ({ledger}); the demo never writes into other books: "
            f"run it without --storage (it uses {DEMO_FOLDER}/ under the storage) or give it an empty folder"
        )
    write_atomically(storage / DEMO_MARK, _MARK_TEXT)


def refuse_simulated_folder(storage: Path) -> None:
    """A desk never trades in the demo's or a backtest's folder, whose books hold simulated trades."""
    for mark, whose in ((DEMO_MARK, "the offline demo's"), (BACKTEST_MARK, "a backtest's")):
        if (storage / mark).is_file():
            raise StorageError(f"storage {storage} is {whose} folder ({mark} in it); give the desk its own --storage")
