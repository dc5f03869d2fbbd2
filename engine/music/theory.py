"""Keys, scales and metres: names parsed into pitch classes and key signatures, and the key profiles.

One definition for everything that speaks of keys: the key lock (engine.model.filters), the
emotion plan's mode (engine.emotion.attributes), key estimation (engine.music.metrics), Live's key
(engine.daw.live_key) and the app's key menu.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# -- keys and scales ---------------------------------------------------------------------------
PITCH_CLASSES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
    "melodic minor": (0, 2, 3, 5, 7, 9, 11),
    "major pentatonic": (0, 2, 4, 7, 9),
    "minor pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "chromatic": tuple(range(12)),
}
SCALE_ALIASES = {
    "": "major", "maj": "major", "ionian": "major", "m": "minor", "min": "minor",
    "aeolian": "minor", "natural minor": "minor", "pentatonic": "major pentatonic",
    "harmonic": "harmonic minor", "melodic": "melodic minor",
}
# Semitones from a mode's tonic down to the tonic of the major key sharing its signature.
MODE_OFFSET = {"major": 0, "dorian": 2, "phrygian": 4, "lydian": 5, "mixolydian": 7, "minor": 9, "locrian": 11,
               "major pentatonic": 0}
MINOR_SIGNATURE = {"minor", "harmonic minor", "melodic minor", "minor pentatonic", "blues"}
MAJOR_NAMES = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
MINOR_NAMES = ["Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm"]
VALID_MAJOR = set(MAJOR_NAMES) | {"C#", "Gb", "Cb"}
VALID_MINOR = set(MINOR_NAMES) | {"D#m", "A#m", "Abm"}


@dataclass(frozen=True)
class Scale:
    tonic: int  # pitch class 0..11
    name: str  # canonical scale name, a key of SCALES
    label: str  # as written back to the user, e.g. "F# major"
    key_signature: str | None  # a MIDI key signature (mido spelling: "Eb", "C#m"), None for chromatic

    @property
    def pitch_classes(self) -> frozenset[int]:
        return frozenset((self.tonic + i) % 12 for i in SCALES[self.name])

    def contains(self, pitch: int) -> bool:
        return pitch % 12 in self.pitch_classes


def parse_time_signature(text: str | None) -> tuple[int, int] | None:
    """'4/4' -> (4, 4); 'free' (or None) -> None, i.e. the model chooses the metre bar by bar."""
    if text is None or str(text).strip().lower() in ("free", "any", "model"):
        return None
    try:
        num, den = (int(x) for x in str(text).strip().split("/"))
    except ValueError:
        raise ValueError(f"time signature must look like 4/4 or 6/8 (or 'free'), got {text!r}") from None
    return num, den


def parse_key(text: str) -> Scale:
    """``"C minor"``, ``"D dorian"``, ``"F# major"``, ``"A harmonic minor"``, ``"Bbm"``, ``"E♭"``...

    Raises ValueError with a message that says what is accepted."""
    s = " ".join(str(text).replace("♯", "#").replace("♭", "b").replace("-", " ").replace("_", " ").split())
    m = re.fullmatch(r"([A-Ga-g])([#b]?)(?:\s*(.*))?", s)
    scale = None
    if m:
        rest = (m.group(3) or "").lower()
        scale = SCALE_ALIASES.get(rest, rest if rest in SCALES else None)
    if not m or scale is None:
        raise ValueError(f"unknown key {text!r}: write a tonic A-G (with # or b) and a scale, e.g. 'C minor', "
                         f"'F# major', 'D dorian'; scales: {', '.join(SCALES)}")
    letter, acc = m.group(1).upper(), m.group(2)
    tonic = (PITCH_CLASSES[letter.lower()] + {"#": 1, "b": -1, "": 0}[acc]) % 12
    spelled = letter + acc
    if scale == "chromatic":
        sig = None
    elif scale in MINOR_SIGNATURE:
        sig = spelled + "m" if spelled + "m" in VALID_MINOR else MINOR_NAMES[tonic]
    elif scale == "major" or scale == "major pentatonic":
        sig = spelled if spelled in VALID_MAJOR else MAJOR_NAMES[tonic]
    else:  # church modes share the signature of their relative major
        sig = MAJOR_NAMES[(tonic - MODE_OFFSET[scale]) % 12]
    return Scale(tonic, scale, f"{spelled} {scale}", sig)


PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Krumhansl & Kessler (1982) probe-tone key profiles, tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
