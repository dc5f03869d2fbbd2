"""Fit the velocity model the engine plays with (engine/model/filters/expression.json) on POP909's performances.

POP909's piano arrangements keep their performed velocities; EIMG's clips (what the model learned
its notes from) are constant-velocity. Each song of the seeded train split
(``training.data.split_eimg`` on POP909, seed 0) goes through the shipped tokenizer and the
engine's own :class:`engine.model.filters.state.MusicState`, so every note's features are
exactly what :class:`engine.model.filters.expression.ExpressionFilter` sees when it picks that
note's Velocity token. ``velocity - song mean`` is fitted as a sum of one offset per feature
value (ridge least squares); what is left splits into a slow part (each bar's mean: an AR(1)
walk, its sd and lag-1 correlation) and a per-note spread::

    python -m training.fit_expression            # writes engine/model/filters/expression.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.paths import DEFAULT_BUNDLE
from engine.model.filters.expression import EXPRESSION_FILE, FEATURES, state_features
from engine.model.filters.state import PITCH, MusicState
from engine.music.events import NOTE_ON
from engine.music.tokenizer import MidiReadError, Tokenizer
from training import data


def song_rows(tokenizer: Tokenizer, path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(feature indices [N, F], velocity [N], bar [N]) of one song's notes, in token order."""
    try:
        ids = tokenizer.encode(path)
    except (MidiReadError, ValueError):
        return None
    state = MusicState(tokenizer)
    feats, vel, bars, pending = [], [], [], None
    for t in ids:
        for e in state.feed(t):
            if e.kind == NOTE_ON and pending is not None:
                feats.append(pending[0])
                bars.append(pending[1])
                vel.append(e.velocity)
                pending = None
        if state.last == PITCH and state.pending_pitch is not None:
            pending = (state_features(state), max(state.decoder.current_bar, 0))
    if len(vel) < 32:
        return None
    return np.asarray(feats, np.int64), np.asarray(vel, np.float64), np.asarray(bars, np.int64)


def fit(tokenizer: Tokenizer, records, ridge: float = 1.0) -> dict:
    sizes = [len(v) for v in FEATURES.values()]
    offs = np.concatenate([[0], np.cumsum(sizes)])
    X, y, songs = [], [], []
    for r in tqdm(records, desc="POP909 songs", mininterval=5):
        got = song_rows(tokenizer, r.path)
        if got is None:
            continue
        f, v, bar = got
        X.append(f + offs[:-1])
        y.append(v - v.mean())
        songs.append((v, bar))
    Xi, yc = np.concatenate(X), np.concatenate(y)
    A = np.zeros((len(yc), offs[-1]))
    A[np.arange(len(yc))[:, None], Xi] = 1.0
    w = np.linalg.solve(A.T @ A + ridge * np.eye(A.shape[1]), A.T @ yc)  # ridge towards 0 for every value
    res_all = yc - A @ w
    sd_bar, lag1, note_res, vel_std, vel_range = [], [], [], [], []
    start = 0
    for v, bar in songs:
        r = res_all[start:start + len(v)]
        start += len(v)
        nb = bar.max() + 1
        cnt = np.bincount(bar, minlength=nb)
        mean = np.bincount(bar, weights=r, minlength=nb) / np.maximum(cnt, 1)
        m = mean[cnt >= 3]
        if len(m) >= 8:
            sd_bar.append(m.std())
            lag1.append(np.corrcoef(m[:-1], m[1:])[0, 1])
        note_res.append(r - mean[bar])
        for k in range(0, nb - 3, 4):  # the spread a take should have: within 4-bar excerpts
            sel = (bar >= k) & (bar < k + 4)
            if sel.sum() >= 8:
                vel_std.append(v[sel].std())
                vel_range.append(v[sel].max() - v[sel].min())
    note_res = np.concatenate(note_res)
    pct = lambda x: [round(float(q), 2) for q in np.percentile(x, [10, 50, 90])]  # noqa: E731
    return {
        "data": "POP909 through the shipped tokenizer (velocity bins of 8)",
        "split": "training.data.split_eimg(load_pop909(), seed=0) train", "songs": len(songs),
        "notes": int(len(yc)), "ridge": ridge,
        "features": {k: list(v) for k, v in FEATURES.items()},
        "offsets": {name: [round(float(x), 3) for x in w[offs[j]:offs[j + 1]]] for j, name in enumerate(FEATURES)},
        "bar_walk": {"sd": round(float(np.median(sd_bar)), 3), "lag1": round(float(np.nanmedian(lag1)), 3)},
        "note_sd": round(float(note_res.std()), 3),
        "r2_features": round(float(1 - res_all.var() / yc.var()), 3),
        "human_4bar": {"velocity_std_p10_50_90": pct(vel_std), "velocity_range_p10_50_90": pct(vel_range)},
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(EXPRESSION_FILE))
    ap.add_argument("--limit", type=int, default=None, help="songs (default: the whole train split)")
    args = ap.parse_args(argv)
    train = data.split_eimg(data.load_pop909(), seed=0).train
    if args.limit:
        train = train[:args.limit]
    table = fit(Tokenizer.load(Path(DEFAULT_BUNDLE) / "tokenizer.json"), train)
    Path(args.out).write_text(json.dumps(table, indent=1) + "\n")
    print(json.dumps({k: table[k] for k in ("songs", "notes", "bar_walk", "note_sd", "r2_features", "human_4bar")}))
    print(json.dumps(table["offsets"]))


if __name__ == "__main__":
    main()
