"""Soft logit biases towards planned musical attributes (targets in engine.controls.MusicalControls).

A bias adds to the model's logits instead of forbidding tokens, so the model still chooses the
notes, but its choices lean towards the target (a Gaussian bias multiplies the model's
distribution by a Gaussian around the target):

* velocity: ``-(v - target)^2 / (2 * 14^2)`` on the Velocity tokens;
* register: ``-(p - target)^2 / (2 * 12^2)`` on the Pitch tokens;
* note length: ``-(ln d - ln target)^2 / (2 * 0.6^2)`` on the Duration tokens;
* tonality: ``tonal_bias * ln(profile / mean profile)`` on the Pitch tokens, with the
  Krumhansl-Kessler profile of the locked key, so the tonic and its triad carry the key
  (a relative major and minor share their pitches; only this tells them apart);
* density: ``gain * clip(ln(target rate / recent rate), -2, 2)`` on every Pitch token while a
  new note may start, the recent rate counting onsets in the last 4 beats.

Everything is scaled by ``bias_strength``. Hard masks (grammar, locks, sanity) come after.
"""
from __future__ import annotations

import math

import numpy as np

from engine.metrics import KK_MAJOR, KK_MINOR

VELOCITY_SIGMA = 14.0
REGISTER_SIGMA = 12.0
LOG_DURATION_SIGMA = 0.6
DENSITY_GAIN = 1.5
DENSITY_WINDOW = 4.0  # beats


class EmotionBias:
    """The biases of the module docstring, as a :class:`engine.controls.StateFilter`."""

    @staticmethod
    def wanted(controls) -> bool:
        targets = (controls.target_density, controls.target_velocity, controls.target_register,
                   controls.target_note_beats)
        return controls.bias_strength > 0 and (any(t is not None for t in targets)
                                               or (controls.tonal_bias > 0 and controls.key is not None))

    def __init__(self, tokenizer, controls):
        g = tokenizer.groups
        k = float(controls.bias_strength)
        self.pitch = np.asarray(sorted(g.pitch), np.int64)
        pitches = np.asarray([g.pitch[i] for i in self.pitch], np.float64)
        pitch_bias = np.zeros(len(self.pitch))
        if controls.target_register is not None:
            pitch_bias -= k * 0.5 * ((pitches - controls.target_register) / REGISTER_SIGMA) ** 2
        scale = controls.scale
        if controls.tonal_bias > 0 and scale is not None and scale.name != "chromatic":
            from engine.controls import MINOR_SIGNATURE

            prof = KK_MINOR if scale.name in MINOR_SIGNATURE else KK_MAJOR
            rel = np.log(prof / prof.mean())
            pitch_bias += k * controls.tonal_bias * rel[((pitches.astype(int) - scale.tonic) % 12)]
        self.pitch_bias = pitch_bias if pitch_bias.any() else None
        self.velocity = self.velocity_bias = None
        if controls.target_velocity is not None:
            self.velocity = np.asarray(sorted(g.velocity), np.int64)
            v = np.asarray([g.velocity[i] for i in self.velocity], np.float64)
            self.velocity_bias = -k * 0.5 * ((v - controls.target_velocity) / VELOCITY_SIGMA) ** 2
        self.duration = self.duration_bias = None
        if controls.target_note_beats is not None:
            self.duration = np.asarray(sorted(g.duration), np.int64)
            d = np.asarray([g.duration[i] for i in self.duration], np.float64)
            self.duration_bias = -k * 0.5 * ((np.log(d) - math.log(controls.target_note_beats)) / LOG_DURATION_SIGMA) ** 2
        self.target_density = controls.target_density
        self.gain = k * DENSITY_GAIN

    def density_bias(self, state) -> float:
        """The shift of every Pitch logit that steers the onset rate towards the target."""
        now = state.now
        span = min(DENSITY_WINDOW, max(now, 1.0))
        start = now - span
        count = 0
        for t in reversed(state.recent):
            if t < start:
                break
            count += 1
        rate = max(count, 0.25) / span
        return self.gain * float(np.clip(math.log(self.target_density / rate), -2.0, 2.0))

    def apply(self, logits: np.ndarray, state=None) -> None:  # noqa: D102
        if self.velocity_bias is not None:
            logits[self.velocity] += self.velocity_bias
        if self.duration_bias is not None:
            logits[self.duration] += self.duration_bias
        if self.pitch_bias is not None:
            logits[self.pitch] += self.pitch_bias
        if self.target_density is not None and state is not None and state.notes > 0:
            logits[self.pitch] += self.density_bias(state)
