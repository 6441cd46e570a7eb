"""Where a run reads and writes: the project root, the data lake and the reports folder.

The defaults sit inside the checkout (``data/`` and ``reports/``). ``RESEARCH_DATA_DIR`` and
``RESEARCH_REPORTS_DIR`` move them, which is how tests keep their runs apart from a
researcher's own.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The data folder: ``$RESEARCH_DATA_DIR`` or ``<project>/data``."""
    return Path(os.environ.get("RESEARCH_DATA_DIR") or PROJECT_ROOT / "data").resolve()


def reports_dir() -> Path:
    """The reports folder: ``$RESEARCH_REPORTS_DIR`` or ``<project>/reports``."""
    return Path(os.environ.get("RESEARCH_REPORTS_DIR") or PROJECT_ROOT / "reports").resolve()


def notebooks_dir() -> Path:
    return PROJECT_ROOT / "notebooks"


def profiles_dir() -> Path:
    return PROJECT_ROOT / "profiles"


def real_data_dir() -> Path:
    """Real market data (``../shared/data/real`` beside the checkout, or
    ``$RESEARCH_REAL_DATA_DIR``). Read-only; it may be absent."""
    default = PROJECT_ROOT.parent / "shared" / "data" / "real"
    return Path(os.environ.get("RESEARCH_REAL_DATA_DIR") or default).resolve()
