"""A DAW transport followed over OSC: play/stop, tempo and song position reports -> a beat grid.

:class:`OscTransport` answers what :class:`engine.live.decoder.LiveStream` asks its ``clock``
follower (the same interface as :class:`engine.live.clock.ClockFollower`): ``running``,
``generation`` (changes when the transport starts, stops or jumps), ``bpm``,
``time_of(song_beat)``, ``beat_at(t)``, ``next_bar(not_before)``, ``status``; plus ``ready``,
``beats_per_bar``, ``start()`` and ``close()``. Song beats are quarter notes from the DAW's
song start. The DAW-specific listeners (:mod:`engine.daw.ableton`, :mod:`engine.daw.reaper`)
turn their messages into :meth:`set_playing`, :meth:`set_tempo`, :meth:`set_position` and
:meth:`set_metre` calls, on their socket's thread.

The grid: with the tempo the DAW reports (exact, unlike MIDI clock), only the phase is
unknown. Each position report ``(t, beat)`` gives ``offset = t - beat * seconds_per_beat``;
a report can only arrive late (network, the DAW's UI timer, our thread), never early, so
the grid uses the **smallest** offset of the last ``window`` reports. A report more than
``jump_s`` off the grid is a locate or a loop only when the next report agrees (one late
packet is not a jump); a jump starts a new generation, so playback realigns at the next bar.
Until the DAW has told its tempo, the tempo comes from the reports themselves (Theil-Sen
line, :class:`engine.live.clock.TempoEstimator`). No report for ``lost_s`` while playing counts
as stopped (the DAW quit or the surface was switched off).
"""
from __future__ import annotations

import threading
import time
from collections import deque

from engine.live.clock import TempoEstimator


class OscTransport:
    """A transport follower fed by OSC reports (see the module docstring)."""

    following = True

    def __init__(self, name: str = "the DAW", beats_per_bar: float = 4.0, window: int = 16,
                 jump_s: float = 0.15, lost_s: float = 1.0):
        self.name = name
        self.beats_per_bar = float(beats_per_bar)
        self.jump_s, self.lost_s = jump_s, lost_s
        self.playing: bool | None = None  # the DAW's play state; None until it has said
        self.reported_bpm: float | None = None  # the tempo the DAW reported
        self._offsets: deque = deque(maxlen=window)
        self._estimator = TempoEstimator(window)
        self._candidate: float | None = None  # offset of a suspected jump, awaiting confirmation
        self._last: tuple[float, float] | None = None  # (t, beat) of the last position report
        self._heard_at: float | None = None  # when the last play-state or position report came
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # What playback reads, replaced as a whole: (running, offset, seconds per beat, generation).
        self._state: tuple = (False, None, None, 0)
        self.reports = 0  # transport messages taken in
        self.jumps = 0
        self.status = f"waiting for {name}: press play there"

    # -- reading (any thread) -----------------------------------------------------------------
    @property
    def running(self) -> bool:
        s = self._state
        return s[0] and s[1] is not None

    @property
    def ready(self) -> bool:
        return self.running

    @property
    def generation(self) -> int:
        return self._state[3]

    @property
    def bpm(self) -> float | None:
        if self.reported_bpm is not None:
            return self.reported_bpm
        spb = self._state[2]
        return None if spb is None else 60.0 / spb

    def time_of(self, beat: float) -> float | None:
        running, offset, spb, _ = self._state
        if not running or offset is None:
            return None
        return offset + beat * spb

    def beat_at(self, t: float) -> float | None:
        running, offset, spb, _ = self._state
        if not running or offset is None:
            return None
        return (t - offset) / spb

    def next_bar(self, not_before: float) -> float | None:
        beat = self.beat_at(not_before)
        if beat is None:
            return None
        bars = -(-beat // self.beats_per_bar)
        return max(bars, 0.0) * self.beats_per_bar

    def wait(self, predicate, timeout: float) -> bool:
        """Block until ``predicate(self)`` holds after some report (or ``timeout``); for tests and UIs."""
        end = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    # -- lifetime (the DAW listeners override these) -------------------------------------------
    def start(self) -> "OscTransport":
        return self

    def close(self) -> None:
        pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- updates (the listener's thread) --------------------------------------------------------
    def set_playing(self, playing: bool, t: float) -> None:
        with self._changed:
            self.reports += 1
            playing = bool(playing)
            self._heard_at = t
            if playing != self.playing:
                self.playing = playing
                self._reset()
                self._publish(playing, None, bump=True)
                self.status = (f"{self.name} started: waiting for its song position" if playing
                               else f"{self.name} stopped")
            self._changed.notify_all()

    def set_tempo(self, bpm: float, t: float) -> bool:
        """The DAW's tempo from now on; False (ignored) when it is not a tempo (20-400 BPM)."""
        if not isinstance(bpm, (int, float)) or not (20.0 <= bpm <= 400.0):
            return False
        with self._changed:
            self.reports += 1
            spb = 60.0 / float(bpm)
            running, offset, old_spb, _ = self._state
            self.reported_bpm = float(bpm)
            if offset is not None and old_spb is not None:
                beat = (t - offset) / old_spb  # the grid stays continuous at the change
                self._reset()
                self._offsets.append(t - beat * spb)
                self._publish(running, self._offsets[0], spb)
            else:
                self._publish(running, offset, spb)
            self._changed.notify_all()
        return True

    def set_metre(self, numerator: int, denominator: int) -> None:
        if 1 <= numerator <= 64 and denominator in (1, 2, 4, 8, 16, 32):
            self.beats_per_bar = numerator * 4.0 / denominator

    def set_position(self, beat: float, t: float) -> None:
        """The DAW says song beat ``beat`` (quarter notes) is sounding at monotonic time ``t``."""
        with self._changed:
            self.reports += 1
            self._heard_at = t
            last, self._last = self._last, (t, beat)
            if self.playing is None and last is not None and 0 < beat - last[1] < 4 and 0 < t - last[0] < 1:
                self.playing = True  # it advances: playing (the DAW had not said)
                self._reset()
                self._publish(True, None, bump=True)
            if self.playing:
                self._take_position(beat, t)
            self._changed.notify_all()

    def check_lost(self, now: float) -> None:
        """No position report for ``lost_s`` while playing: count it as stopped."""
        heard = self._heard_at
        if self.playing and heard is not None and now - heard > self.lost_s:
            with self._changed:
                self.playing = False
                self._reset()
                self._publish(False, None, bump=True)
                self.status = f"no transport messages from {self.name} for {self.lost_s:g} s: stopped"
                self._changed.notify_all()

    # -- internals (lock held) ---------------------------------------------------------------------
    def _take_position(self, beat: float, t: float) -> None:
        running, offset, spb, _ = self._state
        if self.reported_bpm is None:  # tempo from the reports themselves, until the DAW says
            line = self._estimator.add(beat, t)
            if line is None:
                return
            a, b = line
            if not (60.0 / 400.0 <= b <= 60.0 / 20.0):
                return
            self._publish(True, a, b)
            self._say_following()
            return
        new = t - beat * spb
        if offset is not None and abs(new - offset) > self.jump_s:
            cand, self._candidate = self._candidate, new
            if cand is None or abs(new - cand) > self.jump_s:
                return  # one report off the grid: late, or the first of a jump
            self.jumps += 1  # two agree: the DAW located or looped
            self._reset()
            self._offsets.extend((cand, new))
            self._publish(True, min(self._offsets), spb, bump=True)
            self._say_following()
            return
        self._candidate = None
        self._offsets.append(new)
        self._publish(True, min(self._offsets), spb)
        self._say_following()

    def _say_following(self) -> None:
        bpm = self.bpm
        self.status = f"following {self.name} at {bpm:.1f} BPM" if bpm else f"following {self.name}"

    def _reset(self) -> None:
        self._offsets.clear()
        self._estimator.reset()
        self._candidate = None

    def _publish(self, running: bool, offset, spb=None, bump: bool = False) -> None:
        if spb is None and self.reported_bpm is not None:
            spb = 60.0 / self.reported_bpm
        gen = self._state[3] + bump
        self._state = (running, offset, spb, gen)
