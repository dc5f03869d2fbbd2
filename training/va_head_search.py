"""Which picture -> VA estimate is best on the OASIS hold-out?

    python -m training.va_head_search [--encoders efficientnet_lite0 efficientnet_lite1] [--views center flip]

For every encoder and view (``center``: the whole frame squashed, as the engine does; ``flip``:
the same mirrored left-right) the frozen image tokens are computed once and cached
(``training.features``). Heads, all fit on the ``split_oasis`` (seed 0) train split only, with
hyper-parameters chosen by 5-fold CV on that split, then scored once on the 148 hold-out
pictures (Pearson r, MAE):

* ``ridge``         the shipped head: pooled features, one ridge strength for V and A;
* ``ridge_sep``     one ridge strength per target;
* ``ridge_grid``    the 4 grid tokens concatenated (5,120-d) instead of their mean;
* ``mlp``           a one-hidden-layer MLP (256, GELU, dropout, weight decay), mean of 5 seeds;
* ``+flip``         each of the above on the mean of the center and flipped views' features
                    (train and test: test-time flip averaging).

Results go to ``runs/va_head/search.json`` and a table on stdout.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from engine.paths import REPO_ROOT
from engine.emotion.va import VA_MAX, VA_MIN
from training import data
from training.encoders import ImageEncoder, build_encoder
from training.va_head import ALPHAS, _ridge, va_metrics

OUT = REPO_ROOT / "runs" / "va_head" / "search.json"


class FlippedEncoder(ImageEncoder):
    """An encoder that sees the picture mirrored left-right (its own feature cache name)."""

    def __init__(self, base: ImageEncoder):
        super().__init__(base.trunk, base.grid)
        self.name, self.size, self.dim = f"{base.name}-flip", base.size, base.dim
        self.mean, self.std, self.pretrained = base.mean, base.std, base.pretrained

    def feature_map(self, image: torch.Tensor) -> torch.Tensor:
        return self.trunk(torch.flip(image, dims=[3]))


def view_tokens(records, encoder: str, view: str) -> np.ndarray:
    """[N, Ni, Dc] image tokens of ``records`` under one view (cached)."""
    from training.features import image_features
    enc = build_encoder(encoder)
    if view == "flip":
        enc = FlippedEncoder(enc)
    elif view != "center":
        raise ValueError(f"unknown view {view!r}")
    feats = image_features(records, enc, progress=False)
    return np.stack([feats[str(r.path)].numpy() for r in records]).astype(np.float64)


def _standardise(xtr, xte):
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    return (xtr - mu) / sd, (xte - mu) / sd


def _cv_alpha(x, y, folds, per_target: bool):
    errs = np.zeros((len(ALPHAS), y.shape[1]))
    for i, a in enumerate(ALPHAS):
        for f in range(folds.max() + 1):
            w, b = _ridge(x[folds != f], y[folds != f], a)
            errs[i] += np.abs(np.clip(x[folds == f] @ w + b, VA_MIN, VA_MAX) - y[folds == f]).mean(0)
    if per_target:
        return [ALPHAS[int(errs[:, j].argmin())] for j in range(y.shape[1])]
    return [ALPHAS[int(errs.mean(1).argmin())]] * y.shape[1]


def ridge_predict(xtr, ytr, xte, folds, per_target=False):
    xtr, xte = _standardise(xtr, xte)
    alphas = _cv_alpha(xtr, ytr, folds, per_target)
    pred = np.zeros((len(xte), ytr.shape[1]))
    for j, a in enumerate(alphas):
        w, b = _ridge(xtr, ytr, a)
        pred[:, j] = np.clip(xte @ w + b, VA_MIN, VA_MAX)[:, j]
    return pred, {"alphas": alphas}


def _mlp_fit(xtr, ytr, xte, seed, wd, epochs=200):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(xtr.shape[1], 256), torch.nn.GELU(),
                              torch.nn.Dropout(0.3), torch.nn.Linear(256, 2))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=wd)
    xt, yt = torch.tensor(xtr, dtype=torch.float32), torch.tensor(ytr - 5.0, dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=g).split(64):
            opt.zero_grad()
            torch.nn.functional.l1_loss(net(xt[idx]), yt[idx]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        return np.clip(net(torch.tensor(xte, dtype=torch.float32)).numpy() + 5.0, VA_MIN, VA_MAX)


def mlp_predict(xtr, ytr, xte, folds, seeds=5):
    xtr, xte = _standardise(xtr, xte)
    best = (np.inf, None)
    for wd in (0.1, 1.0, 10.0):
        err = np.mean([np.abs(_mlp_fit(xtr[folds != f], ytr[folds != f], xtr[folds == f], 0, wd)
                              - ytr[folds == f]).mean() for f in range(folds.max() + 1)])
        best = min(best, (err, wd), key=lambda t: t[0])
    pred = np.mean([_mlp_fit(xtr, ytr, xte, s, best[1]) for s in range(seeds)], axis=0)
    return pred, {"weight_decay": best[1]}


def search(encoders, views, seed: int = 0, mlp: bool = True) -> list[dict]:
    train, test = data.split_oasis(data.load_oasis(), seed=seed)
    ytr, yte = np.array([r.va for r in train]), np.array([r.va for r in test])
    folds = np.random.default_rng(seed).permutation(len(train)) % 5
    rows = []
    for enc in encoders:
        tok = {v: (view_tokens(train, enc, v), view_tokens(test, enc, v)) for v in views}
        sets = {"": tok["center"]}
        if "flip" in tok:
            sets["+flip"] = tuple((tok["center"][i] + tok["flip"][i]) / 2 for i in range(2))
        for suffix, (ttr, tte) in sets.items():
            xtr, xte = ttr.mean(1), tte.mean(1)
            heads = {"ridge": lambda: ridge_predict(xtr, ytr, xte, folds),
                     "ridge_sep": lambda: ridge_predict(xtr, ytr, xte, folds, per_target=True),
                     "ridge_grid": lambda: ridge_predict(ttr.reshape(len(ttr), -1), ytr, tte.reshape(len(tte), -1),
                                                         folds, per_target=True)}
            if mlp:
                heads["mlp"] = lambda: mlp_predict(xtr, ytr, xte, folds)
            for name, fit in heads.items():
                pred, info = fit()
                row = {"encoder": enc, "head": name + suffix, **info, **va_metrics(pred, yte)}
                rows.append(row)
                print(f"{enc:18s} {name + suffix:16s} V r {row['valence_r']:.3f} MAE {row['valence_mae']:.3f} | "
                      f"A r {row['arousal_r']:.3f} MAE {row['arousal_mae']:.3f}  {info}", flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="compare picture -> VA heads on the OASIS hold-out")
    ap.add_argument("--encoders", nargs="+", default=["efficientnet_lite0"])
    ap.add_argument("--views", nargs="+", default=["center", "flip"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-mlp", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = search(args.encoders, args.views, args.seed, mlp=not args.no_mlp)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(OUT.read_text()) if OUT.is_file() else []
    keep = [r for r in old if r["encoder"] not in args.encoders]
    OUT.write_text(json.dumps(keep + rows, indent=1))


if __name__ == "__main__":
    main()
