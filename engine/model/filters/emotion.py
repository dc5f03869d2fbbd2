"""Soft logit biases towards planned musical attributes (targets in engine.model.controls.MusicalControls).

A bias adds to the model's logits instead of forbidding tokens, so the model still chooses the
notes, but its choices lean towards the target (a Gaussian bias multiplies the model's
distribution by a Gaussian around the target):

* velocity (only with ``expression`` 0; else :mod:`.expression` chooses): ``-(v - target)^2 / (2 * 8^2)`` on the Velocity tokens, and a bound: only the
  velocities within ``VELOCITY_BOUND`` of the target (the model's velocity is very peaked);
* register: an exponential tilt ``beta * p`` of the Pitch tokens with ``beta = (target - mean of
  the last 16 pitches) / 12^2``: it moves the mean pitch without narrowing the spread (a
  Gaussian around the target would squeeze the melody onto a few pitches);
* register spread: ``-d^2 / (2 * 6^2)`` on the Pitch tokens, ``d`` = semitones beyond two
  octaves from the target: without it, fast music leapt across the whole keyboard (within a
  12-s clip at arousal 8: pitch std 23-31, range 84 semitones; EIMG's clips: std 12 median,
  range 45 median, 60 at the 90th percentile); inside the two octaves nothing changes;
* note length: ``-(ln d - ln target)^2 / (2 * 0.6^2)`` on the Duration tokens;
* tonality: ``tonal_bias * ln(profile / mean profile)`` on the Pitch tokens, with the
  Krumhansl-Kessler profile of the key (locked or only planned), so the tonic and its triad carry the key
  (a relative major and minor share their pitches; only this tells them apart);
* density: ``b = gain * clip(ln(target rate / recent rate), -3, 3)`` added to every Pitch token
  and taken, ``b`` per beat of rest, from ``Bar`` (the rest of the bar) and every ``Position``
  (a rest inside the bar), the recent rate counting onsets in the last 8 beats (at least 2): a stream playing too little leans towards notes, one playing too much towards rests;
  and a bound: while the rate is below half the target, a bar with no note yet cannot end.

Everything is scaled by ``bias_strength``. Hard masks (grammar, locks, sanity) come after.
"""
from __future__ import annotations

import math

import numpy as np

from engine.music.theory import KK_MAJOR, KK_MINOR

VELOCITY_SIGMA = 8.0  # one velocity bin
VELOCITY_BOUND = 12.0
REGISTER_SIGMA = 12.0
REGISTER_MEMORY = 16  # notes
REGISTER_REACH = 24.0  # semitones either side of the target register left free (0: no limit)
REGISTER_FALLOFF = 6.0  # semitones: the Gaussian fall-off beyond that reach
MAX_TILT = 0.08  # nats per semitone
LOG_DURATION_SIGMA = 0.6
DENSITY_GAIN = 3.0
DENSITY_WINDOW = 8.0  # beats


class EmotionBias:
    """The biases of the module docstring, as a :class:`engine.model.filters.locks.StateFilter`."""

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
        self.pitches, self.target_register, self.k = pitches - 64.0, controls.target_register, k
        scale = controls.scale
        if controls.tonal_bias > 0 and scale is not None and scale.name != "chromatic":
            from engine.music.theory import MINOR_SIGNATURE

            prof = KK_MINOR if scale.name in MINOR_SIGNATURE else KK_MAJOR
            rel = np.log(prof / prof.mean())
            pitch_bias += k * controls.tonal_bias * rel[((pitches.astype(int) - scale.tonic) % 12)]
        if controls.target_register is not None and REGISTER_REACH > 0:
            beyond = np.maximum(np.abs(pitches - controls.target_register) - REGISTER_REACH, 0.0)
            pitch_bias += -k * 0.5 * (beyond / REGISTER_FALLOFF) ** 2
        self.pitch_bias = pitch_bias if pitch_bias.any() else None
        self.velocity = self.velocity_bias = None
        if controls.target_velocity is not None and controls.expression == 0:  # else the expression filter's
            self.velocity = np.asarray(sorted(g.velocity), np.int64)
            v = np.asarray([g.velocity[i] for i in self.velocity], np.float64)
            self.velocity_bias = -k * 0.5 * ((v - controls.target_velocity) / VELOCITY_SIGMA) ** 2
            near = np.abs(v - controls.target_velocity) <= VELOCITY_BOUND
            near[np.argmin(np.abs(v - controls.target_velocity))] = True
            self.velocity_bias[~near] = -np.inf
        self.duration = self.duration_bias = None
        if controls.target_note_beats is not None:
            self.duration = np.asarray(sorted(g.duration), np.int64)
            d = np.asarray([g.duration[i] for i in self.duration], np.float64)
            self.duration_bias = -k * 0.5 * ((np.log(d) - math.log(controls.target_note_beats)) / LOG_DURATION_SIGMA) ** 2
        self.target_density = controls.target_density
        self.gain = k * DENSITY_GAIN
        self.bar = g.bar
        self.position = np.asarray(sorted(g.position), np.int64)
        self.position_beats = np.asarray([g.position[i] for i in self.position], np.float64) / tokenizer.positions_per_beat

    def density_bias(self, state) -> float:
        """The shift of every Pitch logit that steers the onset rate towards the target."""
        now = state.now
        span = min(DENSITY_WINDOW, max(now, 2.0))
        start = now - span
        count = 0
        for t in reversed(state.recent):
            if t < start:
                break
            count += 1
        rate = max(count, 0.25) / span
        return self.gain * float(np.clip(math.log(self.target_density / rate), -3.0, 3.0))

    def register_tilt(self, state) -> float:
        """beta: the tilt (nats per semitone) that moves the recent mean pitch to the target."""
        recent = state.recent_pitches
        if len(recent) < 4:
            return 0.0
        mean = sum(list(recent)[-REGISTER_MEMORY:]) / min(len(recent), REGISTER_MEMORY)
        return float(np.clip(self.k * (self.target_register - mean) / REGISTER_SIGMA ** 2, -MAX_TILT, MAX_TILT))

    def apply(self, logits: np.ndarray, state=None) -> None:  # noqa: D102
        if self.velocity_bias is not None:
            logits[self.velocity] += self.velocity_bias
        if self.duration_bias is not None:
            logits[self.duration] += self.duration_bias
        if self.pitch_bias is not None:
            logits[self.pitch] += self.pitch_bias
        if self.target_register is not None and state is not None:
            logits[self.pitch] += self.register_tilt(state) * self.pitches
        if self.target_density is not None and state is not None and state.notes > 0:
            b = self.density_bias(state)
            logits[self.pitch] += b
            logits[self.bar] -= b * max(state.decoder.next_bar_beat - state.now, 0.5)
            skip = self.position_beats + (state.decoder.bar_beat - state.now)  # beats each Position rests
            logits[self.position] -= b * np.maximum(skip, 0.0)
            if b >= self.gain * math.log(2.0) and (not state.recent or state.recent[-1] < state.decoder.bar_beat) \
                    and state.decoder.beat < state.decoder.next_bar_beat - 0.25:
                logits[self.bar] = -np.inf  # too sparse: this bar gets a note (the grammar leaves a Position)
