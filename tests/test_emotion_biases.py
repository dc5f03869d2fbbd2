"""engine.model.filters.emotion: the soft biases lean where the plan says and leave the rest alone."""
import numpy as np

from engine.model.controls import MusicalControls
from engine.model.filters import emotion as biases
from engine.emotion.attributes import LEGATO, apply_attributes, attributes_for
from engine.model.filters.emotion import EmotionBias
from engine.music.tokenizer import Tokenizer

TOK = Tokenizer()


def _pitch_bias(**controls):
    b = EmotionBias(TOK, MusicalControls(**controls))
    pitches = np.array([TOK.groups.pitch[i] for i in b.pitch], float)
    return pitches, (np.zeros(len(pitches)) if b.pitch_bias is None else b.pitch_bias)


def test_register_reach_leaves_two_octaves_free_and_pushes_back_beyond():
    pitches, bias = _pitch_bias(target_register=60.0)
    inside = np.abs(pitches - 60) <= biases.REGISTER_REACH
    assert np.all(bias[inside] == 0.0)
    outside = pitches > 60 + biases.REGISTER_REACH
    assert outside.any() and np.all(np.diff(bias[outside]) < 0)  # further out, less likely
    far = pitches == 60 + biases.REGISTER_REACH + 2 * biases.REGISTER_FALLOFF
    assert np.allclose(bias[far], -2.0)  # two fall-offs beyond the reach: -d^2 / 2


def test_bias_strength_scales_and_zero_turns_it_off():
    _, one = _pitch_bias(target_register=60.0)
    _, two = _pitch_bias(target_register=60.0, bias_strength=2.0)
    assert np.allclose(two, 2 * one) and one.min() < 0
    assert not EmotionBias.wanted(MusicalControls(target_register=60.0, bias_strength=0.0))


def test_duration_bias_peaks_at_the_planned_length():
    b = EmotionBias(TOK, MusicalControls(target_note_beats=1.0))
    beats = np.array([TOK.groups.duration[i] for i in b.duration], float)
    assert np.argmax(b.duration_bias) == np.argmin(np.abs(np.log(beats)))  # the length nearest 1 beat


def test_plan_lengthens_notes_by_legato():
    plan = attributes_for(5.0, 5.0)
    c = apply_attributes(plan)
    assert LEGATO > 1 and np.isclose(c.target_note_beats, plan.note_seconds * plan.bpm / 60.0)
