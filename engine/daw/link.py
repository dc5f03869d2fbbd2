"""Ableton Link followed: the session's tempo, beat and bar phase (quantum = the bar), start/stop.

Link peers on a network share one timeline (tempo and beat at a time) and, with start/stop
sync, play and stop together. :class:`LinkTransport` joins the session through ``aalink``
(GPL-3.0: the optional extra ``moodroll[link]``) and reads it every ``poll_s`` on its own
thread into the :class:`engine.daw.transport.OscTransport` grid, so ``moodroll live --follow
link`` plays on the session's beats with its bars where the quantum's are. Moodroll only
reads: it never sets the tempo, so joining leaves the session as it was (a peer that joins
adopts the session's timeline; ``bpm`` is Moodroll's tempo only while it is alone).
Link's clock is the host's monotonic clock, so the beat read between two
:func:`time.monotonic` calls is stamped with their midpoint.
"""
from __future__ import annotations

import threading
import time
import warnings

from engine.daw.transport import OscTransport


class LinkError(RuntimeError):
    """aalink is not installed (one line)."""


class LinkTransport(OscTransport):
    """Follows an Ableton Link session (see the module docstring)."""

    def __init__(self, bpm: float = 120.0, beats_per_bar: float = 4.0, poll_s: float = 0.01):
        super().__init__("the Link session", beats_per_bar=beats_per_bar, window=4)
        self.start_bpm, self.poll_s = float(bpm), poll_s
        self.link = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.status = "joining the Link session: press play in a Link app (Start Stop Sync on)"

    def start(self) -> "LinkTransport":
        try:
            import aalink
        except ImportError:
            raise LinkError("--follow link needs aalink (GPL-3.0): pip install 'moodroll[link]'") from None
        import asyncio

        self._loop = asyncio.new_event_loop()  # aalink wants one for its callbacks; we poll instead
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            link = aalink.Link(self.start_bpm, self._loop)
        link.quantum = self.beats_per_bar
        link.start_stop_sync_enabled = True
        link.enabled = True
        self.link = link
        self._thread = threading.Thread(target=self._run, name="moodroll-link", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        if self.link is not None:
            self.link.enabled = False
            self.link = None
            self._loop.close()

    @property
    def peers(self) -> int:
        return 0 if self.link is None else self.link.num_peers

    def _run(self) -> None:
        link = self.link
        while not self._stop.wait(self.poll_s):
            self.take(link.playing, link.tempo, *_beat_now(link))

    def take(self, playing: bool, bpm: float, beat: float, t: float) -> None:
        """One reading of the session: play state, tempo, and its beat at monotonic time ``t``."""
        self.set_playing(playing, t)
        if self.reported_bpm is None or abs(bpm - self.reported_bpm) > 1e-3:
            self.set_tempo(bpm, t)
        if playing:
            self.set_position(beat, t)


def _beat_now(link) -> tuple[float, float]:
    """The session's beat now and the monotonic time it belongs to."""
    t0 = time.monotonic()
    beat = link.beat
    return beat, (t0 + time.monotonic()) / 2
