"""Expression: velocities that move like a pianist's, learned from POP909's performances.

EIMG's clips (what the model learned its notes from) are constant-velocity, so the model on its
own plays one velocity. :class:`ExpressionFilter` replaces the Velocity logits of each note with
a performer's choice, made where the model picks the Velocity token (so files, the live port,
variations and every measurement see the same notes)::

    velocity ~ Normal(level + offsets(note) + walk(bar), note_sd), on the tokenizer's velocity bins

* ``level``: the emotion plan's velocity (``controls.target_velocity``), else the model's own
  choice (its most likely Velocity bin);
* ``offsets``: one fitted offset per value of each feature the engine can see at that moment
  (:func:`note_features`: metric position, notes already struck at this onset, pitch against the
  recent register, above everything sounding, the bar of a four-bar phrase, pitch band);
* ``walk``: a slow AR(1) walk over bars (phrase dynamics): each bar it moves by an innovation
  made from the previous bar's sampled deviations, so it is seeded by the sampler's own draws;
* ``note_sd``: the per-note spread left over.

Note lengths: the model's Duration choice is sampled at a higher temperature
(``DURATION_TEMPERATURE``), so lengths spread as a pianist's do instead of two or three values.

``controls.expression`` scales offsets, walk and spread (0: the model's own velocities). The table
is fitted by ``python -m training.fit_expression`` into ``expression.json`` beside this file.
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from engine.model.filters.state import PITCH, VELOCITY

EXPRESSION_FILE = Path(__file__).with_name("expression.json")
RECENT = 16  # notes in the recent register
MIN_SD = 2.0  # velocity units: the narrowest per-note spread
DURATION_TEMPERATURE = 1.5  # flattens the model's peaked note lengths (log2 length SD 0.47 -> 0.68; EIMG 0.81)

# feature -> the names of its values (the offsets in the table follow this order)
FEATURES: dict[str, tuple[str, ...]] = {
    "metric": ("downbeat", "beat", "half beat", "off beat"),
    "struck_before": ("first", "second", "third", "fourth or later"),  # notes already struck at this onset
    "against_register": ("octave below", "below", "near", "above", "octave above"),  # pitch - recent mean
    "above_sounding": ("no", "yes"),  # higher than every note still sounding
    "phrase_bar": ("1", "2", "3", "4"),  # bar within a four-bar phrase
    "pitch_band": ("below C3", "C3-B3", "C4-B4", "C5 and up"),
}


def note_features(pitch: int, beat_in_bar: float, bar: int, struck_before: int,
                  recent: Sequence[int], sounding: Sequence[int]) -> tuple[int, ...]:
    """The index of each feature's value for a note about to be struck (see :data:`FEATURES`).

    ``beat_in_bar`` in quarter-note beats from the bar line; ``bar`` counted from the piece's
    first; ``recent`` the pitches of the last notes before it (oldest first); ``sounding`` the
    pitches still sounding at its onset (those struck with it included)."""
    frac = beat_in_bar % 1.0
    metric = 0 if beat_in_bar < 1e-6 else 1 if frac < 1e-6 else 2 if abs(frac - 0.5) < 1e-6 else 3
    if len(recent):
        d = pitch - float(np.mean(recent[-RECENT:]))
        reg = 0 if d <= -12 else 1 if d <= -4 else 2 if d < 4 else 3 if d < 12 else 4
    else:
        reg = 2
    top = int(all(pitch > p for p in sounding))
    band = 0 if pitch < 48 else 1 if pitch < 60 else 2 if pitch < 72 else 3
    return metric, min(struck_before, 3), reg, top, bar % 4, band


def state_features(state) -> tuple[int, ...]:
    """:func:`note_features` of the note whose Pitch token ``state`` has just read (a
    :class:`engine.model.filters.state.MusicState`): what the filter and the fit both see."""
    now, dec = state.now, state.decoder
    return note_features(state.pending_pitch, now - dec.bar_beat, max(dec.current_bar, 0),
                         len(state.chord) if state.chord_beat == now else 0,
                         list(state.recent_pitches)[-RECENT:], state.sounding_pitches())


@lru_cache(maxsize=4)
def load_expression(path: str | Path = EXPRESSION_FILE) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no expression table at {path}: run `python -m training.fit_expression`") from None


class Expression:
    """The fitted table as numbers: offsets per feature value, the bar walk, the per-note spread."""

    def __init__(self, table: dict):
        self.offsets = [np.asarray(table["offsets"][name], np.float64) for name in FEATURES]
        self.walk_sd = float(table["bar_walk"]["sd"])
        self.walk_rho = float(np.clip(table["bar_walk"]["lag1"], 0.0, 0.99))
        self.note_sd = float(table["note_sd"])

    def offset(self, features: Sequence[int]) -> float:
        return float(sum(o[i] for o, i in zip(self.offsets, features)))

    def next_walk(self, walk: float, deviations: Sequence[float], scale: float = 1.0) -> float:
        """The walk of the next bar: AR(1) with an innovation from last bar's standardised mean deviation."""
        sd = max(self.note_sd * scale, MIN_SD)
        z = float(np.clip(sum(deviations) / (sd * math.sqrt(len(deviations))), -3, 3)) if deviations else 0.0
        return self.walk_rho * walk + math.sqrt(1 - self.walk_rho ** 2) * self.walk_sd * scale * z


class ExpressionFilter:
    """The Velocity logits of each note from :class:`Expression` (see the module docstring).

    A :class:`engine.model.filters.locks.StateFilter`; it keeps its walk in ``state.memory`` so
    that new controls (a new filter every bar the plan changes) continue the same phrase."""

    @staticmethod
    def wanted(controls) -> bool:
        return controls.expression > 0

    def __init__(self, tokenizer, controls, table: dict | None = None):
        g = tokenizer.groups
        self.ids = np.asarray(sorted(g.velocity), np.int64)
        self.values = np.asarray([g.velocity[i] for i in self.ids], np.float64)
        self.model = Expression(table or load_expression())
        self.scale = float(controls.expression)
        self.level = controls.target_velocity
        self.durations = np.asarray(sorted(tokenizer.groups.duration), np.int64)
        self.duration_scale = 1.0 / (1.0 + (DURATION_TEMPERATURE - 1.0) * self.scale)

    def _memory(self, state) -> dict:
        m = state.memory.setdefault("expression", {"walk": 0.0, "bar": None, "deviations": [], "mu": None, "notes": 0})
        if m["mu"] is not None and state.notes > m["notes"]:  # the note we shaped has been struck
            m["deviations"].append(state.last_velocity - m["mu"])
            m["mu"] = None
        bar = state.decoder.current_bar
        if m["bar"] is None:
            m["bar"] = bar
        elif bar != m["bar"]:
            for _ in range(min(bar - m["bar"], 8)):
                m["walk"] = self.model.next_walk(m["walk"], m["deviations"], self.scale)
                m["deviations"] = []
            m["bar"] = bar
        return m

    def apply(self, logits: np.ndarray, state=None) -> None:  # noqa: D102
        if state is not None and state.last == VELOCITY:
            d = logits[self.durations]
            logits[self.durations] = np.where(np.isfinite(d), (d - d[np.isfinite(d)].max(initial=0.0)) * self.duration_scale, -np.inf)
            return
        if state is None or state.last != PITCH or state.pending_pitch is None:
            return
        m = self._memory(state)
        feats = state_features(state)
        live = np.isfinite(logits[self.ids])
        if not live.any():
            return
        level = self.level if self.level is not None else float(self.values[np.argmax(np.where(live, logits[self.ids], -np.inf))])
        mu = level + self.scale * (self.model.offset(feats) + m["walk"])
        sd = max(self.model.note_sd * self.scale, MIN_SD)
        logits[self.ids] = np.where(live, -0.5 * ((self.values - mu) / sd) ** 2, -np.inf)
        m["mu"], m["notes"] = mu, state.notes
