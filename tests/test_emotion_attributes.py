"""engine.emotion.attributes and planner: the fitted VA -> attribute table moves the way EIMG does
(monotone in VA, as fitted), the user's own locks win, the summary line, one tempo per piece."""
import json

import numpy as np
import pytest

from engine.model.controls import MusicalControls
from engine.emotion.attributes import ATTRIBUTE_FILE, apply_attributes, attributes_for, describe, tonic_for, NAMES
from engine.emotion.planner import EmotionPlanner
from engine.model.filters import allowed_pitches


GRID = np.linspace(1, 9, 9)


def test_table_is_fitted_on_the_train_split():
    t = json.loads(ATTRIBUTE_FILE.read_text())
    assert t["data"] == "EIMG" and "train" in t["split"] and t["clips"] > 2000
    at = t["attributes"]
    # what EIMG says (and what the judge and the issue rely on): faster, denser, louder, shorter notes
    # with arousal; more major and higher with valence
    assert at["log_notes_per_second"]["coef"][2] > 0 and at["bpm"]["coef"][2] > 0 and at["velocity"]["coef"][2] > 0
    assert at["log_note_seconds"]["coef"][2] < 0 and at["register"]["coef"][1] > 0
    assert at["major"]["logistic"][1] > 0


@pytest.mark.parametrize("name", ["bpm", "notes_per_second", "velocity", "register", "note_seconds", "p_major"])
def test_plan_is_monotone_in_va_as_fitted(name):
    at = json.loads(ATTRIBUTE_FILE.read_text())["attributes"]
    key = {"notes_per_second": "log_notes_per_second", "note_seconds": "log_note_seconds"}.get(name, name)
    coef = at["major"]["logistic"][1:] if name == "p_major" else at[key]["coef"][1:]
    for d, sign in enumerate(np.sign(coef)):
        for fixed in (2.0, 5.0, 8.0):
            values = [getattr(attributes_for(*((x, fixed) if d == 0 else (fixed, x))), name) for x in GRID]
            steps = np.diff(values) * sign
            assert np.all(steps >= -1e-9), (name, d, values)
            assert values[0] != values[-1] or name in ("register",)


def test_mode_follows_valence_and_describe():
    sad, happy = attributes_for(1.5, 5.0), attributes_for(8.5, 5.0)
    assert sad.mode == "minor" and happy.mode == "major"
    text = describe(sad)
    assert text.startswith(sad.key + " · ") and text.endswith(sad.density_word) and f"{sad.bpm:.0f} BPM" in text
    assert attributes_for(5, 1).density_word == "sparse" and attributes_for(8, 9).density_word == "busy"


def test_user_locks_override():
    plan = attributes_for(2.0, 8.0)
    user = MusicalControls(key="D dorian", bpm=70, density=1.0, max_polyphony=2, target_velocity=30,
                           pitch_range=(40, 80))
    c = apply_attributes(plan, user)
    assert (c.key, c.bpm, c.density, c.max_polyphony, c.target_velocity, c.pitch_range) == \
        ("D dorian", 70, 1.0, 2, 30, (40, 80))
    free = apply_attributes(plan, MusicalControls())
    assert free.key == plan.key and free.bpm == plan.bpm and free.max_polyphony == plan.max_polyphony
    assert free.target_density == pytest.approx(plan.notes_per_second * 60 / plan.bpm)


def test_planner_keeps_one_tempo_and_ramps_slowly():
    p = EmotionPlanner(MusicalControls(time_signature=(4, 4)))
    first = p.retarget(2.0, 2.0).bpm
    assert p.on_bar() is None  # at the planned tempo: nothing changes bar by bar
    c = p.retarget(8.0, 8.0)  # far away: the key and density change at once, the tempo ramps
    assert c.bpm == first and c.key != "A minor" or c.bpm == first
    bpms = [first]
    while (step := p.on_bar()) is not None:
        bpms.append(step.bpm)
    assert len(bpms) > 10 and max(np.array(bpms[1:]) / np.array(bpms[:-1])) <= 1.041
    assert abs(bpms[-1] - p.plan.bpm) / p.plan.bpm <= 0.15
    locked = EmotionPlanner(MusicalControls(bpm=90))
    assert locked.retarget(9, 9).bpm == 90 and locked.on_bar() is None
    off = EmotionPlanner(MusicalControls(key="C minor"), enabled=False)
    assert off.retarget(9, 9) == MusicalControls(key="C minor") and off.describe() == "automatic attributes off"


def test_the_emotion_picks_the_mode_and_the_take_any_of_12_tonics():
    keys = {EmotionPlanner(MusicalControls(), seed=s).retarget(v, 5.0).key for s in range(200) for v in (1.5, 8.5)}
    assert {k.split()[0] for k in keys if k.endswith("major")} == set(NAMES)
    assert {k.split()[0] for k in keys if k.endswith("minor")} == set(NAMES)
    a, b = EmotionPlanner(seed=7), EmotionPlanner(seed=7)
    assert a.signature == b.signature and a.retarget(2, 5).key == b.retarget(2, 5).key  # seeded: reproducible


def test_a_change_of_mode_inside_a_take_keeps_its_signature():
    p = EmotionPlanner(signature=2)  # D major's accidentals
    assert p.retarget(8.5, 5.0).key == "D major" and p.retarget(1.5, 5.0).key == "B minor"
    assert tonic_for("minor", 0) == 9 and attributes_for(1.5, 5.0, signature=0).key == "A minor"


def test_the_planned_key_leans_the_pitches_and_a_key_the_user_sets_locks_them():
    plan = attributes_for(8.5, 5.0, signature=0)
    free = apply_attributes(plan, MusicalControls())
    assert free.key == "C major" and not free.key_lock and free.locked_scale is None and free.tonal_bias > 0
    assert len(allowed_pitches(free)) == 88  # chromatic notes may appear: the tonal bias leans, it does not mask
    locked = apply_attributes(plan, MusicalControls(key="E minor"))
    assert locked.key_lock and locked.locked_scale.name == "minor"
    assert len(allowed_pitches(locked)) < 60 and all(p % 12 in (4, 6, 7, 9, 11, 0, 2) for p in allowed_pitches(locked))
