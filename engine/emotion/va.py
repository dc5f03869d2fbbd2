"""Valence-arousal scales: the one place where they are normalised.

Moodroll works on the paper's 1-9 scale (Kundu, Singh & Iwahori, 2024; the EIMG labels
use it). Every other scale is mapped onto it linearly, here and only here:

- OASIS ratings: 1-7 Likert means            -> 1 + (x - 1) * 8 / 6
- VGMIDI labels: -1 / +1 (sign of the mean)  -> 5 + 4 * x   (so -1 -> 1, +1 -> 9)
- EIMG labels:   already 1-9                 -> unchanged
- "unit" (-1..1), what sliders and models use internally -> 5 + 4 * x
"""
from __future__ import annotations

import numpy as np

VA_MIN, VA_MAX, VA_MID = 1.0, 9.0, 5.0

# (low, high) of each source scale; mapped linearly onto [VA_MIN, VA_MAX].
SCALES: dict[str, tuple[float, float]] = {
    "paper": (1.0, 9.0),
    "eimg": (1.0, 9.0),
    "oasis": (1.0, 7.0),
    "vgmidi": (-1.0, 1.0),
    "unit": (-1.0, 1.0),
}


def to_paper_scale(x, scale: str):
    """Map a value (or array) on ``scale`` onto the paper's 1-9 scale."""
    try:
        lo, hi = SCALES[scale]
    except KeyError:
        raise ValueError(f"unknown VA scale {scale!r}; known: {sorted(SCALES)}") from None
    x = np.asarray(x, dtype=np.float64)
    out = VA_MIN + (x - lo) * (VA_MAX - VA_MIN) / (hi - lo)
    return float(out) if out.ndim == 0 else out


def from_paper_scale(x, scale: str):
    """Inverse of :func:`to_paper_scale`."""
    try:
        lo, hi = SCALES[scale]
    except KeyError:
        raise ValueError(f"unknown VA scale {scale!r}; known: {sorted(SCALES)}") from None
    x = np.asarray(x, dtype=np.float64)
    out = lo + (x - VA_MIN) * (hi - lo) / (VA_MAX - VA_MIN)
    return float(out) if out.ndim == 0 else out


def check_va(valence: float, arousal: float) -> tuple[float, float]:
    """Validate a user-given VA point on the 1-9 scale; returns it as floats."""
    v, a = float(valence), float(arousal)
    for name, x in (("valence", v), ("arousal", a)):
        if not (VA_MIN <= x <= VA_MAX) or x != x:
            raise ValueError(f"{name} must be between {VA_MIN:g} and {VA_MAX:g} (paper scale), got {x:g}")
    return v, a


def quadrant(valence: float, arousal: float) -> str:
    """A human word for a VA point (Russell's circumplex quadrants)."""
    hi_v, hi_a = valence >= VA_MID, arousal >= VA_MID
    return {(True, True): "happy / excited", (True, False): "calm / content",
            (False, True): "tense / angry", (False, False): "sad / gloomy"}[(hi_v, hi_a)]
