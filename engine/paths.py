"""Where things live: the shipped assets and the shared data sets."""
from __future__ import annotations

import os
import sys
from pathlib import Path

# A PyInstaller build (desktop/packaging) has no checkout: its assets/ lies in the bundle's
# data folder, sys._MEIPASS. Everywhere else the repository root is one level above engine/.
REPO_ROOT = Path(sys._MEIPASS) if getattr(sys, "frozen", False) else Path(__file__).resolve().parent.parent
ASSETS = REPO_ROOT / "assets"
DEFAULT_BUNDLE = ASSETS / "models" / "default"
EXAMPLES = ASSETS / "examples"


def shared_data_dir() -> Path:
    """The shared data sets: ``$MOODROLL_DATA`` or ``../shared/data`` beside the repository."""
    env = os.environ.get("MOODROLL_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"
