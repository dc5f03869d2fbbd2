"""The JACK transport followed: tempo and bar position (BBT) from the timebase master, play/stop.

Ardour, Qtractor and other Linux DAWs share their transport through JACK: the transport
state (rolling/stopped) and frame are JACK's, and the DAW that is *timebase master* adds the
musical position (bar, beat, tick, tempo, metre). :class:`JackTransport` polls
``jack_transport_query`` (JACK-Client) every ``poll_s`` on its own thread and feeds the
:class:`engine.daw.transport.OscTransport` grid, so ``moodroll live --follow jack`` plays on
the master's beats and bars like the other followers. The position JACK reports belongs to
the start of the current cycle, stamped with JACK's microsecond clock (``usecs``, the same
monotonic clock as :func:`time.monotonic` on Linux): the grid gets that exact pair.
Without a timebase master (no BBT) the transport's seconds are read at ``bpm``.
"""
from __future__ import annotations

import threading
import time

from engine.daw.transport import OscTransport


class JackTransportError(RuntimeError):
    """No JACK server, or the JACK-Client package is missing (one line)."""


class JackTransport(OscTransport):
    """Follows the JACK transport (see the module docstring)."""

    def __init__(self, name: str = "Moodroll Transport", bpm: float = 120.0, beats_per_bar: float = 4.0,
                 poll_s: float = 0.01):
        super().__init__("the JACK transport", beats_per_bar=beats_per_bar, window=8)
        self.client_name, self.fallback_bpm, self.poll_s = name, float(bpm), poll_s
        self.bbt: bool | None = None  # whether a timebase master gives bars and beats
        self._client = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._metre: tuple | None = None

    def start(self) -> "JackTransport":
        try:
            import jack
        except (ImportError, OSError):  # OSError: JACK-Client is there, the JACK library is not
            raise JackTransportError("--follow jack needs JACK and the JACK-Client package "
                                     "(pip install JACK-Client)") from None
        try:
            self._client = jack.Client(self.client_name, no_start_server=True)
        except (jack.JackError, OSError) as e:
            raise JackTransportError(f"no JACK server to follow ({e}); start jackd or your DAW first") from None
        self._client.activate()
        self._jack = jack
        self._thread = threading.Thread(target=self._run, name="moodroll-jack-transport", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        if self._client is not None:
            try:
                self._client.deactivate()
                self._client.close()
            except Exception:  # the server went first: nothing left to close
                pass
            self._client = None

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                state, pos = self._client.transport_query()
            except Exception:  # the server went away
                self.set_playing(False, time.monotonic())
                self.status = "the JACK server went away: stopped"
                return
            self.take(state == self._jack.ROLLING, pos)

    def take(self, rolling: bool, pos: dict) -> None:
        """One transport query: the rolling flag and JACK-Client's position dict."""
        t = pos.get("usecs", 0) / 1e6 or time.monotonic()
        if abs(t - time.monotonic()) > 1.0:  # not the monotonic clock here: stamp it ourselves
            t = time.monotonic()
        self.set_playing(rolling, t)
        if not rolling:
            return
        if "bar" in pos:  # BBT from the timebase master
            self.bbt = True
            num, den = pos["beats_per_bar"], pos["beat_type"]
            if (num, den) != self._metre and float(num).is_integer():
                self._metre = (num, den)
                self.set_metre(int(num), int(den))
            quarter = 4.0 / den
            if self.reported_bpm is None or abs(pos["beats_per_minute"] * quarter - self.reported_bpm) > 1e-6:
                self.set_tempo(pos["beats_per_minute"] * quarter, t)
            beats = (pos["bar"] - 1) * num + (pos["beat"] - 1) + pos["tick"] / pos["ticks_per_beat"]
            self.set_position(beats * quarter, t)
        else:
            self.bbt = False
            if self.reported_bpm is None:
                self.set_tempo(self.fallback_bpm, t)
            self.set_position(pos["frame"] / pos["frame_rate"] * self.fallback_bpm / 60.0, t)
