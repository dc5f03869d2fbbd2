"""The music valence-arousal predictor: MIDI tokens -> (valence, arousal) on the 1-9 scale.

Kundu, Singh & Iwahori (2024) score generated music with a separate "VA predictor" (three
fully connected layers, BatchNorm + ReLU after each but the last, a linear (V, A) output)
inside their VA loss. Here it reads a fixed-size description of a clip that depends on the
clip only through its *token histogram* ``h`` (the normalised counts of every vocabulary
token, special tokens excluded):

    features(h) = [h, summary(h)]            summary = pitch mean/spread, register, pitch-class
                                             profile, velocity, duration, tempo, notes per bar/second

Every summary value is a smooth function of ``h``. That is what makes a *differentiable*
VA loss possible: the expected histogram of a sequence under a model's softmax is just the
average of its per-position probabilities, and ``features`` accepts it unchanged
(:func:`expected_histogram`). The paper's own loss (argmax tokens -> MIDI -> predictor)
uses :meth:`MusicVAPredictor.predict` / :meth:`MusicVAPredictor.predict_scores`.

It is trained on EIMG's VA labels (the training split of ``training.data.split_eimg``);
``python -m training.va_predictor`` trains it and writes ``training/weights/music_va.*``.

Public API::

    pred = load_music_va_predictor(path=None)          # the committed weights by default
    pred.predict([ids0, ids1, ...]) -> np.ndarray (N, 2)   # 1-9 scale, (valence, arousal)
    pred.predict_scores([symusic.Score, ...])
    pred.forward_histogram(h: torch.Tensor (B, V)) -> torch.Tensor (B, 2)   # differentiable
"""
from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from engine.music.tokenizer import Tokenizer
from engine.emotion.va import VA_MAX, VA_MIN
from training.va_head import va_metrics as head_va_metrics

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "music_va.safetensors"
FORMAT = "moodroll-music-va/1"


@dataclass(frozen=True)
class VAPredictorConfig:
    vocab_size: int | None = None  # None: the tokenizer's (engine/music/tokenizer.py)
    hidden: tuple = (256, 64)  # 3 FC layers: in -> 256 -> 64 -> 2
    dropout: float = 0.2


@dataclass(frozen=True)
class VATrainConfig:
    seed: int = 0
    epochs: int = 150
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-3
    val_fraction: float = 0.15  # seeded validation split carved out of the EIMG training split


# --------------------------------------------------------------------------------------
# Features: a function of the token histogram only (so the same code is differentiable)
# --------------------------------------------------------------------------------------
SUMMARY_NAMES = (
    ["pitch_mean", "pitch_std", "low_register", "high_register", "velocity_mean",
     "log_duration_mean", "log_tempo_mean", "log_notes_per_bar", "log_notes_per_second",
     "note_fraction"] + [f"pc_{i}" for i in range(12)]
)
_EPS = 1e-6


def _lookup_tables(tok: Tokenizer) -> dict[str, torch.Tensor]:
    """Per-token value vectors (0 where the token has no such value) and type masks."""
    V, g = tok.vocab_size, tok.groups
    t = {k: torch.zeros(V) for k in ("is_pitch", "pitch", "is_vel", "vel", "is_dur", "dur",
                                      "is_tempo", "tempo", "is_bar", "pc", "special")}
    pcs = torch.zeros(V, 12)
    for i, p in g.pitch.items():
        t["is_pitch"][i], t["pitch"][i] = 1.0, float(p)
        pcs[i, p % 12] = 1.0
    for i, v in g.velocity.items():
        t["is_vel"][i], t["vel"][i] = 1.0, float(v)
    for i, d in g.duration.items():
        t["is_dur"][i], t["dur"][i] = 1.0, math.log(max(d, 1e-3))
    for i, b in g.tempo.items():
        t["is_tempo"][i], t["tempo"][i] = 1.0, math.log(b)
    t["is_bar"][g.bar] = 1.0
    for i in (g.pad, g.bos, g.eos):
        t["special"][i] = 1.0
    t["pcs"] = pcs
    return t


def summary_features(h: torch.Tensor, tables: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, V) histogram -> (B, len(SUMMARY_NAMES)) musically meaningful, smooth features."""
    def wmean(mask, val):
        m = h @ tables[mask]
        return (h @ tables[val]) / (m + _EPS), m

    pitch_mean, n_pitch = wmean("is_pitch", "pitch")
    pitch_sq = (h @ (tables["pitch"] ** 2)) / (n_pitch + _EPS)
    pitch_std = torch.sqrt(torch.clamp(pitch_sq - pitch_mean ** 2, min=0.0) + 1e-4)
    low = (h @ (tables["is_pitch"] * (tables["pitch"] < 48).float())) / (n_pitch + _EPS)
    high = (h @ (tables["is_pitch"] * (tables["pitch"] >= 72).float())) / (n_pitch + _EPS)
    vel, _ = wmean("is_vel", "vel")
    dur, _ = wmean("is_dur", "dur")
    log_tempo, n_tempo = wmean("is_tempo", "tempo")
    log_tempo = torch.where(n_tempo > _EPS, log_tempo, torch.full_like(log_tempo, math.log(120.0)))
    n_bar = h @ tables["is_bar"]
    notes_per_bar = n_pitch / (n_bar + 1e-3)
    # 4 beats a bar assumed for the rate; tempo in BPM -> beats per second = tempo / 60
    notes_per_second = notes_per_bar / 4.0 * torch.exp(log_tempo) / 60.0
    pc = (h @ tables["pcs"]) / (n_pitch[:, None] + _EPS)
    return torch.cat([
        torch.stack([pitch_mean / 100.0, pitch_std / 12.0, low, high, vel / 127.0, dur, log_tempo,
                     torch.log1p(notes_per_bar), torch.log1p(notes_per_second), n_pitch], dim=1),
        pc], dim=1)


def token_histograms(seqs: Sequence[Sequence[int]], vocab_size: int, special: Sequence[int]) -> np.ndarray:
    """Token id arrays -> (N, V) normalised counts, special tokens removed (all-zero if empty)."""
    out = np.zeros((len(seqs), vocab_size), np.float32)
    for n, ids in enumerate(seqs):
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(f"sequence {n}: token ids must lie in 0..{vocab_size - 1}")
        c = np.bincount(ids, minlength=vocab_size).astype(np.float32)
        c[list(special)] = 0.0
        s = c.sum()
        if s > 0:
            out[n] = c / s
    return out


def expected_histogram(probs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, T, V) softmax probabilities -> (B, V) expected token histogram (differentiable).

    ``mask`` (B, T) selects the positions that belong to the clip. Special tokens' mass is
    removed and the rest renormalised, matching :func:`token_histograms`.
    """
    if mask is None:
        h = probs.mean(dim=1)
    else:
        m = mask.to(probs.dtype)[..., None]
        h = (probs * m).sum(1) / m.sum(1).clamp(min=1.0)
    return h


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------
class MusicVAPredictor(nn.Module):
    """3 FC layers (BatchNorm + ReLU after the first two), linear (V, A) output on 1-9."""

    def __init__(self, cfg: VAPredictorConfig = VAPredictorConfig(), tok: Tokenizer | None = None):
        super().__init__()
        self.tok = tok or Tokenizer()
        if cfg.vocab_size is None:
            cfg = replace(cfg, vocab_size=self.tok.vocab_size)
        self.cfg = cfg
        if self.tok.vocab_size != cfg.vocab_size:
            raise ValueError(f"VA predictor built for {cfg.vocab_size} tokens, tokenizer has {self.tok.vocab_size}")
        for k, v in _lookup_tables(self.tok).items():
            self.register_buffer(f"tab_{k}", v, persistent=False)
        n_in = cfg.vocab_size + len(SUMMARY_NAMES)
        # feature standardisation and target scaling, fitted on the training split
        self.register_buffer("feat_mean", torch.zeros(n_in))
        self.register_buffer("feat_std", torch.ones(n_in))
        self.register_buffer("target_mean", torch.full((2,), 5.0))
        self.register_buffer("target_std", torch.ones(2))
        h1, h2 = cfg.hidden
        self.net = nn.Sequential(
            nn.Linear(n_in, h1), nn.BatchNorm1d(h1), nn.ReLU(), nn.Dropout(cfg.dropout),
            nn.Linear(h1, h2), nn.BatchNorm1d(h2), nn.ReLU(), nn.Dropout(cfg.dropout),
            nn.Linear(h2, 2),
        )

    @property
    def special_ids(self) -> list[int]:
        g = self.tok.groups
        return [g.pad, g.bos, g.eos]

    def _tables(self) -> dict[str, torch.Tensor]:
        return {k[4:]: v for k, v in self._buffers.items() if k.startswith("tab_")}

    def features(self, h: torch.Tensor) -> torch.Tensor:
        """(B, V) histogram -> (B, V + S) raw (unstandardised) features."""
        h = h.float()
        if h.ndim != 2 or h.shape[1] != self.cfg.vocab_size:
            raise ValueError(f"expected a (B, {self.cfg.vocab_size}) histogram, got {tuple(h.shape)}")
        h = h * (1.0 - self.tab_special)  # drop special-token mass, renormalise
        h = h / h.sum(1, keepdim=True).clamp(min=_EPS)
        return torch.cat([h, summary_features(h, self._tables())], dim=1)

    def forward_histogram(self, h: torch.Tensor) -> torch.Tensor:
        """(B, V) token histogram (counts or probabilities) -> (B, 2) VA on 1-9. Differentiable."""
        x = (self.features(h) - self.feat_mean) / self.feat_std
        y = self.net(x) * self.target_std + self.target_mean
        return y.clamp(VA_MIN, VA_MAX) if not self.training else y

    forward = forward_histogram

    # -- numpy API ---------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, seqs: Sequence[Sequence[int]]) -> np.ndarray:
        """Token id arrays (Moodroll vocabulary) -> (N, 2) valence, arousal on the 1-9 scale."""
        if len(seqs) == 0:
            return np.zeros((0, 2), np.float32)
        h = torch.from_numpy(token_histograms(seqs, self.cfg.vocab_size, self.special_ids))
        was = self.training
        self.eval()
        try:
            return self.forward_histogram(h.to(self.feat_mean.device)).cpu().numpy()
        finally:
            self.train(was)

    def predict_scores(self, scores) -> np.ndarray:
        """symusic Scores (e.g. decoded model output, in memory) -> (N, 2) VA."""
        seqs = []
        for s in scores:
            try:
                seqs.append(self.tok.encode(s))
            except Exception:  # an empty / unreadable score: no notes -> empty histogram
                seqs.append([])
        return self.predict(seqs)

    def predict_files(self, paths) -> np.ndarray:
        return self.predict([self.tok.encode(p) for p in paths])


def save_music_va_predictor(model: MusicVAPredictor, path: Path, meta: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": FORMAT, "config": json.dumps(asdict(model.cfg))})
    cfg_json = {"format": FORMAT, "config": asdict(model.cfg), "tokenizer": model.tok.config,
                "summary_features": SUMMARY_NAMES, "weights": path.name, **meta}
    path.with_suffix(".json").write_text(json.dumps(cfg_json, indent=1))


def load_music_va_predictor(path: str | Path | None = None, device: str = "cpu") -> MusicVAPredictor:
    """Load the trained predictor (eval mode, frozen). ``path`` defaults to the committed weights."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"music VA predictor weights not found: {path} "
                                f"(train them with `python -m training.va_predictor`)")
    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r} is not {FORMAT}")
        c = dict(meta["config"])
        c["hidden"] = tuple(c["hidden"])
        cfg = VAPredictorConfig(**c)
        tok = Tokenizer(meta["tokenizer"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"cannot read VA predictor config {meta_path}: {e}") from None
    if tok.config != Tokenizer().config:
        warnings.warn(f"{path}: the VA predictor was trained on a different vocabulary than "
                      "engine/music/tokenizer.py's; retrain it (python -m training.va_predictor)", stacklevel=2)
    model = MusicVAPredictor(cfg, tok)
    model.load_state_dict(load_file(str(path)), strict=True)
    model.eval().requires_grad_(False)
    return model.to(device)


# --------------------------------------------------------------------------------------
# Training on EIMG
# --------------------------------------------------------------------------------------
def va_metrics(pred: np.ndarray, true: np.ndarray) -> dict:
    """MAE and Pearson r per dimension (valence, arousal), and the number of clips."""
    pred, true = np.asarray(pred), np.asarray(true)
    return {**head_va_metrics(pred, true), "n": int(len(true))}


def eimg_token_data(tok: Tokenizer, seed: int = 0):
    """EIMG records split by ``training.data.split_eimg`` -> {split: (token arrays, VA (N,2))}."""
    from training import data

    records = data.load_eimg()
    splits = data.split_eimg(records, seed=seed)
    out = {}
    for name in ("train", "test", "val"):
        seqs, report = data.read_tokens(getattr(splits, name), tok)
        va = np.array([[r.valence, r.arousal] for r in report.kept], np.float32).reshape(-1, 2)
        out[name] = (seqs, va)
    return out


def train_music_va_predictor(cfg: VATrainConfig = VATrainConfig(), out: Path = DEFAULT_WEIGHTS,
                             model_cfg: VAPredictorConfig = VAPredictorConfig(), log=print) -> dict:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    tok = Tokenizer()
    t0 = time.time()
    d = eimg_token_data(tok, seed=cfg.seed)
    seqs, va = d["train"]
    perm = rng.permutation(len(seqs))
    n_val = int(round(cfg.val_fraction * len(seqs)))
    val_idx, tr_idx = perm[:n_val], perm[n_val:]
    model = MusicVAPredictor(model_cfg, tok)
    H = torch.from_numpy(token_histograms(seqs, model.cfg.vocab_size, model.special_ids))
    Y = torch.from_numpy(va)
    with torch.no_grad():
        F = model.features(H[tr_idx])
        model.feat_mean.copy_(F.mean(0))
        model.feat_std.copy_(F.std(0).clamp(min=1e-3))
        model.target_mean.copy_(Y[tr_idx].mean(0))
        model.target_std.copy_(Y[tr_idx].std(0))
    opt = torch.optim.AdamW(model.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    Htr, Ytr = H[tr_idx], Y[tr_idx]
    g = torch.Generator().manual_seed(cfg.seed)
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(Htr), generator=g)
        for i in range(0, len(order), cfg.batch_size):
            b = order[i:i + cfg.batch_size]
            if len(b) < 2:
                continue
            loss = (model(Htr[b]) - Ytr[b]).abs().mean()  # MAE, the loss's own metric
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        if (epoch + 1) % 50 == 0:
            model.eval()
            with torch.no_grad():
                vm = va_metrics(model(H[val_idx]).numpy(), va[val_idx])
            log(f"epoch {epoch + 1}: val MAE V {vm['valence_mae']:.3f} A {vm['arousal_mae']:.3f} "
                f"r V {vm['valence_r']:.3f} A {vm['arousal_r']:.3f}")
    model.eval()
    results = {"val": va_metrics(model.predict([seqs[i] for i in val_idx]), va[val_idx])}
    test_seqs = d["test"][0] + d["val"][0]
    test_va = np.concatenate([d["test"][1], d["val"][1]])
    results["eimg_test_plus_val"] = va_metrics(model.predict(test_seqs), test_va)
    mean_pred = np.tile(va[tr_idx].mean(0), (n_val, 1))
    base = va_metrics(mean_pred, va[val_idx])  # the trivial predictor: MAE only (r undefined)
    results["val_predict_train_mean"] = {k: base[k] for k in ("valence_mae", "arousal_mae", "n")}
    meta = {"train_config": asdict(cfg), "n_train": int(len(tr_idx)), "metrics": results,
            "data": "EIMG (training.data.split_eimg train split; val = seeded "
                    f"{cfg.val_fraction:.0%} of it; 'eimg_test_plus_val' = split_eimg test+val)",
            "train_seconds": round(time.time() - t0, 1)}
    save_music_va_predictor(model, out, meta)
    log(json.dumps(results, indent=1))
    return meta


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Train the music VA predictor on EIMG.")
    p.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    p.add_argument("--epochs", type=int, default=VATrainConfig.epochs)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    train_music_va_predictor(VATrainConfig(seed=a.seed, epochs=a.epochs), out=a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
