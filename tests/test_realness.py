"""training.realness: its statistics, its features' invariances, and a tiny end-to-end run."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.music.notes import make_notes
from engine.paths import EXAMPLES, shared_data_dir
from training import realness as R


def test_auc_counts_pairs_and_ties():
    assert R.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert R.roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert R.roc_auc([0, 1, 0, 1], [1, 1, 1, 1]) == 0.5
    assert R.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.3, 0.5]) == 0.75


def test_group_folds_keep_groups_whole_and_both_classes_in_every_fold():
    y = np.array([1] * 20 + [0] * 21)
    groups = np.array([f"g{i // 3}" for i in range(20)] + [f"h{i // 3}" for i in range(21)])
    fold = R.group_folds(y, groups, 3, seed=1)
    for g in np.unique(groups):
        assert len(set(fold[groups == g])) == 1
    for f in range(3):
        assert set(y[fold == f]) == {0, 1}


def _two_sets(shift: float, n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2 * n, 12))
    X[:n, 3] += shift
    y = np.array([1] * n + [0] * n)
    return X, y, np.arange(2 * n).astype(str)


def test_the_classifier_tells_a_shifted_feature_and_not_noise():
    X, y, g = _two_sets(2.5)
    s = R.cross_validated(R.logistic_scores, X, y, g, folds=4, repeats=1, seed=0)
    assert R.roc_auc(y, s) > 0.9
    lo, hi = R.bootstrap_ci(y, s, g, n=200)
    assert 0.8 < lo <= R.roc_auc(y, s) <= hi <= 1.0
    X, y, g = _two_sets(0.0, seed=3)
    s = R.cross_validated(R.logistic_scores, X, y, g, folds=4, repeats=1, seed=0)
    lo, hi = R.bootstrap_ci(y, s, g, n=200)
    assert lo < 0.5 < hi  # same distribution: chance is inside the interval


def _example_notes(velocity_shift: int = 0, jitter: int = 0):
    from engine.music.notes import read_midi_notes

    n = read_midi_notes(EXAMPLES / "example.mid").pitched()
    rng = np.random.default_rng(0)
    j = rng.integers(-jitter, jitter + 1, len(n)) if jitter else np.zeros(len(n), np.int64)
    step = n.resolution // 4  # keep the example on a 16th grid, so a jitter moves notes off it
    start = (n.start // step) * step + step
    end = np.maximum((n.end // step) * step + step, start + step)
    return make_notes(start + j, end + j, n.pitch, np.clip(n.velocity - 40 + velocity_shift, 1, 127),
                      resolution=n.resolution, tempos=n.tempos, time_signatures=n.time_signatures)


def test_features_ignore_the_velocity_level_and_micro_timing():
    base = R.music_features(_example_notes())
    assert list(base) == list(R.FEATURE_NAMES)
    louder = R.music_features(_example_notes(velocity_shift=25))
    assert louder == pytest.approx(base, abs=1e-9)  # the level never enters, only spread and contour
    played = R.music_features(_example_notes(jitter=20))  # up to 1/24 beat either way, as a pianist plays
    grid_features = [k for k in base if k.startswith(("ioi_", "beat_position", "pc_", "harmonic_", "melody_interval",
                                                      "bass_interval", "bar_repeat", "bar_rhythm", "chord_"))]
    assert {k: played[k] for k in grid_features} == pytest.approx({k: base[k] for k in grid_features}, abs=1e-9)


def test_token_discriminator_ignores_tempo_tokens_and_velocity_level():
    from symusic import Score, Tempo

    tok = R.tokenizer()
    vocab = R.discriminator_vocab()
    score = Score(str(EXAMPLES / "example.mid"))
    a = R.discriminator_ids(tok.encode(score), vocab)
    faster = score.copy()
    faster.tempos = [Tempo(0, 150.0)]
    assert np.array_equal(a, R.discriminator_ids(tok.encode(faster), vocab))
    names = [tok.id_to_token(i) for i in tok.encode(score)]
    assert any(t.startswith("Tempo_") for t in names) and not any(k.startswith("Tempo_") for k in vocab)


@pytest.mark.skipif(not (shared_data_dir() / "eimg").is_dir(), reason="the shared data sets are absent")
def test_a_tiny_run_writes_every_section(tmp_path):
    cfg = R.RealnessConfig(**{**R.TINY, "clips": 6, "settings": ("grid", "live")})
    res = R.run(cfg, log=lambda s: None)
    names = {"grid|eimg", "grid|pop909", "live|eimg", "live|pop909", "eimg_half|eimg_half", "vgmidi|eimg"}
    assert names <= set(res["tests"])
    for row in res["tests"].values():
        for test in ("features_logistic", "features_mlp", "tokens_cnn"):
            t = row[test]
            assert 0.0 <= t["ci95"][0] <= t["auc"] <= t["ci95"][1] <= 1.0
    assert res["tests"]["grid|eimg"]["n"] == [6, 6]
    assert res["keys"]["clips"] == 6 and sum(res["keys"]["planned"].values()) == 6
    assert res["expression"]["grid"]["clips"] > 0 and res["expression"]["pop909"]["clips"] > 0
    assert set(res["emotion"]) == {"grid"}  # the live clips' VA moves mid-clip: no single target
    doc, fig = tmp_path / "realness.md", tmp_path / "realness.png"
    public = R._public(res)
    json.dumps(public)
    R.figure(public, fig)
    R.write_doc(public, doc, before=public, figure_path=fig, command="python -m training.realness --tiny")
    text = doc.read_text()
    assert "| VA grid" in text and "strongest *before*" in text and "## Keys" in text and "Music_Quality_Loss" in text
    assert fig.stat().st_size > 10_000
