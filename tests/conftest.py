import os
import signal
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# A runner started by nohup or from a background script gets SIGINT *ignored*, and every child
# inherits that: `moodroll live` would then ignore the Ctrl-C tests' SIGINT. A handler (not
# SIG_IGN) here is reset to the default in each child at exec, so the children get Ctrl-C back.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

from engine.paths import shared_data_dir  # noqa: E402
from tests.jack import jack_server  # noqa: E402,F401  (a private JACK server for the MIDI port tests)

DATA = shared_data_dir()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared data sets not found at {DATA} (CI always has them)")
    return DATA


@pytest.fixture(scope="session")
def random_bundle(tmp_path_factory) -> Path:
    """A tiny random-weight model bundle, exported once per test session by the real exporter
    (``python -m training.export --random``) in a subprocess, so torch stays out of this process."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("bundle") / "random"
    r = subprocess.run([sys.executable, "-m", "training.export", "--random", "--out", str(out)],
                       capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def bundle(random_bundle):
    """The random bundle loaded by the engine (one per test module)."""
    from engine.model.bundle import load_bundle

    return load_bundle(random_bundle)


@pytest.fixture(scope="module")
def rt(bundle):
    """An ONNX Runtime session set on the random bundle, CPU, one thread (one per test module)."""
    from engine.model.runtime import Runtime

    return Runtime(bundle, device="cpu", threads=1)
