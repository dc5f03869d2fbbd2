"""engine.emotion.judge: the fitted music -> VA judge. Its recorded fit, its behaviour on made-up
notes (faster/louder = more aroused, major/higher = happier), the same answer through the
played-notes and the .mid-file paths, and (with the shared data) its quality on a seeded
sample of EIMG's hold-out clips."""
import mido
import numpy as np
import pytest

from engine.emotion.judge import FEATURES, MIN_NOTES, estimate_va, estimate_va_file, features, load_judge


def chords(pcs, bpm_beats=0.5, velocity=70, octave=60, n=16):
    """Block chords of the pitch classes ``pcs`` every ``bpm_beats`` beats."""
    return [(i * bpm_beats, octave + pc, velocity, bpm_beats) for i in range(n) for pc in pcs]


def test_recorded_fit_is_honest_and_good_enough():
    j = load_judge()
    assert j["features"] == list(FEATURES)
    fit = j["fit"]
    assert fit["data"] == "EIMG" and "train" in fit["split"]
    assert fit["holdout"]["clips"] >= 100 and fit["holdout"]["r_valence"] > 0.5 and fit["holdout"]["r_arousal"] > 0.75
    assert fit["holdout"]["mae_arousal"] < fit["holdout"]["mae_mean_arousal"]


def test_too_few_notes_is_none():
    assert estimate_va(chords([0], n=MIN_NOTES - 1), 120) is None
    assert features([], 100) is None


def test_judge_moves_the_right_way():
    calm = estimate_va(chords([0, 4, 7], bpm_beats=2.0, velocity=45, n=8), 70)
    wild = estimate_va(chords([0, 4, 7], bpm_beats=0.25, velocity=110, n=64), 160)
    assert wild[1] > calm[1] + 1.5  # faster and louder: more aroused
    major = estimate_va(chords([0, 4, 7], n=24, octave=67), 110)  # C major triads, higher
    minor = estimate_va(chords([9, 0, 4], n=24, octave=57), 110)  # A minor triads, lower
    assert major[0] > minor[0]
    assert all(1.0 <= x <= 9.0 for x in calm + wild + major + minor)


def test_played_notes_and_file_agree(tmp_path):
    notes = [(i * 0.5, 60 + (i * 5) % 17, 60 + i % 40, 0.4) for i in range(40)]
    bpm = 96.0
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))])
    ev = sorted([(round(on * 480), 1, mido.Message("note_on", note=p, velocity=v)) for on, p, v, d in notes] +
                [(round((on + d) * 480), 0, mido.Message("note_off", note=p)) for on, p, v, d in notes],
                key=lambda e: (e[0], e[1]))
    now = 0
    for t, _, m in ev:
        tr.append(m.copy(time=t - now))
        now = t
    mid.tracks.append(tr)
    mid.save(tmp_path / "n.mid")
    assert estimate_va_file(tmp_path / "n.mid") == pytest.approx(estimate_va(notes, bpm), abs=1e-3)


def test_on_a_seeded_hold_out_sample(data_dir):
    from training.data import load_eimg, split_eimg

    s = split_eimg(load_eimg(data_dir / "eimg"), seed=0)
    recs = (s.test + s.val)[::2]  # 52 hold-out clips the judge never saw
    pred = np.array([estimate_va_file(r.path) for r in recs])
    true = np.array([r.va for r in recs])
    assert np.corrcoef(pred[:, 1], true[:, 1])[0, 1] > 0.7
    assert np.corrcoef(pred[:, 0], true[:, 0])[0, 1] > 0.4
