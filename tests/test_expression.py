"""engine.model.filters.expression: velocities and note lengths like a pianist's, fitted on POP909.

The fitted table moves the way performed piano does (a melody above the accompaniment is
louder); a generated take on the shipped model spreads its velocities as POP909's performers do
within four bars, repeats for its seed, keeps one phrase walk across a change of controls, and
``expression=0`` gives the model's own velocities back."""
from dataclasses import replace

import numpy as np
import pytest

from engine.emotion.planner import EmotionPlanner
from engine.model.controls import MusicalControls
from engine.model.filters.expression import FEATURES, Expression, load_expression, note_features
from engine.model.generator import Condition, MusicGenerator
from engine.model.sampling import SamplingOptions
from engine.music.events import decode_events, NOTE_ON

TABLE = load_expression()


def test_table_is_fitted_on_pop909_train_and_lifts_the_melody():
    assert TABLE["data"].startswith("POP909") and "train" in TABLE["split"] and TABLE["notes"] > 100_000
    assert list(TABLE["offsets"]) == list(FEATURES)
    reg = TABLE["offsets"]["against_register"]
    assert reg[-1] > reg[2] > reg[0]  # an octave above the recent register: louder; below: softer
    assert 4 <= TABLE["note_sd"] <= 20 and 0 < TABLE["bar_walk"]["lag1"] < 1


def test_note_features_read_metre_chord_and_register():
    assert note_features(71, 0.0, 5, 0, [60] * 16, []) == (0, 0, 3, 1, 1, 2)  # downbeat, first, above, top, bar 2
    assert note_features(48, 1.5, 0, 2, [60] * 16, [60, 64]) == (2, 2, 0, 0, 0, 1)


def test_the_walk_is_ar1_and_stays_put_without_notes():
    e = Expression(TABLE)
    assert e.next_walk(4.0, []) == pytest.approx(e.walk_rho * 4.0)
    assert e.next_walk(0.0, [30.0] * 8) > 0 > e.next_walk(0.0, [-30.0] * 8)


def _take(gen, seed, controls, bars=8):
    gen.set_controls(controls)
    gen.set_sampling(SamplingOptions(seed=seed, guidance=2.0))
    gen.reset()
    gen.set_condition(Condition(6.0, 6.0))
    ids = gen.generate_bars(bars)
    notes = [e for e in decode_events(gen.tokenizer, ids) if e.kind == NOTE_ON]
    return ids, np.array([e.velocity for e in notes], float), np.array([float(e.value) for e in notes])


@pytest.fixture(scope="module")
def shipped():
    return MusicGenerator(None, device="cpu", threads=1)


def test_a_shipped_take_spreads_its_velocities_like_a_performer(shipped):
    controls = EmotionPlanner(MusicalControls(time_signature=(4, 4)), seed=3).retarget(6.0, 6.0)
    lo, _, hi = TABLE["human_4bar"]["velocity_std_p10_50_90"]
    sds = []
    for seed in (1, 2, 3):
        ids, vel, _ = _take(shipped, seed, controls)
        sds.append(vel[: len(vel) // 2].std())  # about four bars
        assert len(np.unique(vel)) >= 4
    assert lo <= np.median(sds) <= hi, (sds, lo, hi)
    again, _, _ = _take(shipped, 1, controls)
    assert again == _take(shipped, 1, controls)[0]  # seeded: the same take
    _, own, _ = _take(shipped, 1, replace(controls, expression=0.0))
    assert own.std() < min(sds)  # the model alone: (nearly) one velocity


def test_note_lengths_spread_wider_than_the_models_own(shipped):
    controls = EmotionPlanner(MusicalControls(time_signature=(4, 4)), seed=4).retarget(4.0, 4.0)
    spread = lambda c: np.median([np.log2(_take(shipped, s, c)[2]).std() for s in (1, 2)])  # noqa: E731
    assert spread(controls) > spread(replace(controls, expression=0.0))


def test_a_change_of_controls_continues_the_phrase_walk(shipped):
    controls = EmotionPlanner(MusicalControls(time_signature=(4, 4)), seed=5).retarget(5.0, 7.0)
    _take(shipped, 9, controls, bars=4)
    walk = shipped.state.memory["expression"]["walk"]
    shipped.set_controls(replace(controls, target_velocity=40.0))
    assert shipped.state.memory["expression"]["walk"] == walk
    shipped.generate_bars(1)
    assert shipped.state.memory["expression"]["bar"] >= 4
