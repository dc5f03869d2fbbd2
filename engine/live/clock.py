"""Musical time: our own tempo, or the DAW's, as a map between beats and seconds.

Both clocks answer the two questions playback asks: ``time_of(beat)`` (when, on
:func:`time.monotonic`'s clock, does this beat sound?) and ``beat_at(t)``. Beats are quarter
notes; for :class:`ClockFollower` they count from the DAW's song start.

Following a DAW (``ClockFollower``)
-----------------------------------
A DAW set to send MIDI clock to "Moodroll Clock In" sends 24 Timing Clock messages per
quarter note (0xF8), Start (0xFA: from the top), Continue (0xFB: from the Song Position),
Stop (0xFC) and Song Position Pointer (0xF2, in sixteenth notes = 6 clocks). Following the
MIDI spec, the first Clock after Start/Continue is the song position the transport starts at.

Tempo: the arrival times of the last ``window`` clocks (2 beats by default, timestamps taken
by the MIDI system's thread, see :class:`engine.live.ports.MidiInput`) are fitted by a straight
line ``time = a + b * clock_index`` (Theil-Sen: medians of pairwise slopes, so clocks held up
by a busy machine do not pull it). ``b`` is the clock period, so BPM = 60 / (24 b), and the
same line tells when any future beat will sound: a jittery clock gives a steady tempo and a
steady grid. A gap of more than ``lost_s`` starts a new fit (DAWs that send clock only while
playing) and, while playing, counts as the DAW stopping.

The follower protocol
---------------------
What :class:`engine.live.decoder.LiveStream` reads from ``clock=`` (``ClockFollower`` here; the OSC
transport followers in :mod:`engine.daw` implement the same names). Any thread may read them;
the follower's own thread (or whoever feeds it) writes them. Times are seconds on the stream's
time source (``time.monotonic`` unless ``LiveStream(time_source=...)`` says otherwise); beats are
quarter notes counted from the DAW's song start.

=============================  ============================================================
``following``                  class attribute ``True`` (``InternalClock.following`` is False)
``running -> bool``            the DAW's transport is playing
``ready -> bool``              playing, with a tempo known well enough to schedule on
``generation -> int``          changes at every Start / Continue / Stop / locate: playback
                               then stops, ends every note and realigns on the next bar
``bpm -> float | None``        the DAW's tempo (None: not known yet)
``beats_per_bar -> float``     the DAW's bar length in beats (bar lines = its multiples)
``time_of(beat) -> float|None``  when song beat ``beat`` sounds; None while not running
``beat_at(t) -> float|None``   the song beat sounding at time ``t``; None while not running
``next_bar(not_before)``       the first bar line (song beat) sounding at or after time
                               ``not_before``; None while not ``ready``
``status -> str``              one line for the user ("following the DAW at 120.0 BPM")
``start() -> self``, ``close()``  start / stop the follower's own thread (``close`` idempotent);
                               also a context manager
=============================  ============================================================

``time_of`` and ``beat_at`` must be inverse and increasing while running; ``generation`` must
change whenever they jump (a locate), never otherwise. tests/test_scheduling.py drives
LiveStream with ``ClockFollower.handle`` on a virtual clock; a new follower can be checked
the same way.

Time sources
------------
:class:`SystemTime` is the stream's default time source: ``now()`` is ``time.monotonic`` and
``wait_until`` sleeps until shortly before the time, then spins. :class:`tools.virtual_midi.VirtualTime`
implements the same four methods on a virtual clock, so tests (and the soak) run the real
playback code exactly and faster than real time.
"""
from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from engine.live.ports import MidiInput

TICKS_PER_BEAT = 24  # MIDI clock: 24 pulses per quarter note
CLOCK, START, CONTINUE, STOP, SONG_POSITION = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2


class SystemTime:
    """Real time for :class:`engine.live.decoder.LiveStream`: the time source protocol is

    * ``now() -> float``: seconds on a monotonic clock;
    * ``wait_until(t, stop) -> bool``: wait towards ``t``; True once ``now() >= t``. It may
      return False early (here: after at most ``max_sleep_s``, so the caller re-polls its
      queue, pause and transport) and returns early when ``stop`` (a threading.Event) is set;
    * ``idle(seconds, stop)``: nothing to do until another thread makes progress (new events,
      resume, a DAW message): wait about ``seconds`` (None: the caller's default poll);
    * ``notify()``: this thread made progress others may wait for (a no-op here: waiters poll);
    * ``started(thread)``: a thread taking part in the stream has started (a no-op here).

    Sleeping until ``spin_s`` before an event and spinning the rest keeps the OS scheduler's
    wake-up latency out of note timing."""

    def __init__(self, spin_s: float = 0.0015, max_sleep_s: float = 0.004, idle_s: float = 0.002):
        self.spin_s, self.max_sleep_s, self.idle_s = spin_s, max_sleep_s, idle_s

    now = staticmethod(time.monotonic)

    def wait_until(self, t: float, stop: threading.Event | None = None) -> bool:
        monotonic = time.monotonic
        wait = t - monotonic()
        if wait > self.spin_s:
            time.sleep(min(wait - self.spin_s, self.max_sleep_s))
            return monotonic() >= t
        while monotonic() < t:
            pass
        return True

    def idle(self, seconds: float | None, stop: threading.Event | None = None) -> None:
        seconds = self.idle_s if seconds is None else seconds
        if stop is not None:
            stop.wait(seconds)
        else:
            time.sleep(seconds)

    def notify(self) -> None:
        pass

    def started(self, thread: threading.Thread) -> None:
        pass


def check_bpm(bpm: float) -> float:
    bpm = float(bpm)
    if not (20.0 <= bpm <= 400.0):
        raise ValueError(f"tempo must be between 20 and 400 BPM, got {bpm:g}")
    return bpm


class InternalClock:
    """Our own tempo: beat ``b`` sounds at ``t0 + (b - b0) * 60 / bpm``; tempo changes keep it continuous."""

    following = False

    def __init__(self, bpm: float = 110.0):
        self._anchor = (0.0, 0.0, 60.0 / check_bpm(bpm))  # (t0, b0, seconds per beat)
        self.running = False

    @property
    def bpm(self) -> float:
        return 60.0 / self._anchor[2]

    @property
    def ready(self) -> bool:
        return self.running

    def start(self, at: float, beat: float = 0.0) -> None:
        """Beat ``beat`` sounds at monotonic time ``at``."""
        self._anchor = (at, beat, self._anchor[2])
        self.running = True

    def stop(self) -> None:
        self.running = False

    def set_tempo(self, bpm: float, at_beat: float | None = None) -> None:
        """New tempo from ``at_beat`` on (default: now); earlier beats keep their times."""
        spb = 60.0 / check_bpm(bpm)
        if not self.running:
            self._anchor = (self._anchor[0], self._anchor[1], spb)
            return
        b = self.beat_at(time.monotonic()) if at_beat is None else at_beat
        self._anchor = (self.time_of(b), b, spb)

    def time_of(self, beat: float) -> float:
        t0, b0, spb = self._anchor
        return t0 + (beat - b0) * spb

    def beat_at(self, t: float) -> float:
        t0, b0, spb = self._anchor
        return b0 + (t - t0) / spb


class TempoEstimator:
    """A straight line through the arrival times of the last ``window`` clocks.

    Theil-Sen: the slope is the median of the slopes between all pairs of clocks, the
    intercept the median of what is left. Unlike least squares it is not pulled by a burst of
    clocks that arrive late together (a busy machine, a MIDI system catching up), as long as
    most of the window arrived on time.
    """

    def __init__(self, window: int = 2 * TICKS_PER_BEAT):
        if window < 3:
            raise ValueError("the tempo window needs at least 3 clocks")
        self.points: deque[tuple[int, float]] = deque(maxlen=window)
        self._pairs: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def reset(self) -> None:
        self.points.clear()

    def add(self, index: int, t: float) -> tuple[float, float] | None:
        """Add clock ``index`` arriving at ``t``; returns the line ``(a, b)``: time = a + b * index."""
        self.points.append((index, t))
        return self.line()

    def line(self) -> tuple[float, float] | None:
        n = len(self.points)
        if n < 3:
            return None
        if n not in self._pairs:
            self._pairs[n] = np.triu_indices(n, 1)
        i, j = self._pairs[n]
        pts = np.asarray(self.points, dtype=np.float64)
        k, t = pts[:, 0] - pts[0, 0], pts[:, 1] - pts[0, 1]  # relative: no precision lost
        dk = k[j] - k[i]
        ok = dk > 0
        if not ok.any():
            return None
        b = float(np.median((t[j] - t[i])[ok] / dk[ok]))
        if b <= 0:
            return None
        a = float(np.median(t - b * k)) + pts[0, 1] - b * pts[0, 0]
        return a, b


class ClockFollower:
    """Follows a DAW's MIDI clock arriving at a :class:`MidiInput`; a thread polls the port.

    Read by other threads: ``running`` (the DAW is playing), ``ready`` (playing with a tempo
    known from enough clocks), ``bpm``, ``generation`` (changes at every Start/Continue/Stop,
    so playback can tell the transport moved), ``time_of(song_beat)``, ``beat_at(t)``,
    :meth:`next_bar`, and ``status``.
    """

    following = True

    def __init__(self, midi_input: MidiInput, window: int = 2 * TICKS_PER_BEAT,
                 min_ticks: int = 12, beats_per_bar: float = 4.0, poll_s: float = 0.001,
                 lost_s: float = 0.5):
        self.input = midi_input
        self.estimator = TempoEstimator(window)
        self.min_ticks = min_ticks
        self.beats_per_bar = float(beats_per_bar)
        self.poll_s = poll_s
        self.lost_s = lost_s
        # Written by the polling thread only.
        self._seq = -1  # index of the last clock received
        self._last_t: float | None = None
        self._position = 0  # song tick where a Continue resumes (Song Position Pointer)
        self._line: tuple[float, float] | None = None
        self.ticks = 0  # clocks received in total
        # What other threads read, replaced as a whole: (running, line, base, generation);
        # the clock with index i is song tick i - base.
        self._state: tuple = (False, None, 0, 0)
        self.status = f"waiting for MIDI clock on {midi_input.full_name!r}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clock-follower", daemon=True)

    # -- reading (any thread) -------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._state[0]

    @property
    def generation(self) -> int:
        return self._state[3]

    @property
    def ready(self) -> bool:
        running, line, _, _ = self._state
        return running and line is not None and len(self.estimator.points) >= self.min_ticks

    @property
    def bpm(self) -> float | None:
        line = self._state[1]
        return None if line is None else 60.0 / (TICKS_PER_BEAT * line[1])

    def time_of(self, beat: float) -> float | None:
        """When song beat ``beat`` sounds (monotonic seconds); None while the DAW is stopped."""
        running, line, base, _ = self._state
        if not running or line is None:
            return None
        a, b = line
        return a + b * (base + beat * TICKS_PER_BEAT)

    def beat_at(self, t: float) -> float | None:
        running, line, base, _ = self._state
        if not running or line is None:
            return None
        a, b = line
        return ((t - a) / b - base) / TICKS_PER_BEAT

    def next_bar(self, not_before: float) -> float | None:
        """The first DAW bar line (song beat, a multiple of ``beats_per_bar``) sounding at or
        after monotonic time ``not_before``; None while not ready."""
        if not self.ready:
            return None
        beat = self.beat_at(not_before)
        bars = -(-beat // self.beats_per_bar)  # ceil
        return max(bars, 0.0) * self.beats_per_bar

    # -- the polling thread -------------------------------------------------------------
    def start(self) -> "ClockFollower":
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def _publish(self, running: bool, bump: bool = False, next_tick: int | None = None) -> None:
        """Publish a new state; ``next_tick``: the song tick the next clock stands for."""
        _, _, base, gen = self._state
        if next_tick is not None:
            base = self._seq + 1 - next_tick
        self._state = (running, self._line, base, gen + bump)

    def _run(self) -> None:
        while not self._stop.is_set():
            for t, data in self.input.poll():
                if data:
                    self.handle(t, data)
            self.check_lost(time.monotonic())
            time.sleep(self.poll_s)

    def check_lost(self, now: float) -> None:
        """No clock for ``lost_s``: forget the tempo, and if the DAW was playing, count it as stopped."""
        if self._last_t is not None and now - self._last_t > self.lost_s:
            self._lose()

    def _lose(self) -> None:
        self.estimator.reset()
        self._line, self._last_t = None, None
        if self.running:
            self._position = self._song_tick_next()
            self.status = "the DAW's MIDI clock stopped arriving: stopped"
            self._publish(False, bump=True)
        else:
            self._publish(False)

    def _song_tick_next(self) -> int:
        """Song tick the next clock would have had."""
        return self._seq + 1 - self._state[2]

    def handle(self, t: float, data) -> None:
        """One incoming message arriving at monotonic time ``t`` (public for tests and replays)."""
        kind = data[0]
        if kind == CLOCK:
            if self._last_t is not None and t - self._last_t > self.lost_s:
                self.estimator.reset()  # a new run of clocks: old times say nothing about it
            self._seq += 1
            self.ticks += 1
            self._last_t = t
            self._line = self.estimator.add(self._seq, t)
            self._publish(self.running)
            if self.running and self.ready and self.ticks % TICKS_PER_BEAT == 0:
                self.status = f"following the DAW at {self.bpm:.1f} BPM"
        elif kind == START:
            self._position = 0
            self.status = "DAW started"
            self._publish(True, bump=True, next_tick=0)
        elif kind == CONTINUE:
            self.status = "DAW continued"
            self._publish(True, bump=True, next_tick=self._position)
        elif kind == STOP:
            if self.running:
                self._position = self._song_tick_next()
                self._publish(False, bump=True)
            self.status = "DAW stopped"
        elif kind == SONG_POSITION and len(data) >= 3:
            self._position = (data[1] | (data[2] << 7)) * 6
            if self.running:  # a jump while playing: the next clock is the new position
                self._publish(True, bump=True, next_tick=self._position)
