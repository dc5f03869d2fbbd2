"""The music -> valence/arousal judge: hand-crafted features + a ridge fit on human labels.

An independent estimate of the emotion a listener hears, used to measure controllability
(training/emotion_eval.py) and as the app's "heard VA". It never trains the model.

Features (:func:`features`, all audible, computed on seconds, see ``FEATURES``): onset rate,
mean and spread of velocity, mean pitch and pitch spread, the Krumhansl-Schmuckler major-minor
score (engine.music.metrics), mean sounding polyphony, note length, inter-onset regularity and
the share of very short notes. Tempo *tokens* are not a feature: EIMG's tempo maps are
performance transcriptions (22-300 BPM), so only what the notes do in seconds counts.

The linear weights (standardised features -> 1-9 VA) are in ``judge.json`` beside this file,
written by ``python -m training.fit_emotion`` from EIMG's seeded train split; the file also
records the held-out r and MAE.
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from engine.music import metrics
from engine.music.notes import make_notes, read_midi_notes

JUDGE_FILE = Path(__file__).with_name("judge.json")
MIN_NOTES = 8  # fewer notes than this: no estimate
FEATURES = ("log_onset_rate", "mean_velocity", "velocity_std", "mean_pitch", "pitch_std", "major_minus_minor",
            "key_strength", "mean_polyphony", "log_note_seconds", "ioi_cv", "short_note_share", "chord_share")
NoteTuple = tuple[float, int, int, float]  # (onset beat, pitch, velocity, duration in beats)


def features_seconds(onset_s, pitch, velocity, dur_s) -> dict | None:
    """Features of notes given in seconds (arrays of equal length); None below ``MIN_NOTES``."""
    onset = np.asarray(onset_s, np.float64)
    pitch = np.asarray(pitch, np.int64)
    vel = np.asarray(velocity, np.float64)
    dur = np.maximum(np.asarray(dur_s, np.float64), 1e-3)
    if len(onset) < MIN_NOTES:
        return None
    order = np.argsort(onset, kind="stable")
    onset, pitch, vel, dur = onset[order], pitch[order], vel[order], dur[order]
    end = onset + dur
    span = max(float(end.max() - onset.min()), 1.0)
    # Krumhansl-Schmuckler on the duration-weighted pitch-class profile
    profile = np.bincount(pitch % 12, weights=dur, minlength=12)
    if np.ptp(profile) > 0:
        r = metrics.key_correlations(profile)
        mode, strength = float(r[0].max() - r[1].max()), float(r.max())
    else:
        mode, strength = 0.0, 0.0
    # mean number of notes sounding, over the sounding span
    bounds = np.concatenate([onset, end])
    steps = np.concatenate([np.ones(len(onset)), -np.ones(len(end))])
    o = np.argsort(bounds, kind="stable")
    t, c = bounds[o], np.cumsum(steps[o])
    seg = np.diff(t)
    sounding = float((c[:-1] * seg).sum() / max(seg[c[:-1] > 0].sum(), 1e-9))
    # onsets grouped within 30 ms count as one event (a chord)
    gaps = np.diff(onset)
    events = np.concatenate([[True], gaps > 0.03])
    ev_times = onset[events]
    ioi = np.diff(ev_times)
    ioi_cv = float(ioi.std() / ioi.mean()) if len(ioi) > 1 and ioi.mean() > 0 else 0.0
    return {
        "log_onset_rate": math.log(len(onset) / span),
        "mean_velocity": float(vel.mean()),
        "velocity_std": float(vel.std()),
        "mean_pitch": float(pitch.mean()),
        "pitch_std": float(pitch.std()),
        "major_minus_minor": mode,
        "key_strength": strength,
        "mean_polyphony": sounding,
        "log_note_seconds": float(np.log(dur).mean()),
        "ioi_cv": min(ioi_cv, 5.0),
        "short_note_share": float((dur < 0.15).mean()),
        "chord_share": float(1.0 - events.mean()),
    }


def features(notes: Sequence[NoteTuple], bpm: float) -> dict | None:
    """Features of ``(onset_beat, pitch, velocity, duration_beats)`` notes played at ``bpm``
    (the format of ``LiveStream.played_notes``); None below ``MIN_NOTES`` notes."""
    if len(notes) < MIN_NOTES:
        return None
    a = np.asarray([tuple(n)[:4] for n in notes], np.float64)
    spb = 60.0 / float(bpm)
    return features_seconds(a[:, 0] * spb, a[:, 1].astype(np.int64), a[:, 2], a[:, 3] * spb)


def features_of_notes(n) -> dict | None:
    """Features of :class:`engine.music.notes.Notes` (ticks, with its tempo map); drums left out."""
    p = n.pitched()
    if len(p) < MIN_NOTES:
        return None
    on = metrics.ticks_to_seconds(p, p.start)
    off = metrics.ticks_to_seconds(p, p.end)
    return features_seconds(on, p.pitch, p.velocity, off - on)


def features_file(path) -> dict | None:
    return features_of_notes(read_midi_notes(path))


@lru_cache(maxsize=4)
def load_judge(path: str | Path = JUDGE_FILE) -> dict:
    """The fitted judge: ``{"features", "mean", "std", "weights" {valence, arousal}, "bias", ...}``."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no emotion judge at {path}: run `python -m training.fit_emotion`") from None


def predict(feats: dict, judge: dict | None = None) -> tuple[float, float]:
    """Features -> (valence, arousal) on 1-9 with the fitted linear model."""
    j = judge or load_judge()
    x = (np.array([feats[f] for f in j["features"]]) - np.array(j["mean"])) / np.array(j["std"])
    out = []
    for d in ("valence", "arousal"):
        y = float(x @ np.array(j["weights"][d]) + j["bias"][d])
        out.append(min(9.0, max(1.0, y)))
    return out[0], out[1]


def estimate_va(notes: Sequence[NoteTuple], bpm: float, judge: dict | None = None) -> tuple[float, float] | None:
    """Heard VA (1-9) of notes ``(onset_beat, pitch, velocity, duration_beats)`` at ``bpm``; None
    when there are too few notes to judge."""
    f = features(notes, bpm)
    return None if f is None else predict(f, judge)


def estimate_va_file(path, judge: dict | None = None) -> tuple[float, float] | None:
    """Heard VA (1-9) of a MIDI file (its own tempo map); None with too few notes."""
    f = features_file(path)
    return None if f is None else predict(f, judge)


def estimate_va_score(score, judge: dict | None = None) -> tuple[float, float] | None:
    """Heard VA of a symusic Score (e.g. a generated clip)."""
    from engine.music.notes import notes_from_score

    f = features_of_notes(notes_from_score(score))
    return None if f is None else predict(f, judge)


__all__ = ["FEATURES", "MIN_NOTES", "estimate_va", "estimate_va_file", "estimate_va_score", "features",
           "features_file", "features_of_notes", "features_seconds", "load_judge", "predict", "make_notes"]
