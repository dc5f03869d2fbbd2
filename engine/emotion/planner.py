"""EmotionPlanner: the controls a stream should run with as its emotion moves, one bar at a time.

Shared by ``moodroll generate`` (slideshows), ``moodroll live`` and the desktop app::

    planner = EmotionPlanner(user_controls)           # the user's own locks always win
    controls = planner.retarget(valence, arousal)     # new VA: key, density, velocity... at once
    controls = planner.on_bar()                       # each bar: None, or the next tempo step

The tempo is one per piece: a new VA whose planned tempo lies within 15 % of the current one
keeps the tempo; further away the tempo ramps there by at most 4 % per bar
(:func:`engine.model.filters.sanity.ramp_bpm`). A user (``--bpm``) or DAW tempo is never changed.
``enabled=False`` (``--no-attributes``) leaves the user's controls as they are.

The key's tonic is one per take too: ``signature`` (a major key's pitch class, 0-11) is drawn
once, from ``seed`` when given, and the emotion's mode sits on it (major: the signature's
tonic; minor: its relative minor), so a take may be in any of the 12 keys of either mode.
"""
from __future__ import annotations

import random
from dataclasses import replace

from engine.model.controls import MusicalControls
from engine.emotion.attributes import AttributePlan, apply_attributes, attributes_for, describe
from engine.model.filters.sanity import ramp_bpm


class EmotionPlanner:
    def __init__(self, user: MusicalControls = MusicalControls(), enabled: bool = True, fixed_tempo: bool = False,
                 *, seed: int | None = None, signature: int | None = None):
        """``fixed_tempo``: keep the first planned tempo for the whole piece (a video's grid).
        ``signature``: the take's key signature (see the module docstring); None draws one,
        from ``seed`` (None: the system's randomness)."""
        self.user, self.enabled, self.fixed_tempo = user, enabled, fixed_tempo
        self.signature = draw_signature(seed) if signature is None else int(signature) % 12
        self.plan: AttributePlan | None = None
        self.bpm: float | None = user.bpm  # the tempo in force
        self.controls = user

    def retarget(self, valence: float, arousal: float) -> MusicalControls:
        """Controls for a new VA point (the tempo stays, or starts a ramp)."""
        if not self.enabled:
            return self.user
        self.plan = attributes_for(valence, arousal, signature=self.signature)
        if self.bpm is None:
            self.bpm = self.plan.bpm
        elif self.user.bpm is None and not self.fixed_tempo:
            self.bpm = ramp_bpm(self.bpm, self.plan.bpm, bars=0)  # 0 bars: only the "near enough" check
        self.controls = self._controls()
        return self.controls

    def on_bar(self) -> MusicalControls | None:
        """At a bar line: the controls with the next tempo step, or None when nothing changes."""
        if not self.enabled or self.plan is None or self.user.bpm is not None or self.fixed_tempo:
            return None
        nxt = ramp_bpm(self.bpm, self.plan.bpm)
        if abs(nxt - self.bpm) < 1e-9:
            return None
        self.bpm = nxt
        self.controls = self._controls()
        return self.controls

    def _controls(self) -> MusicalControls:
        return apply_attributes(self.plan, replace(self.user, bpm=round(self.bpm, 2)))

    def describe(self) -> str:
        """``"E minor · 72 BPM · sparse"``, with the tempo in force."""
        if not self.enabled or self.plan is None:
            return "automatic attributes off"
        key = self.user.key or self.plan.key
        return f"{key} · {self.bpm:.0f} BPM · {self.plan.density_word}"


def draw_signature(seed: int | None = None) -> int:
    """A key signature (a major key's pitch class), uniform over the 12; seeded when ``seed`` is given."""
    rng = random.SystemRandom() if seed is None else random.Random(int(seed))
    return rng.randrange(12)


__all__ = ["EmotionPlanner", "describe", "draw_signature"]
