"""Humanize: seeded timing that leaves the grid as a pianist does, for files and the own-clock stream.

Notes struck together move together (one shift per onset, Gaussian with ``ms`` standard
deviation, clipped to 2.5 of them), plus a small spread inside a chord (a fifth of that); a note's
end moves with its start, so lengths stay. The same seed gives the same timing. It is off by
default, and a stream that follows a DAW (MIDI clock, Link, Live, Reaper, JACK transport) never
humanizes: every note stays on the DAW's grid.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from engine.music.events import NOTE_OFF, NOTE_ON, Event

CLIP = 2.5  # standard deviations
CHORD_SPREAD = 0.2  # of ``ms``, inside one onset


def check_humanize(ms: float) -> float:
    ms = float(ms)
    if not 0.0 <= ms <= 60.0:
        raise ValueError(f"humanize must be 0 to 60 ms, got {ms:g}")
    return ms


class Humanizer:
    """Seconds of shift for each onset (shared) and each note in it; ``ms`` 0 shifts nothing."""

    def __init__(self, ms: float = 0.0, seed: int | None = None):
        self.sd = check_humanize(ms) / 1000.0
        self.rng = np.random.default_rng(seed)
        self._onset: float | None = None
        self._shared = 0.0

    def seconds(self, onset) -> float:
        """The shift (s) of the next note struck at ``onset`` (any number that equals for notes together)."""
        if self.sd == 0.0:
            return 0.0
        if onset != self._onset:
            self._onset, self._shared = onset, float(np.clip(self.rng.normal(), -CLIP, CLIP)) * self.sd
        inside = float(np.clip(self.rng.normal(), -CLIP, CLIP)) * self.sd * CHORD_SPREAD
        return self._shared + inside


class EventHumanizer:
    """Shifts the note events of a live stream (beats) as they are decoded, at the stream's tempo."""

    def __init__(self, ms: float = 0.0, seed: int | None = None):
        self.humanizer = Humanizer(ms, seed)
        self._moved: dict[tuple[int, float], float] = {}  # (pitch, note-on beat) -> the beat it moved to

    @property
    def on(self) -> bool:
        return self.humanizer.sd > 0.0

    def __call__(self, ev: Event, bpm: float) -> Event:
        if ev.kind == NOTE_ON:
            on = max(ev.beat + self.humanizer.seconds(ev.beat) * bpm / 60.0, 0.0)
            self._moved[(ev.pitch, ev.beat)] = on
            return replace(ev, beat=on)
        if ev.kind == NOTE_OFF:  # value: its note-on's beat, which the player matches it by
            on = self._moved.pop((ev.pitch, ev.value), None)
            if on is None:
                return ev
            return replace(ev, beat=max(ev.beat + on - ev.value, on), value=on)
        return ev


def humanize_score(score, ms: float, seed: int | None = None):
    """A copy of a symusic Score (ticks) with every note's start and end shifted (see the module docstring)."""
    h = Humanizer(ms, seed)
    if h.sd == 0.0:
        return score
    out = score.copy()
    tpq = out.ticks_per_quarter
    qpm = float(out.tempos[0].qpm) if len(out.tempos) else 120.0
    ticks_per_s = tpq * qpm / 60.0
    for track in out.tracks:
        notes = sorted(track.notes, key=lambda n: (n.time, n.pitch))
        for n in notes:
            shift = int(round(h.seconds(n.time) * ticks_per_s))
            n.time = max(int(n.time) + shift, 0)
        track.notes.sort()
    return out
