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


@pytest.fixture(scope="session")
def jack_server():
    """The name of a running JACK server (dummy driver) that this process's clients use."""
    import rtmidi

    from engine.bench_realtime import JackServer

    if not JackServer.available():
        pytest.skip("jackd is not installed (apt-get install jackd2); the MIDI port tests need it")
    if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
        pytest.skip("python-rtmidi was built without JACK support")
    with JackServer() as server:
        yield server.name


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
