"""A private JACK server for the tests that need real MIDI ports (pytest plugin), and a DAW's clock.

This machine has no ALSA sequencer, so the MIDI tests run rtmidi's JACK API against
``jackd -d dummy -r 48000`` (no sound card needed). The ``jack_server`` fixture starts one
server per test session under a unique name (``JACK_DEFAULT_SERVER``, which every JACK
client of this process and its subprocesses then uses), waits until it answers, and kills
it at the end: :class:`engine.bench_realtime.JackServer` (``moodroll bench`` uses it too).
A short period (64 frames = 1.3 ms) keeps JACK's own MIDI quantisation well under the timing
the tests check. Tests skip with a clear reason where jackd is not installed (CI installs it).
"""
from __future__ import annotations

import time

import pytest


# 256 frames (5.3 ms) and synchronous mode: see the module docstring.
TEST_PERIOD = 256


@pytest.fixture(scope="session")
def jack_server():
    """The name of a running JACK server (dummy driver) that this process's clients use."""
    import rtmidi

    from engine.bench_realtime import JackServer

    if not JackServer.available():
        pytest.skip("jackd is not installed (apt-get install jackd2); the MIDI port tests need it")
    if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
        pytest.skip("python-rtmidi was built without JACK support")
    with JackServer(period=TEST_PERIOD, sync=True) as server:
        yield server.name


class DawClock:
    """Plays a DAW's transport in tests: MIDI clock (24 per beat) at a fixed tempo from another
    program (a subprocess: ``python -m tests.jack``) through a real JACK output port named
    ``name``, connected to ``target``; Start, or Song Position + Continue, at a chosen clock.

    A separate process, as a DAW is: a sender thread inside the test process competes for the
    GIL with the test's own threads, and under load it fell behind by tens of ms, which read as
    a slow tempo (119 BPM for 123); in its own process, with real-time priority where allowed,
    its clocks leave on time."""

    def __init__(self, target: str, bpm: float, name: str = "Test DAW"):
        self.target, self.bpm, self.name = target, bpm, name
        self.period = 60.0 / bpm / 24
        self.sent: list[tuple[float, tuple]] = []  # (monotonic send time, message), after wait()
        self.proc = None

    def run(self, lead_ticks: int = 24, position: int | None = None, ticks: int = 24 * 64) -> "DawClock":
        """Clock for ``lead_ticks`` while stopped, then Start (``position`` None) or Song Position
        ``position`` (sixteenths) + Continue, then ``ticks`` more clocks, then Stop."""
        import subprocess
        import sys
        from pathlib import Path

        args = [sys.executable, "-m", "tests.jack", self.target, str(self.bpm), str(lead_ticks),
                str(-1 if position is None else position), str(ticks), self.name]
        self.proc = subprocess.Popen(args, cwd=Path(__file__).resolve().parent.parent,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # "ready": its port is open and connected
        if line.strip() != "ready":
            self.proc.kill()
            raise RuntimeError(f"the test DAW did not start: {line}{self.proc.stderr.read()[-2000:]}")
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self

    def wait(self, timeout: float = 60.0) -> list[tuple[float, tuple]]:
        """Wait for the DAW to finish; returns (and keeps in ``sent``) what it sent."""
        import json
        import subprocess

        proc, self.proc = self.proc, None
        if proc is None:
            return self.sent
        try:
            out = proc.stdout.read()  # its last line: what it sent (JSON)
            proc.wait(timeout)
        except (subprocess.TimeoutExpired, OSError, ValueError):
            proc.kill()
            proc.wait()
            return self.sent
        self.sent = [(t, tuple(m)) for t, m in json.loads(out.strip().splitlines()[-1] if out.strip() else "[]")]
        return self.sent

    def stop(self) -> None:
        """End the DAW now (it sends Stop on its way out); safe to call again."""
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    self.proc.stdin.close()  # EOF: it stops after the current clock
                except OSError:
                    pass
            self.wait(10)


def _play(target: str, bpm: float, lead_ticks: int, position: int, ticks: int, name: str) -> None:
    """The DAW process: open the port, say "ready", wait for "go", play, print what was sent."""
    import json
    import sys
    import threading

    from engine.midi_io import MidiOutput
    from engine.stream import _try_realtime

    out = MidiOutput(target, api="jack", name=name, monitor_s=0)
    stop = threading.Event()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    _try_realtime()
    period, sent = 60.0 / bpm / 24, []

    def send(msg):
        out.send(msg)
        sent.append((time.monotonic(), msg))

    def wait(due):
        while True:
            left = due - time.monotonic()
            if left <= 0:
                return
            if left > 0.0015:
                time.sleep(left - 0.0015)

    t0 = time.monotonic() + 0.05
    for k in range(lead_ticks + ticks):
        if stop.is_set():
            break
        if k == lead_ticks:  # the transport starts halfway between two clocks
            wait(t0 + (k - 0.5) * period)
            if position < 0:
                send((0xFA,))
            else:
                send((0xF2, position & 0x7F, position >> 7))
                send((0xFB,))
        wait(t0 + k * period)
        send((0xF8,))
    send((0xFC,))
    time.sleep(0.05)  # let JACK deliver the last messages before the port goes
    out.close()
    print(json.dumps(sent), flush=True)


if __name__ == "__main__":
    import sys

    _play(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
