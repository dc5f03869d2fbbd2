"""The sanity rules (engine.model.filters.sanity) hold under adversarial sampling: random logits that
love notes, and the random-weight bundle at temperature 2, emotion strength 3, the corners of
the VA plane, attributes on and off. Checked on the decoded notes, over thousands of tokens."""
import math

import numpy as np
import pytest

from engine.model.controls import MusicalControls
from engine.emotion.planner import EmotionPlanner
from engine.model.filters.sanity import MAX_CHORD, MAX_NOTES_PER_SECOND, MAX_SOUNDING, TEMPO_RANGE, ramp_bpm
from engine.model.generator import Condition, MusicGenerator
from engine.model.sampling import SamplingOptions
from engine.music.events import NOTE_ON, TEMPO, decode_events
from engine.music.tokenizer import Tokenizer
from tests.test_controls import drive

CORNERS = [(1.0, 1.0), (1.0, 9.0), (9.0, 1.0), (9.0, 9.0)]


def check_sane(tok, ids, user_bpm=None):
    """Assert every rule on the events of ``ids``; returns the number of notes."""
    events = decode_events(tok, ids)
    tempi = [e.value for e in events if e.kind == TEMPO]
    if user_bpm is None:
        assert all(TEMPO_RANGE[0] - 1e-6 <= t <= TEMPO_RANGE[1] + 1e-6 for t in tempi), tempi
    assert len(set(tempi)) <= 1, tempi  # one tempo per piece
    bpm = user_bpm or (tempi[0] if tempi else 120.0)
    ons = [e for e in events if e.kind == NOTE_ON]
    start = np.array([e.beat for e in ons])
    end = start + np.array([float(e.value) for e in ons])
    keys = [(e.beat, e.pitch) for e in ons]
    assert len(keys) == len(set(keys))  # no pitch struck twice at one position
    _, per_position = np.unique(start, return_counts=True)
    assert per_position.max() <= MAX_CHORD
    assert max(int(((start <= t) & (end > t)).sum()) for t in start) <= MAX_SOUNDING
    per_beat = np.bincount(np.floor(start + 1e-9).astype(int))
    assert per_beat.max() <= max(1, math.floor(MAX_NOTES_PER_SECOND * 60 / bpm))
    return len(ons)


@pytest.fixture(scope="module")
def tok():
    return Tokenizer()


@pytest.mark.parametrize("va", CORNERS)
def test_random_logits_cannot_escape(tok, va):
    controls = EmotionPlanner(MusicalControls(time_signature=(4, 4))).retarget(*va)
    ids = drive(tok, controls, 2500, seed=int(va[0] * 10 + va[1]))
    assert check_sane(tok, ids, controls.bpm) > 100


def test_random_logits_without_attributes(tok):
    ids = drive(tok, MusicalControls(), 4000, seed=11)  # no locks at all: only the sanity rules
    assert check_sane(tok, ids) > 200


@pytest.mark.parametrize("attributes", [True, False], ids=["attributes", "bare"])
def test_model_at_temperature_2_strength_3(bundle, rt, attributes):
    for va in CORNERS:
        user = MusicalControls(time_signature=(4, 4))
        controls = EmotionPlanner(user, enabled=attributes).retarget(*va)
        gen = MusicGenerator(bundle, SamplingOptions(temperature=2.0, top_p=1.0, seed=3, guidance=3.0), controls,
                             Condition(*va), runtime=rt)
        ids = gen.generate(700)
        check_sane(bundle.tokenizer, ids, controls.bpm)


def test_tempo_ramp_is_slow_and_arrives():
    assert ramp_bpm(100, 110) == 100  # within 15 %: one tempo, unchanged
    bpm, steps = 60.0, 0
    while bpm != 180.0:
        nxt = ramp_bpm(bpm, 180.0)
        assert nxt / bpm <= 1.04 + 1e-9
        bpm, steps = nxt, steps + 1
        if abs(bpm - 180) / 180 <= 0.15:
            break
    assert steps > 20 and ramp_bpm(100, 400) <= 104 and ramp_bpm(300, 100) == TEMPO_RANGE[1]
