"""A take (a ``.mid`` file Moodroll wrote) as a DAW clip: notes in beats, length in whole bars, a name.

Both bridges that put a take into a DAW need the same three things: every note as
(pitch, start beat, duration in beats, velocity) — beats are quarter notes, as Live's clips
and Reaper's items count them —, the clip length (whole bars of its first time signature
holding every onset), and a name from the take's metadata, read by
:func:`engine.takes.store.read_meta` (the app's ``moodroll-take`` event, ``moodroll generate``'s
text event, else the key signature or the key estimated from the notes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from engine.music.notes import read_midi_notes

MIN_DURATION = 1.0 / 64  # beats; a DAW refuses a note of length 0


@dataclass(frozen=True)
class Take:
    path: Path
    notes: list[tuple[int, float, float, int]]  # (pitch, start beat, duration beats, velocity)
    length: float  # beats, whole bars
    beats_per_bar: float
    valence: float | None
    arousal: float | None
    key: str | None

    @property
    def name(self) -> str:
        """e.g. ``sunset (V 7.0, A 6.0, Cm)``: the file's name and its mood."""
        parts = []
        if self.valence is not None:
            parts.append(f"V {self.valence:.1f}, A {self.arousal:.1f}")
        if self.key:
            parts.append(self.key)
        return f"{self.path.stem} ({', '.join(parts)})" if parts else self.path.stem


def read_take(path) -> Take:
    """Read a take; raises ValueError (one line) when the file is not usable MIDI or has no notes."""
    from engine.takes.store import read_meta

    path = Path(path)
    notes = read_midi_notes(path)  # MidiReadError (a ValueError) names the file
    if len(notes) == 0:
        raise ValueError(f"{path}: the take has no notes")
    meta, _ = read_meta(path)  # the one reader of take metadata (engine/takes/store.py)
    res = float(notes.resolution)
    num, den = (int(notes.time_signatures[0, 1]), int(notes.time_signatures[0, 2])) if len(notes.time_signatures) else (4, 4)
    bar = num * 4.0 / den
    # Whole bars that hold every onset: a 4-bar take makes a 4-bar loop even when its last
    # chord rings on (those notes keep their length; the DAW lets them run past the loop end).
    length = max(1, math.ceil((int(notes.start.max()) / res + MIN_DURATION) / bar)) * bar
    order = sorted(range(len(notes)), key=lambda i: (int(notes.start[i]), int(notes.pitch[i])))
    out = [(int(notes.pitch[i]), notes.start[i] / res, max(MIN_DURATION, (notes.end[i] - notes.start[i]) / res),
            int(notes.velocity[i])) for i in order]
    return Take(path, out, length, bar, meta.valence, meta.arousal, meta.key)
