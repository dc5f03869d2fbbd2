import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from engine.paths import shared_data_dir  # noqa: E402
from tests.jack import jack_server  # noqa: E402,F401  (a private JACK server for the MIDI port tests)

DATA = shared_data_dir()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared data sets not found at {DATA} (CI always has them)")
    return DATA
