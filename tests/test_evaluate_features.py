"""training/evaluate.py's predictor-free check: clip features and their correlations with VA."""
from __future__ import annotations

import math

import numpy as np
import symusic

from training.evaluate import FEATURES, clip_features, feature_correlations


def _score(pitches, qpm=120.0, velocity=80, step=240):
    s = symusic.Score(480)
    s.tempos.append(symusic.Tempo(0, qpm))
    t = symusic.Track(program=0)
    for i, p in enumerate(pitches):
        t.notes.append(symusic.Note(i * step, step, p, velocity))
    s.tracks.append(t)
    return s


C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60, 64, 67, 72]
A_MINOR = [57, 59, 60, 62, 64, 65, 68, 69, 64, 60, 57, 60, 64, 69]


def test_clip_features_read_mode_tempo_density_velocity():
    major = clip_features(_score(C_MAJOR, qpm=90, velocity=60))
    minor = clip_features(_score(A_MINOR, qpm=150, velocity=110, step=120))
    assert major["major_minus_minor"] > 0 > minor["major_minus_minor"]
    assert math.isclose(major["tempo_bpm"], 90, rel_tol=1e-4) and math.isclose(minor["tempo_bpm"], 150, rel_tol=1e-4)
    assert math.isclose(minor["notes_per_second"] / major["notes_per_second"], 150 / 90 * 2, rel_tol=1e-3)
    assert (major["mean_velocity"], minor["mean_velocity"]) == (60, 110)
    assert math.isclose(major["mean_pitch"], float(np.mean(C_MAJOR)))


def test_an_empty_clip_has_undefined_features_and_is_skipped():
    empty = clip_features(symusic.Score(480))
    assert set(empty) == set(FEATURES) and all(math.isnan(v) for v in empty.values())
    fast = [clip_features(_score(C_MAJOR, qpm=q)) for q in (60, 90, 120, 150)]
    va = np.array([[5, 2], [5, 4], [5, 6], [5, 8], [5, 9]], float)
    r = feature_correlations(fast + [empty], va)
    assert r["arousal"]["tempo_bpm"] > 0.99  # the empty clip is left out, not counted as 0
    assert r["valence"]["tempo_bpm"] is None  # valence is constant: r undefined
