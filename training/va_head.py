"""Image -> VA head: a picture's frozen image features -> (valence, arousal) on the 1-9 scale.

Trained on OASIS (seeded split ``training.data.split_oasis``): ridge regression from the
pooled image features (the mean of the encoder's image tokens) to the rating means, with the
ridge strength picked by 5-fold cross-validation on the training split only. A linear head is
what ~590 labelled pictures support; it is exported inside ``image_encoder.onnx``.

``python -m training.va_head [--encoder efficientnet_lite0] [--seed 0]`` fits it, prints Pearson r
and MAE of valence and arousal on the hold-out split and writes
``runs/va_head/<encoder>.safetensors`` (weights + metrics as metadata).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, safe_open, save_file

from engine.paths import REPO_ROOT
from engine.emotion.va import VA_MAX, VA_MIN
from training import data

DEFAULT_DIR = REPO_ROOT / "runs" / "va_head"
ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0, 30000.0, 100000.0)


class VAHead(nn.Module):
    """pooled features [B, Dc] -> VA [B, 2] on 1-9 (standardise, linear, clamp)."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.linear = nn.Linear(dim, 2)
        nn.init.zeros_(self.linear.weight)
        nn.init.constant_(self.linear.bias, (VA_MIN + VA_MAX) / 2)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.linear((pooled - self.mean) / self.scale).clamp(VA_MIN, VA_MAX)


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge on standardised x (intercept not penalised) -> (W [D, 2], b [2])."""
    ym = y.mean(0)
    # dual form: cheaper when samples < features
    k = x @ x.T
    a = np.linalg.solve(k + alpha * np.eye(len(x)), y - ym)
    return x.T @ a, ym


def pearson(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a, b = a - a.mean(), b - b.mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else float("nan")


def va_metrics(pred: np.ndarray, true: np.ndarray) -> dict:
    """Pearson r and MAE of valence and arousal (columns 0 and 1)."""
    return {"valence_r": pearson(pred[:, 0], true[:, 0]), "arousal_r": pearson(pred[:, 1], true[:, 1]),
            "valence_mae": float(np.abs(pred[:, 0] - true[:, 0]).mean()),
            "arousal_mae": float(np.abs(pred[:, 1] - true[:, 1]).mean())}


def fit_va_head(train_x: np.ndarray, train_y: np.ndarray, seed: int = 0, folds: int = 5) -> tuple[VAHead, float]:
    """Fit a VAHead on pooled features; the ridge strength by k-fold CV (mean MAE). -> (head, alpha)."""
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    xs = (train_x - mu) / sd
    fold = np.random.default_rng(seed).permutation(len(xs)) % folds
    best = (np.inf, ALPHAS[0])
    for alpha in ALPHAS:
        err = 0.0
        for f in range(folds):
            w, b = _ridge(xs[fold != f], train_y[fold != f], alpha)
            err += np.abs(np.clip(xs[fold == f] @ w + b, VA_MIN, VA_MAX) - train_y[fold == f]).mean()
        best = min(best, (err / folds, alpha))
    w, b = _ridge(xs, train_y, best[1])
    head = VAHead(train_x.shape[1])
    with torch.no_grad():
        head.mean.copy_(torch.from_numpy(mu).float())
        head.scale.copy_(torch.from_numpy(sd).float())
        head.linear.weight.copy_(torch.from_numpy(w.T).float())
        head.linear.bias.copy_(torch.from_numpy(b).float())
    return head.eval(), best[1]


def pooled_features(records, encoder: str) -> np.ndarray:
    from training.features import image_features
    feats = image_features(records, encoder, progress=False)
    return np.stack([feats[str(r.path)].mean(0).numpy() for r in records]).astype(np.float64)


def train_va_head(encoder: str = "efficientnet_lite0", seed: int = 0, holdout: float = 0.2,
                  out: str | Path | None = None) -> tuple[VAHead, dict]:
    """Fit on the OASIS train split, measure on the hold-out, save; -> (head, metrics)."""
    train, test = data.split_oasis(data.load_oasis(), seed=seed, holdout=holdout)
    xtr, xte = pooled_features(train, encoder), pooled_features(test, encoder)
    ytr = np.array([r.va for r in train]); yte = np.array([r.va for r in test])
    head, alpha = fit_va_head(xtr, ytr, seed=seed)
    with torch.no_grad():
        pred = head(torch.from_numpy(xte).float()).numpy()
    metrics = {"encoder": encoder, "seed": seed, "holdout": holdout, "n_train": len(train), "n_test": len(test),
               "alpha": alpha, **va_metrics(pred, yte),
               "baseline": {k: v for k, v in va_metrics(np.tile(ytr.mean(0), (len(yte), 1)), yte).items()
                            if k.endswith("mae")}}  # MAE of always predicting the train mean
    path = Path(out) if out else DEFAULT_DIR / f"{encoder}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(path),
              metadata={"format": "moodroll-va-head/1", "metrics": json.dumps(metrics)})
    return head, metrics


def load_va_head(path: str | Path) -> tuple[VAHead, dict]:
    sd = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    head = VAHead(sd["mean"].shape[0])
    head.load_state_dict(sd)
    return head.eval(), json.loads(meta.get("metrics", "{}"))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="fit the image -> VA head on OASIS")
    ap.add_argument("--encoder", default="efficientnet_lite0")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    _, m = train_va_head(args.encoder, args.seed, out=args.out)
    print(json.dumps(m, indent=1))


if __name__ == "__main__":
    main()
