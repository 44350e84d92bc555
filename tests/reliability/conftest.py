"""Fixtures of the reliability tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SHM = Path("/dev/shm")


@pytest.fixture
def memory_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory in memory (tmpfs) where there is one, else tmp_path: for the load test, whose thousands of
    fsyncs would measure the build machine's disk (the ledger benchmark measures that), not the desk."""
    if not SHM.is_dir():
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="optiondesk-load-", dir=SHM))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
