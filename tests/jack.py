"""A private JACK server for the tests that need real MIDI ports (pytest plugin).

This machine has no ALSA sequencer, so the MIDI tests run rtmidi's JACK API against
``jackd -d dummy -r 48000`` (no sound card needed). The ``jack_server`` fixture starts one
server per test session under a unique name (``JACK_DEFAULT_SERVER``, which every JACK
client of this process then uses), waits until it answers, and kills it at the end. A short
period (64 frames = 1.3 ms) keeps JACK's own MIDI quantisation well under the timing the
tests check. Tests skip with a clear reason where jackd is not installed (CI installs it).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid

import pytest

RATE, PERIOD = 48000, 64


def _server_up(name: str) -> bool:
    if shutil.which("jack_wait"):
        r = subprocess.run(["jack_wait", "-c", "-s", name], capture_output=True, text=True)
        return "running" in r.stdout and "not" not in r.stdout
    from engine.midi_io import MidiPortError, _client  # no jack_wait: try a client
    import rtmidi

    try:
        _client(rtmidi.MidiOut, "jack", "probe").delete()
        return True
    except MidiPortError:
        return False


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory):
    """The name of a running JACK server (dummy driver) that this process's clients use."""
    if not shutil.which("jackd"):
        pytest.skip("jackd is not installed (apt-get install jackd2); the MIDI port tests need it")
    import rtmidi

    if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
        pytest.skip("python-rtmidi was built without JACK support")
    name = f"moodroll-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    log = tmp_path_factory.mktemp("jack") / "jackd.log"
    old = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
    # Realtime scheduling where allowed (jackd falls back to normal scheduling otherwise);
    # a generous client timeout so a loaded machine does not get clients thrown out.
    driver = ["-d", "dummy", "-r", str(RATE), "-p", str(PERIOD), "-w", str(round(PERIOD / RATE * 1e6))]
    proc = None
    try:
        for mode in ([], ["--no-realtime"]):  # realtime first; plain scheduling if that fails
            with open(log, "w") as f:
                proc = subprocess.Popen(["jackd", *mode, "-n", name, "-t", "5000", *driver],
                                        stdout=f, stderr=subprocess.STDOUT, env=env)
            deadline = time.monotonic() + 20
            while not _server_up(name) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if proc.poll() is None and _server_up(name):
                break
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        else:
            raise RuntimeError(f"jackd did not start: {log.read_text()[-2000:]}")
        yield name
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if old is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = old


class DawClock:
    """Plays a DAW's transport in tests: MIDI clock (24 per beat) at a fixed tempo, sent from a
    thread through a real output port; Start, or Song Position + Continue, at a chosen clock."""

    def __init__(self, output, bpm: float):
        self.output, self.bpm = output, bpm
        self.period = 60.0 / bpm / 24
        self.sent: list[tuple[float, tuple]] = []  # (monotonic send time, message)
        self._stop = False
        self._thread = None

    def run(self, lead_ticks: int = 24, position: int | None = None, ticks: int = 24 * 64) -> "DawClock":
        """Clock for ``lead_ticks`` while stopped, then Start (``position`` None) or Song Position
        ``position`` (sixteenths) + Continue, then ``ticks`` more clocks; in a thread."""
        import threading

        def play():
            from engine.stream import _try_realtime

            _try_realtime()
            t0 = time.monotonic() + 0.05
            for k in range(lead_ticks + ticks):
                if self._stop:
                    break
                if k == lead_ticks:  # transport starts halfway between two clocks
                    self._wait(t0 + (k - 0.5) * self.period)
                    if position is None:
                        self._send((0xFA,))
                    else:
                        self._send((0xF2, position & 0x7F, position >> 7))
                        self._send((0xFB,))
                self._wait(t0 + k * self.period)
                self._send((0xF8,))
            if not self._stop:
                self._send((0xFC,))

        self._thread = threading.Thread(target=play, daemon=True)
        self._thread.start()
        return self

    def _wait(self, due: float) -> None:
        while True:
            left = due - time.monotonic()
            if left <= 0:
                return
            time.sleep(left - 0.0015) if left > 0.0015 else None

    def _send(self, msg: tuple) -> None:
        self.output.send(msg)
        self.sent.append((time.monotonic(), msg))

    def stop(self) -> None:
        self._stop = True
        if self._thread is not None:
            self._thread.join(5)
        self.output.send((0xFC,))
