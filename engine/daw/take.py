"""A take (a ``.mid`` file Moodroll wrote) as a DAW clip: notes in beats, length in whole bars, a name.

Both bridges that put a take into a DAW need the same three things: every note as
(pitch, start beat, duration in beats, velocity) — beats are quarter notes, as Live's clips
and Reaper's items count them —, the clip length (whole bars of its first time signature
holding every onset), and a name from the take's metadata (the text meta event
``moodroll: valence=… arousal=… key=…`` that ``moodroll generate`` writes, the app's
``moodroll-take {json}``, else the file's key signature).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from engine.midi_notes import read_midi_notes

TAKE_TAG = "moodroll-take "  # the app's take metadata: a text event "moodroll-take {json}"
MIN_DURATION = 1.0 / 64  # beats; a DAW refuses a note of length 0
_VA = re.compile(r"valence=([0-9.]+)\s+arousal=([0-9.]+)")
_KEY = re.compile(r"key=([^;]+)")


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
    import mido

    path = Path(path)
    notes = read_midi_notes(path)  # MidiReadError (a ValueError) names the file
    if len(notes) == 0:
        raise ValueError(f"{path}: the take has no notes")
    midi = mido.MidiFile(filename=str(path))
    res = float(notes.resolution)
    num, den = (int(notes.time_signatures[0, 1]), int(notes.time_signatures[0, 2])) if len(notes.time_signatures) else (4, 4)
    bar = num * 4.0 / den
    # Whole bars that hold every onset: a 4-bar take makes a 4-bar loop even when its last
    # chord rings on (those notes keep their length; the DAW lets them run past the loop end).
    length = max(1, math.ceil((int(notes.start.max()) / res + MIN_DURATION) / bar)) * bar
    order = sorted(range(len(notes)), key=lambda i: (int(notes.start[i]), int(notes.pitch[i])))
    out = [(int(notes.pitch[i]), notes.start[i] / res, max(MIN_DURATION, (notes.end[i] - notes.start[i]) / res),
            int(notes.velocity[i])) for i in order]
    valence = arousal = None
    key = None
    for track in midi.tracks:
        for msg in track:
            if msg.type == "text" and msg.text.startswith(TAKE_TAG):  # the app's takes (engine/takes.py)
                try:
                    meta = json.loads(msg.text[len(TAKE_TAG):])
                    if meta.get("valence") is not None and meta.get("arousal") is not None:
                        valence, arousal = float(meta["valence"]), float(meta["arousal"])
                    key = meta.get("key") or key
                except (ValueError, TypeError, AttributeError):
                    pass
            elif msg.type == "text" and msg.text.startswith("moodroll:"):
                m = _VA.search(msg.text)
                if m:
                    valence, arousal = float(m.group(1)), float(m.group(2))
                k = _KEY.search(msg.text)
                if k and key is None and k.group(1).strip() not in ("free", ""):
                    key = k.group(1).strip()
            elif msg.type == "key_signature" and key is None:
                key = msg.key
    return Take(path, out, length, bar, valence, arousal, key)
