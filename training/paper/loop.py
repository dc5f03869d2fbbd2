"""Data and the training loop for the reproduction: seeded, resumable, safetensors checkpoints.

Data: EIMG clips paired with OASIS pictures by the paper's similarity score
(``training.data.paired_splits``); every clip becomes ``BOS + its first max_len-1 tokens``
(+ ``EOS`` when the whole clip fits). Image features of the frozen encoder are computed once
per picture and cached (``training.features.image_features``), never per step.

One run (:class:`RunConfig`) trains one table row. After every epoch the model, the Adam
state and the loss history go to ``<out>/checkpoint.safetensors`` (config in the metadata);
a rerun resumes from the last finished epoch and reproduces the uninterrupted run exactly
(data order and dropout are seeded per epoch).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from engine.music.tokenizer import Tokenizer
from training.paper.baseline import BaselineConfig, ShowAndListen
from training.paper.losses import LossConfig, cross_entropy, total_loss
from training.paper.models import CONFIGS, PaperModel, PaperModelConfig, build_image_encoder


@dataclass(frozen=True)
class RunConfig:
    name: str
    model: str = "enc3_dec3"  # "enc3_dec3" | "enc4" | "enc2_dec2" | "lstm" (Show and Listen)
    encoder: str = "efficientnet_lite0"  # "efficientnet_lite0" | "vgg16" | "inception_v3"
    epochs: int = 2
    lr: float = 1e-5  # the paper's
    betas: tuple = (0.9, 0.999)
    batch_size: int = 16
    max_len: int = 256  # tokens per clip, BOS included
    train_clips: int | None = None  # seeded subset of the training pairs; None = all
    d_model: int = 128
    va_loss: str = "none"  # "none" | "paper" | "soft"
    lambda_va: float = 1e-5
    lambda_cc: float = 1.0
    seed: int = 0
    max_steps_per_epoch: int | None = None  # smoke runs only

    @property
    def loss(self) -> LossConfig:
        return LossConfig(self.va_loss, self.lambda_va, self.lambda_cc)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        d = dict(d)
        d["betas"] = tuple(d.get("betas", (0.9, 0.999)))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------
@dataclass
class Example:
    ids: np.ndarray  # int64 [T]: BOS + tokens (+ EOS)
    image: str  # key into the image-feature table (the picture's path)
    image_va: np.ndarray  # [2] the picture's VA (1-9)
    clip_va: np.ndarray  # [2] the reference clip's VA (1-9)
    clip_id: str = ""
    image_id: str = ""


@dataclass
class PaperData:
    train: list
    test: list
    val: list
    images: dict = field(default_factory=dict)  # image path -> ImageRecord
    skipped: str = ""


def clip_sequence(ids: np.ndarray, tok: Tokenizer, max_len: int) -> np.ndarray:
    body = np.asarray(ids, np.int64)[: max_len - 1]
    seq = [tok.groups.bos, *body.tolist()]
    if len(ids) <= max_len - 2:
        seq.append(tok.groups.eos)
    return np.array(seq, np.int64)


def load_paper_data(tok: Tokenizer, max_len: int, train_clips: int | None, seed: int = 0,
                    root=None, token_cache=None, limit_eval: int | None = None) -> PaperData:
    """Paired train/test/val examples (``training.data.paired_splits(seed)``)."""
    from training import data

    pairs = data.paired_splits(seed=seed, root=root)
    if train_clips is not None and train_clips < len(pairs["train"]):
        keep = np.sort(np.random.default_rng(seed).permutation(len(pairs["train"]))[:train_clips])
        pairs["train"] = [pairs["train"][i] for i in keep]
    if limit_eval is not None:
        pairs["test"], pairs["val"] = pairs["test"][:limit_eval], pairs["val"][:limit_eval]
    out, skipped, images = {}, [], {}
    for split, ps in pairs.items():
        by_path = {str(p.clip.path): p for p in ps}
        seqs, report = data.read_tokens([p.clip for p in ps], tok, cache_dir=token_cache)
        if report.count:
            skipped.append(f"{split}: {report.summary}")
        exs = []
        for ids, rec in zip(seqs, report.kept):
            p = by_path[str(rec.path)]
            if split != "val":  # val pairs are not used by the reproduction: no features needed
                images[str(p.image.path)] = p.image
            exs.append(Example(clip_sequence(ids, tok, max_len), str(p.image.path),
                               np.array(p.image.va, np.float32), np.array(p.clip.va, np.float32),
                               p.clip.id, p.image.id))
        out[split] = exs
    return PaperData(out["train"], out["test"], out["val"], images, "; ".join(skipped))


def image_feature_table(data: PaperData, encoder: str, seed: int = 0, cache_dir=None) -> tuple[dict, dict]:
    """``{image path: feature vector [D]}`` for every picture in ``data`` (cached), and the
    encoder's description (name, pretrained or random init)."""
    from training.features import image_features

    enc = build_image_encoder(encoder, seed=seed)
    feats = image_features(list(data.images.values()), encoder=enc, cache_dir=cache_dir, progress=False)
    desc = enc.describe()
    desc["name"] = enc.name
    return {k: v.reshape(-1).float() for k, v in feats.items()}, desc


def batches(examples: list, feats: dict, batch_size: int, pad_id: int, order=None):
    """Yield (image [B, D], ids [B, T] right-padded, clip_va [B, 2], image_va [B, 2])."""
    order = range(len(examples)) if order is None else order
    order = list(order)
    for i in range(0, len(order), batch_size):
        exs = [examples[j] for j in order[i:i + batch_size]]
        T = max(len(e.ids) for e in exs)
        ids = torch.full((len(exs), T), pad_id, dtype=torch.long)
        for b, e in enumerate(exs):
            ids[b, :len(e.ids)] = torch.from_numpy(e.ids)
        yield (torch.stack([feats[e.image] for e in exs]), ids,
               torch.from_numpy(np.stack([e.clip_va for e in exs])),
               torch.from_numpy(np.stack([e.image_va for e in exs])))


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------
def build_model(cfg: RunConfig, vocab_size: int, image_dim: int, pad_id: int) -> torch.nn.Module:
    torch.manual_seed(cfg.seed)
    if cfg.model == "lstm":
        return ShowAndListen(BaselineConfig(vocab_size, image_dim, max_len=cfg.max_len, pad_id=pad_id))
    if cfg.model not in CONFIGS:
        raise ValueError(f"unknown model {cfg.model!r}; known: lstm, {', '.join(CONFIGS)}")
    n_enc, n_dec = CONFIGS[cfg.model]
    return PaperModel(PaperModelConfig(vocab_size, image_dim, n_enc=n_enc, n_dec=n_dec, d_model=cfg.d_model,
                                       d_ff=2 * cfg.d_model, max_len=cfg.max_len, pad_id=pad_id))


# --------------------------------------------------------------------------------------
# Checkpoints (safetensors: model + Adam state; config and history in the metadata)
# --------------------------------------------------------------------------------------
def save_checkpoint(path: Path, model, opt, cfg: RunConfig, epoch: int, history: list, extra: dict) -> None:
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            tensors[f"adam.{i}.{k}"] = torch.as_tensor(v).detach().clone().reshape(-1) if k == "step" else v.contiguous()
    meta = {"format": "moodroll-paper-checkpoint/1", "config": json.dumps(cfg.to_dict()),
            "epoch": str(epoch), "history": json.dumps(history), "extra": json.dumps(extra)}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def load_checkpoint(path: Path, model, opt) -> tuple[int, list, dict]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    t = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
    if opt is not None:
        sd = opt.state_dict()
        state = {}
        for k, v in t.items():
            if k.startswith("adam."):
                _, i, name = k.split(".", 2)
                state.setdefault(int(i), {})[name] = v.reshape(()) if name == "step" else v
        sd["state"] = state
        opt.load_state_dict(sd)
    return int(meta["epoch"]), json.loads(meta["history"]), json.loads(meta.get("extra", "{}"))


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate_ce(model, examples: list, feats: dict, pad_id: int, batch_size: int = 16) -> float:
    """Mean next-token cross-entropy (per token) of ``examples``."""
    model.eval()
    tot, n = 0.0, 0
    for img, ids, _, _ in batches(examples, feats, batch_size, pad_id):
        k = int((ids[:, 1:] != pad_id).sum())
        tot += float(cross_entropy(model(img, ids), ids, pad_id)) * k
        n += k
    return tot / max(n, 1)


def train_run(cfg: RunConfig, data: PaperData, feats: dict, out_dir: Path, tok: Tokenizer,
              predictor=None, log=print, progress: bool = True):
    """Train (or resume) one row; returns (model, history). ``history``: one dict per epoch."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pad = tok.groups.pad
    image_dim = next(iter(feats.values())).numel()
    model = build_model(cfg, tok.vocab_size, image_dim, pad)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas)
    ckpt = out_dir / "checkpoint.safetensors"
    start, history = 0, []
    if ckpt.is_file():
        start, history, _ = load_checkpoint(ckpt, model, opt)
        log(f"[{cfg.name}] resuming after epoch {start}")
    if cfg.va_loss != "none" and predictor is None:
        raise ValueError(f"[{cfg.name}] va_loss={cfg.va_loss!r} needs the music VA predictor")
    for epoch in range(start, cfg.epochs):
        torch.manual_seed(cfg.seed * 1000 + epoch)  # dropout: same stream on resume
        order = np.random.default_rng(cfg.seed * 1000 + epoch).permutation(len(data.train))
        model.train()
        sums = {"loss": 0.0, "cc": 0.0, "va": 0.0}
        n_steps, t0, va_time = 0, time.time(), 0.0
        it = batches(data.train, feats, cfg.batch_size, pad, order)
        n_total = math.ceil(len(order) / cfg.batch_size)
        if cfg.max_steps_per_epoch:
            n_total = min(n_total, cfg.max_steps_per_epoch)
        bar = tqdm(it, total=n_total, desc=f"{cfg.name} epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                   leave=False)
        for img, ids, clip_va, _ in bar:
            logits = model(img, ids)
            tv = time.time()
            losses = total_loss(cfg.loss, logits, ids, clip_va, predictor, tok, pad)
            va_time += time.time() - tv if cfg.va_loss != "none" else 0.0
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            opt.step()
            for k in sums:
                if losses.get(k) is not None:
                    sums[k] += float(losses[k].detach())
            n_steps += 1
            bar.set_postfix(loss=f"{sums['loss'] / n_steps:.4f}")
            if n_steps >= n_total:
                break
        wall = time.time() - t0
        row = {"epoch": epoch + 1, "train_loss": sums["loss"] / max(n_steps, 1),
               "train_cc": sums["cc"] / max(n_steps, 1),
               "train_va": sums["va"] / max(n_steps, 1) if cfg.va_loss != "none" else None,
               "test_cc": evaluate_ce(model, data.test, feats, pad), "steps": n_steps,
               "seconds": round(wall, 1), "seconds_per_step": wall / max(n_steps, 1),
               "va_loss_seconds_per_step": va_time / max(n_steps, 1)}
        history.append(row)
        save_checkpoint(ckpt, model, opt, cfg, epoch + 1, history, {})
        log(f"[{cfg.name}] epoch {epoch + 1}: loss {row['train_loss']:.4f} (cc {row['train_cc']:.4f}"
            + (f", va {row['train_va']:.3f}" if row["train_va"] is not None else "")
            + f") test cc {row['test_cc']:.4f}; {row['seconds']:.0f}s")
    model.eval()
    return model, history
