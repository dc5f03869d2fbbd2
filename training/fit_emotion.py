"""Fit the engine's emotion JSONs from human-labelled piano clips (numpy only, no torch).

    python -m training.fit_emotion            # writes engine/emotion/judge.json and attributes.json

1. Features (engine.emotion.judge.features_of_notes) and attributes of every EIMG clip,
   cached in runs/cache/emotion_features.json (keyed by path, size and mtime).
2. Split: ``training.data.split_eimg`` (seed 0): train 2,596 clips; test + val (104) are the
   hold-out, never used to fit anything here.
3. Judge: ridge regression, standardised features -> valence and arousal; the ridge strength
   by 5-fold CV on the train split. Held-out r and MAE go into judge.json. VGMIDI (labels are
   only the sign of valence) gives an extra check on another data set: the judge's valence AUC.
4. Attributes: for each attribute, ordinary least squares on (valence - 5, arousal - 5) over
   the train split (mode: logistic regression of "major" on the same); its r with V and A
   in EIMG beside it.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from engine.music import metrics
from engine.emotion.attributes import ATTRIBUTE_FILE, clip_attributes
from engine.emotion.judge import FEATURES, JUDGE_FILE, features_of_notes
from engine.music.notes import read_midi_notes
from engine.paths import REPO_ROOT
from training import data

CACHE = REPO_ROOT / "runs" / "cache" / "emotion_features.json"
ALPHAS = (0.1, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)


def clip_rows(records, cache_path: Path = CACHE, progress: bool = True) -> list[dict | None]:
    """``{"features": {...}, "attributes": {...}}`` per record (None when it has too few notes)."""
    from tqdm import tqdm

    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    out, dirty = [], False
    for r in tqdm(records, desc="clip features", unit="clip", disable=not progress):
        st = Path(r.path).stat()
        key = f"{r.path}|{st.st_size}|{st.st_mtime_ns}"
        if key not in cache:
            n = read_midi_notes(r.path)
            f = features_of_notes(n)
            cache[key] = None if f is None else {"features": f, "attributes": clip_attributes(n)}
            dirty = True
        out.append(cache[key])
    if dirty:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache))
        tmp.replace(cache_path)
    return out


def pearson(x, y) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Ridge on standardised ``x`` (no penalty on the bias) -> (weights, bias)."""
    xm, ym = x.mean(0), y.mean()
    xc = x - xm
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y - ym))
    return w, float(ym - xm @ w)


def cv_alpha(x: np.ndarray, y: np.ndarray, seed: int = 0, folds: int = 5) -> tuple[float, float]:
    """The ridge strength with the lowest 5-fold CV squared error -> (alpha, CV r)."""
    fold = np.random.default_rng(seed).permutation(len(y)) % folds
    best = None
    for alpha in ALPHAS:
        pred = np.empty(len(y))
        for k in range(folds):
            w, b = ridge(x[fold != k], y[fold != k], alpha)
            pred[fold == k] = x[fold == k] @ w + b
        err = float(((pred - y) ** 2).mean())
        if best is None or err < best[0]:
            best = (err, alpha, pearson(pred, y))
    return best[1], best[2]


def fit_judge(train_f: np.ndarray, train_va: np.ndarray) -> dict:
    mean, std = train_f.mean(0), train_f.std(0) + 1e-9
    z = (train_f - mean) / std
    judge = {"features": list(FEATURES), "mean": mean.tolist(), "std": std.tolist(), "weights": {}, "bias": {},
             "ridge_alpha": {}, "cv_r": {}}
    for d, name in enumerate(("valence", "arousal")):
        alpha, r = cv_alpha(z, train_va[:, d])
        w, b = ridge(z, train_va[:, d], alpha)
        judge["weights"][name], judge["bias"][name] = w.tolist(), b
        judge["ridge_alpha"][name], judge["cv_r"][name] = alpha, r
    return judge


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 50) -> np.ndarray:
    """Logistic regression (Newton steps) with a bias column appended -> weights [bias, ...]."""
    X = np.column_stack([np.ones(len(x)), x])
    w = np.zeros(X.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-X @ w))
        g = X.T @ (p - y) + l2 * w
        h = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.eye(len(w))
        w -= np.linalg.solve(h, g)
    return w


def fit_attributes(attrs: list[dict], va: np.ndarray) -> dict:
    """Per attribute: value = b0 + bv (v - 5) + ba (a - 5) (OLS; mode: logistic), plus EIMG's
    own r with V and A and the spread of the attribute."""
    x = va - 5.0
    X = np.column_stack([np.ones(len(x)), x])
    attrs = [{**a, "log_notes_per_second": math.log(max(a["notes_per_second"], 1e-3))} for a in attrs]
    out = {}
    for name in attrs[0]:
        if name == "major":
            continue
        y = np.array([a[name] for a in attrs], np.float64)
        ok = np.isfinite(y)
        coef = np.linalg.lstsq(X[ok], y[ok], rcond=None)[0]
        out[name] = {"coef": coef.tolist(), "r_valence": pearson(va[ok, 0], y[ok]), "r_arousal": pearson(va[ok, 1], y[ok]),
                     "p10": float(np.percentile(y[ok], 10)), "p50": float(np.percentile(y[ok], 50)),
                     "p90": float(np.percentile(y[ok], 90))}
    major = np.array([a["major"] for a in attrs], np.float64)
    out["major"] = {"logistic": fit_logistic(x, major).tolist(), "r_valence": pearson(va[:, 0], major),
                    "r_arousal": pearson(va[:, 1], major), "share": float(major.mean())}
    return out


def tonic_counts(records) -> dict:
    """How often each key (Krumhansl-Schmuckler) opens the train clips, per mode."""
    counts = {"major": [0] * 12, "minor": [0] * 12}
    for r in records:
        k = metrics.estimate_key(read_midi_notes(r.path))
        if k is not None:
            counts[k.mode][k.tonic] += 1
    return counts


def judge_metrics(judge: dict, f: np.ndarray, va: np.ndarray) -> dict:
    from engine.emotion.judge import predict

    pred = np.array([predict(dict(zip(FEATURES, row)), judge) for row in f])
    return {"clips": len(va), **{f"r_{d}": pearson(pred[:, i], va[:, i]) for i, d in enumerate(("valence", "arousal"))},
            **{f"mae_{d}": float(np.abs(pred[:, i] - va[:, i]).mean()) for i, d in enumerate(("valence", "arousal"))},
            **{f"mae_mean_{d}": float(np.abs(va[:, i].mean() - va[:, i]).mean()) for i, d in enumerate(("valence", "arousal"))}}


def vgmidi_check(judge: dict) -> dict:
    """The judge's valence on VGMIDI pieces (another data set; labels = sign of valence): AUC."""
    from engine.emotion.judge import predict

    recs = [r for r in data.load_vgmidi() if r.va is not None]
    rows = clip_rows(recs, progress=False)
    pv, lab = [], []
    for r, row in zip(recs, rows):
        if row is not None:
            pv.append(predict(row["features"], judge)[0])
            lab.append(r.valence > 5)
    pv, lab = np.array(pv), np.array(lab)
    pos, neg = pv[lab], pv[~lab]
    auc = float(((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()))
    return {"pieces": len(pv), "positive": int(lab.sum()), "valence_auc": auc}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="fit the emotion judge and the VA -> attribute tables")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--judge-out", default=str(JUDGE_FILE))
    ap.add_argument("--attributes-out", default=str(ATTRIBUTE_FILE))
    args = ap.parse_args(argv)
    splits = data.split_eimg(data.load_eimg(), seed=args.seed)
    train, hold = splits.train, splits.test + splits.val
    rows_tr, rows_ho = clip_rows(train), clip_rows(hold)
    tr = [(r, x) for r, x in zip(train, rows_tr) if x is not None]
    ho = [(r, x) for r, x in zip(hold, rows_ho) if x is not None]
    f_tr = np.array([[x["features"][k] for k in FEATURES] for _, x in tr])
    va_tr = np.array([r.va for r, _ in tr])
    f_ho = np.array([[x["features"][k] for k in FEATURES] for _, x in ho])
    va_ho = np.array([r.va for r, _ in ho])
    judge = fit_judge(f_tr, va_tr)
    judge["fit"] = {"data": "EIMG", "split": f"training.data.split_eimg(seed={args.seed}) train",
                    "train_clips": len(tr), "train": judge_metrics(judge, f_tr, va_tr),
                    "holdout": judge_metrics(judge, f_ho, va_ho)}
    judge["fit"]["vgmidi"] = vgmidi_check(judge)
    Path(args.judge_out).write_text(json.dumps(judge, indent=1) + "\n")
    attrs = fit_attributes([x["attributes"] for _, x in tr], va_tr)
    table = {"data": "EIMG", "split": f"training.data.split_eimg(seed={args.seed}) train", "clips": len(tr),
             "attributes": attrs, "keys": tonic_counts([r for r, _ in tr])}
    Path(args.attributes_out).write_text(json.dumps(table, indent=1) + "\n")
    print(json.dumps({"judge": judge["fit"], "ridge_alpha": judge["ridge_alpha"], "cv_r": judge["cv_r"],
                      "attributes": {k: {kk: v[kk] for kk in v if kk.startswith("r_") or kk == "coef"}
                                     for k, v in attrs.items()}}, indent=1))


if __name__ == "__main__":
    main()
