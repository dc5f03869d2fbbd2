"""The sanity rules every stream keeps, whatever the sampling (temperature, emotion strength, VA).

:class:`SanityFilter` is a hard logit mask (``-inf``) that :func:`engine.model.filters.build_masks`
appends last, after the model's logits, the guidance and every soft bias, so nothing can undo it:

* tempo: only Tempo tokens inside ``TEMPO_RANGE`` (50-190 BPM), and one tempo per piece: the
  piece says its tempo on its first Position (the model picks it, in range), then only that
  tempo may follow, so a new tempo comes only from the user, the DAW or a ramp
  (:func:`ramp_bpm`) setting the ``bpm`` lock;
* at most ``MAX_SOUNDING`` notes sounding at once;
* at most ``MAX_NOTES_PER_SECOND`` onsets in any beat (at the tempo in force);
* no pitch struck twice at one position, at most ``MAX_CHORD`` notes at one position; with the
  grammar's forward-only Positions this bounds the tokens of every bar, so a bar cannot loop.

``Bar`` and the Positions are never masked here, so some token always stays allowed.
"""
from __future__ import annotations

import math

import numpy as np

from engine.model.sampling import NEG_INF

from engine.model.filters.state import POSITION

TEMPO_RANGE = (50.0, 190.0)
MAX_SOUNDING = 8
MAX_CHORD = 6
MAX_NOTES_PER_SECOND = 16.0
DEFAULT_BPM = 120.0  # what a file without a Tempo token plays at
RAMP_PER_BAR = 0.04  # a ramp moves the tempo at most 4 % per bar


def clamp_bpm(bpm: float) -> float:
    return float(min(max(bpm, TEMPO_RANGE[0]), TEMPO_RANGE[1]))


def ramp_bpm(current: float, target: float, bars: float = 1.0, per_bar: float = RAMP_PER_BAR,
             far: float = 0.15) -> float:
    """The next bar's tempo on a slow ramp from ``current`` towards ``target``: unchanged while the
    two are within ``far`` (15 %), else at most ``per_bar`` (4 %) per bar, and inside TEMPO_RANGE."""
    target = clamp_bpm(target)
    ratio = target / current
    if abs(math.log(ratio)) <= math.log1p(far) and current == clamp_bpm(current):
        return current
    step = math.log1p(per_bar) * bars
    return clamp_bpm(current * math.exp(max(-step, min(step, math.log(ratio)))))


class SanityFilter:
    """The rules of the module docstring, as a :class:`engine.model.filters.locks.StateFilter`."""

    def __init__(self, tokenizer, controls):
        g = tokenizer.groups
        self.pitch = np.asarray(sorted(g.pitch), np.int64)
        self.pitch_id = {p: i for i, p in g.pitch.items()}
        self.tempo_bpm = dict(g.tempo)
        self.tempo_out = np.asarray(sorted(i for i, b in g.tempo.items()
                                           if not TEMPO_RANGE[0] - 1e-6 <= b <= TEMPO_RANGE[1] + 1e-6), np.int64)
        self.tempo_ids = np.asarray(sorted(g.tempo), np.int64)
        self.tempo_in = np.setdiff1d(self.tempo_ids, self.tempo_out)
        self.user_bpm = controls.bpm

    def _bpm(self, state) -> float:
        if self.user_bpm is not None:
            return float(self.user_bpm)
        return float(state.decoder.tempo) if state.decoder.tempo else DEFAULT_BPM

    def apply(self, logits: np.ndarray, state=None) -> None:  # noqa: D102
        # tempo: inside the range, and the tempo in force once there is one
        if self.user_bpm is None:
            if state.decoder.tempo is None and state.notes == 0 and state.last == POSITION:
                keep = logits[self.tempo_in].copy()  # the opening Position: the tempo comes first
                logits[:] = NEG_INF
                logits[self.tempo_in] = keep if np.isfinite(keep).any() else 0.0
                return
            if state.decoder.tempo is None:
                logits[self.tempo_ids] = NEG_INF
            else:
                keep = [i for i in self.tempo_ids if abs(self.tempo_bpm[i] - state.decoder.tempo) < 1e-6]
                saved = logits[keep].copy()
                logits[self.tempo_ids] = NEG_INF
                logits[keep] = saved
        # onsets: polyphony, onsets per beat, chord size, repeated pitch
        if state.notes == 0 and not state.recent:
            return  # the grammar makes the first note; nothing sounds yet
        now = state.now
        if state.active_notes() >= MAX_SOUNDING:
            logits[self.pitch] = NEG_INF
            return
        cap = max(1, math.floor(MAX_NOTES_PER_SECOND * 60.0 / self._bpm(state)))
        start = math.floor(now)
        count = 0
        for t in reversed(state.recent):
            if t < start:
                break
            count += 1
        if count >= cap:
            logits[self.pitch] = NEG_INF
            return
        if state.chord_beat == now and state.chord:
            if len(state.chord) >= MAX_CHORD:
                logits[self.pitch] = NEG_INF
                return
            logits[[self.pitch_id[p] for p in state.chord if p in self.pitch_id]] = NEG_INF
