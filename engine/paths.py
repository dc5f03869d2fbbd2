"""Where things live: the shipped assets and the shared data sets."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS = REPO_ROOT / "assets"
DEFAULT_BUNDLE = ASSETS / "models" / "default"
EXAMPLES = ASSETS / "examples"


def shared_data_dir() -> Path:
    """The shared data sets: ``$MOODROLL_DATA`` or ``../shared/data`` beside the repository."""
    env = os.environ.get("MOODROLL_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"
