"""Makes `python3 -m bot` and `python3 -m tests` work on a fresh clone with only python3.

Standard library only: this runs before the project's dependencies exist. Under a plain interpreter it
creates `.venv` at the project root, installs the project with its dev extras there (again only when
pyproject.toml changed), and re-runs the same command inside it. Inside any virtual environment it does
nothing: whoever made that environment manages it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
STAMP = VENV / ".optiondesk-installed"


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _wanted_stamp() -> str:
    import hashlib

    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_environment(module: str) -> None:
    """Re-execute `python -m <module> <args>` inside the project's .venv, creating it if needed."""
    if sys.prefix != sys.base_prefix:
        return
    # Only a plain interpreter gets here: every run inside the environment skips these imports.
    import subprocess
    import venv

    python = _venv_python()
    if not python.exists():
        print(f"optiondesk: creating {VENV} (first run only)", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = _wanted_stamp()
    if not STAMP.exists() or STAMP.read_text().strip() != wanted:
        print("optiondesk: installing dependencies into .venv (first run only) ...", file=sys.stderr)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", f"{ROOT}[dev]"],
            check=True,
        )
        STAMP.write_text(wanted + "\n")
    os.execv(str(python), [str(python), "-m", module, *sys.argv[1:]])
