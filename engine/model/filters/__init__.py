"""Every logit filter of a decoding step, wired in one place by :func:`build_masks`.

In order: the emotion plan's soft biases (:mod:`.emotion`), the REMI grammar and the user's hard
locks (:mod:`.locks`: key, range, polyphony, density, tempo, metre), a pianist's velocities
(:mod:`.expression`, on the Velocity tokens the masks leave), then the sanity rules
(:mod:`.sanity`) last, so nothing can undo them. Each reads the :class:`.state.MusicState`.
"""
from __future__ import annotations

from typing import Sequence

from engine.model.controls import MusicalControls
from engine.model.filters.emotion import EmotionBias
from engine.model.filters.expression import ExpressionFilter
from engine.model.filters.locks import (DensityMask, PitchMask, PolyphonyMask, RemiGrammar, StateFilter, TempoLock,
                                        TimeSignatureLock)
from engine.model.filters.sanity import SanityFilter
from engine.music.tokenizer import Tokenizer


def build_masks(tokenizer: Tokenizer, controls: MusicalControls) -> list[StateFilter]:
    """The grammar plus one filter per control that is switched on."""
    masks: list[StateFilter] = [RemiGrammar(tokenizer), PitchMask(tokenizer, controls.locked_scale, controls.pitch_range)]
    if controls.max_polyphony is not None:
        masks.append(PolyphonyMask(tokenizer, controls.max_polyphony))
    if controls.density is not None:
        masks.append(DensityMask(tokenizer, controls.density))
    if controls.bpm is not None:
        masks.append(TempoLock(tokenizer, controls.bpm))
    if controls.time_signature is not None:
        masks.append(TimeSignatureLock(tokenizer, controls.time_signature))
    if EmotionBias.wanted(controls):
        masks.insert(1, EmotionBias(tokenizer, controls))  # biases first, then every hard mask
    if ExpressionFilter.wanted(controls):
        masks.append(ExpressionFilter(tokenizer, controls))
    if controls.sanity:
        masks.append(SanityFilter(tokenizer, controls))
    return masks


def allowed_pitches(controls: MusicalControls, pitches: Sequence[int] = range(21, 109)) -> list[int]:
    """The pitches the key lock and range let through (for user interfaces and tests)."""
    scale, (lo, hi) = controls.locked_scale, controls.pitch_range
    return [p for p in pitches if lo <= p <= hi and (scale is None or scale.contains(p))]
