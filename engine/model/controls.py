"""MusicalControls: what the user (or the emotion plan) asks of the music, validated once.

Hard locks (key/scale unless ``key_lock`` is off, pitch range, polyphony, density, tempo, metre) and soft targets
(density, velocity, register, note length, tonality) that :func:`engine.model.filters.build_masks`
turns into logit filters. Frozen, so a stream can hold one safely while another is planned.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from engine.music.theory import Scale, parse_key

@dataclass(frozen=True)
class MusicalControls:
    key: str | None = None  # the key, e.g. "C minor"; None = no key (every pitch, no tonal profile)
    key_lock: bool = True  # True: only the key's pitches; False: the key only leans the pitches (tonal_bias)
    pitch_range: tuple[int, int] = (21, 108)  # lowest and highest MIDI pitch, inclusive
    max_polyphony: int | None = None  # most notes sounding at once
    density: float | None = None  # most note onsets per beat (quarter note)
    bpm: float | None = None  # lock Tempo tokens to the bin nearest this tempo
    time_signature: tuple[int, int] | None = None  # lock the metre, e.g. (4, 4)
    # soft targets (engine.emotion.attributes fills them from valence/arousal): logit biases, not locks
    target_density: float | None = None  # note onsets per beat the stream is nudged towards
    target_velocity: float | None = None  # mean velocity (1-127)
    target_register: float | None = None  # mean MIDI pitch
    target_note_beats: float | None = None  # typical note length in beats
    tonal_bias: float = 0.0  # weight of the key's Krumhansl-Kessler profile on the pitches (needs ``key``)
    bias_strength: float = 1.0  # scales every soft bias (0 = targets off)
    expression: float = 1.0  # a pianist's velocities (engine.model.filters.expression), scaled; 0 = the model's own
    sanity: bool = True  # the sanity rules (SanityFilter): off only for tests of the bare model

    def __post_init__(self):
        if self.key is not None:
            parse_key(self.key)
        try:
            lo, hi = (int(x) for x in self.pitch_range)
        except (TypeError, ValueError):
            raise ValueError(f"pitch_range must be two MIDI pitches (low, high), got {self.pitch_range!r}") from None
        if not (0 <= lo <= hi <= 127):
            raise ValueError(f"pitch_range must satisfy 0 <= low <= high <= 127, got {self.pitch_range!r}")
        object.__setattr__(self, "pitch_range", (lo, hi))
        if self.max_polyphony is not None and (int(self.max_polyphony) != self.max_polyphony or self.max_polyphony < 1):
            raise ValueError(f"max_polyphony must be a whole number >= 1, got {self.max_polyphony!r}")
        if self.density is not None and not (0 < self.density < math.inf):
            raise ValueError(f"density must be a positive number of notes per beat, got {self.density!r}")
        if self.bpm is not None and not (0 < self.bpm < math.inf):
            raise ValueError(f"bpm must be a positive number, got {self.bpm!r}")
        if self.time_signature is not None:
            try:
                num, den = (int(x) for x in self.time_signature)
            except (TypeError, ValueError):
                raise ValueError(f"time_signature must be (numerator, denominator), got {self.time_signature!r}") from None
            object.__setattr__(self, "time_signature", (num, den))
        for name in ("target_density", "target_velocity", "target_register", "target_note_beats"):
            x = getattr(self, name)
            if x is not None and not (0 < x < math.inf):
                raise ValueError(f"{name} must be a positive number, got {x!r}")
        if not (0 <= self.tonal_bias < math.inf) or not (0 <= self.bias_strength < math.inf):
            raise ValueError("tonal_bias and bias_strength must be numbers >= 0")
        if not (0 <= self.expression <= 4):
            raise ValueError(f"expression must be a number from 0 to 4, got {self.expression!r}")

    @property
    def scale(self) -> Scale | None:
        return None if self.key is None else parse_key(self.key)

    @property
    def locked_scale(self) -> Scale | None:
        """The scale the pitch mask keeps to: the key when it is locked, else None (every pitch)."""
        return self.scale if self.key_lock else None
