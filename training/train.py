"""Train the music model: ``python -m training.train --config training/configs/X.json``.

Two stages, one loop (``stage`` in the config):

* ``pretrain`` - a language model over POP909 (+ VGMIDI + the EIMG train split). POP909 is
  unlabelled (unconditioned); VGMIDI/EIMG windows carry their VA label (dropped with
  ``p_drop_va``). No images.
* ``finetune`` - EIMG train clips paired with OASIS train pictures (``training.data.paired_splits``),
  conditioned on the clip's VA and the picture's cached image tokens, each dropped
  independently (condition dropout: image-only, VA-only and unconditioned all get trained), plus
  a share of unconditioned POP909 windows so the language model is not forgotten.

``va_loss_weight`` > 0 adds the differentiable VA loss of the paper reproduction
(``training.paper.losses.soft_va_error``): the music VA predictor (``training.va_predictor``) reads
the expected token histogram of each window under the model's softmax, and its MAE against the
clip's labelled VA is added with that weight, for every labelled window that kept a condition
(VA and/or picture). The loss passes gradient to every logit, so it teaches the model to move
the music's global statistics (tempo, density, register, velocity, mode) with the condition.

Samples are random windows of ``max_context + 1`` tokens (inputs at positions 0..max_context-1)
that start at a ``Bar`` token, BOS-prefixed, PAD-padded (PAD is not scored), with random
transposition. Seeded and resumable: ``<out_dir>/model.safetensors`` holds the weights with the
train and model configs as JSON metadata, ``<out_dir>/optimizer.pt`` the optimizer state
(``torch.load(weights_only=True)``), ``<out_dir>/log.json`` and ``loss.png`` the curves.
Re-running the same command resumes from the last checkpoint.

Several processes: ``torchrun --nproc_per_node N -m training.train --config ...``
(DistributedDataParallel; gloo on CPU, NCCL on CUDA). Each rank samples its own windows.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_model, safe_open, save_model
from tqdm import tqdm

from engine.paths import REPO_ROOT
from engine.music.tokenizer import Tokenizer
from engine.emotion.va import VA_MID
from training import data
from training.model import ModelConfig, MusicModel
from training.paper.losses import soft_va_error

CHECKPOINT_FORMAT = "moodroll-checkpoint/1"


@dataclass(frozen=True)
class TrainConfig:
    name: str = "default"
    stage: str = "pretrain"  # "pretrain" | "finetune"
    out_dir: str = "runs/default"
    init_from: str = ""  # a checkpoint whose weights start this run (finetune starts from pretrain)
    model: dict = field(default_factory=dict)  # ModelConfig fields (defaults otherwise)
    encoder: str = "efficientnet_lite0"
    encoder_pretrained: bool = True
    data_seed: int = 0  # the seed of every data split (EIMG, OASIS, POP909)
    datasets: tuple = ("pop909", "vgmidi", "eimg")  # pretrain
    mix: dict = field(default_factory=lambda: {"pop909": 0.5, "vgmidi": 0.15, "eimg": 0.35})
    finetune_pop909: float = 0.2  # finetune: share of unconditioned POP909 windows
    max_files: int = 0  # per data set; 0 = all (tests use a few)
    batch_size: int = 8
    lr: float = 6e-4
    min_lr: float = 6e-5
    warmup: int = 100
    max_steps: int = 2000  # the length of the lr schedule
    stop_at: int = 0  # stop this invocation at this step (0 = max_steps): a long schedule run in several resumed invocations
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    p_drop_va: float = 0.3
    p_drop_image: float = 0.3
    transpose: int = 5  # random transposition by -transpose..+transpose semitones (0 = off)
    p_from_start: float = 0.0  # share of windows that start at a piece's first bar (its tempo, its opening)
    va_loss_weight: float = 0.0  # λ of the differentiable VA loss (0 = cross-entropy only)
    va_predictor: str = ""  # music VA predictor weights for that loss ("" = training/weights/music_va)
    attr_loss_weight: float = 0.0  # weight of the attribute loss (training.attribute_loss; 0 = off)
    log_every: int = 10
    eval_every: int = 200
    eval_batches: int = 8
    ckpt_every: int = 100
    seed: int = 0
    threads: int = 2  # torch CPU threads per process
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    progress: bool = True

    @classmethod
    def from_json(cls, path: str | Path) -> "TrainConfig":
        d = json.loads(Path(path).read_text())
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown config field(s) {sorted(unknown)}")
        if "datasets" in d:
            d["datasets"] = tuple(d["datasets"])
        return cls(**d)

    @property
    def model_config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.model)


# -- data -----------------------------------------------------------------------------------
@dataclass
class Item:
    """One token sequence and its condition (None = unconditioned)."""

    ids: np.ndarray
    bars: np.ndarray  # indices of its Bar tokens (window starts)
    va: tuple | None = None
    image: torch.Tensor | None = None  # image tokens [Ni, Dc]
    source: str = ""


def _items(arrays, records, bar_id, va=True, images=None) -> list[Item]:
    out = []
    for ids, rec in zip(arrays, records):
        bars = np.flatnonzero(ids == bar_id)
        if len(bars) == 0:
            continue
        out.append(Item(ids=ids, bars=bars, va=rec.va if va else None,
                        image=None if images is None else images[str(rec.path)], source=rec.dataset))
    return out


def _limit(recs, n):
    return list(recs)[:n] if n else list(recs)


def load_items(cfg: TrainConfig, tok: Tokenizer) -> tuple[dict, dict]:
    """-> (train groups {name: [Item]}, validation groups {name: [Item]})."""
    bar, n = tok.groups.bar, cfg.max_files
    seed = cfg.data_seed

    def toks(recs):
        arrays, report = data.read_tokens(recs, tok)
        return arrays, report.kept

    pop = data.split_eimg(data.load_pop909(), seed=seed)  # the paper's proportions, any records
    train, val = {}, {}
    val["pop909"] = _items(*toks(_limit(pop.test, n)), bar, va=False)
    if cfg.stage == "pretrain":
        if "pop909" in cfg.datasets:
            train["pop909"] = _items(*toks(_limit(pop.train, n)), bar, va=False)
        if "vgmidi" in cfg.datasets:
            train["vgmidi"] = _items(*toks(_limit(data.split_eimg(data.load_vgmidi(), seed=seed).train, n)), bar)
        eimg = data.split_eimg(data.load_eimg(), seed=seed)
        if "eimg" in cfg.datasets:
            train["eimg"] = _items(*toks(_limit(eimg.train, n)), bar)
        val["eimg"] = _items(*toks(_limit(eimg.test, n)), bar)
    elif cfg.stage == "finetune":
        from training.features import image_features
        pairs = {k: _limit(v, n) for k, v in data.paired_splits(seed=seed).items()}
        used = {str(p.image.path): p.image for k in ("train", "test") for p in pairs[k]}
        feats = image_features(list(used.values()), cfg.encoder, progress=cfg.progress)  # cached
        for split, group in (("train", train), ("test", val)):
            ps = pairs[split]
            arrays, kept = toks([p.clip for p in ps])
            by_clip = {p.clip.path: p.image for p in ps}
            imgs = {str(c.path): feats[str(by_clip[c.path].path)] for c in kept}
            group["eimg"] = _items(arrays, kept, bar, images=imgs)
        if cfg.finetune_pop909 > 0:
            train["pop909"] = _items(*toks(_limit(pop.train, n)), bar, va=False)
    else:
        raise ValueError(f"unknown stage {cfg.stage!r}: use 'pretrain' or 'finetune'")
    empty = [k for k, v in train.items() if not v]
    if empty or not train:
        raise ValueError(f"no training data for {empty or cfg.datasets}")
    return train, val


class Windows:
    """Draws batches of BOS-prefixed windows starting at Bar tokens, with conditions."""

    def __init__(self, cfg: TrainConfig, mcfg: ModelConfig, tok: Tokenizer):
        self.cfg, self.mcfg, self.g = cfg, mcfg, tok.groups
        self.length = mcfg.max_context + 1
        self.pitch_of = np.full(mcfg.vocab_size, -1, np.int64)
        for i, p in self.g.pitch.items():
            self.pitch_of[i] = p
        self.id_of_pitch = {p: i for i, p in self.g.pitch.items()}

    def transpose(self, ids: np.ndarray, k: int) -> np.ndarray:
        if k == 0:
            return ids
        p = self.pitch_of[ids]
        is_pitch = p >= 0
        shifted = p[is_pitch] + k
        if shifted.size and (shifted.min() < min(self.id_of_pitch) or shifted.max() > max(self.id_of_pitch)):
            return ids  # would leave the piano's range: keep the original key
        out = ids.copy()
        out[is_pitch] = [self.id_of_pitch[int(x)] for x in shifted]
        return out

    def window(self, item: Item, rng: np.random.Generator, start: int | None = None,
               augment: bool = True) -> np.ndarray:
        if start is None:
            first = self.cfg.p_from_start > 0 and rng.random() < self.cfg.p_from_start
            start = int(item.bars[0] if first else item.bars[rng.integers(len(item.bars))])
        s = start
        w = item.ids[s:s + self.length - 1].astype(np.int64)
        if augment and self.cfg.transpose:
            w = self.transpose(w, int(rng.integers(-self.cfg.transpose, self.cfg.transpose + 1)))
        out = np.full(self.length, self.g.pad, np.int64)
        out[0] = self.g.bos
        out[1:1 + len(w)] = w
        return out

    def condition(self, items: list[Item], rng: np.random.Generator | None):
        """Batch condition tensors; rng=None means no dropout (evaluation)."""
        B, c = len(items), self.mcfg
        va = torch.full((B, 2), VA_MID)
        use_va, use_img = torch.zeros(B, 1), torch.zeros(B, 1)
        img = torch.zeros(B, c.image_tokens, c.image_dim)
        for b, it in enumerate(items):
            if it.va is not None and (rng is None or rng.random() >= self.cfg.p_drop_va):
                va[b] = torch.tensor(it.va, dtype=torch.float32)
                use_va[b] = 1.0
            if it.image is not None and (rng is None or rng.random() >= self.cfg.p_drop_image):
                img[b] = it.image
                use_img[b] = 1.0
        return va, use_va, img, use_img

    def batch(self, groups: dict, mix: dict, rng: np.random.Generator):
        names = list(groups)
        p = np.array([mix.get(k, 0.0) for k in names], np.float64)
        p = p / p.sum() if p.sum() > 0 else np.full(len(names), 1 / len(names))
        items = []
        for _ in range(self.cfg.batch_size):
            g = groups[names[rng.choice(len(names), p=p)]]
            items.append(g[rng.integers(len(g))])
        x = torch.from_numpy(np.stack([self.window(it, rng) for it in items]))
        return x, self.condition(items, rng), self.labels(items)

    @staticmethod
    def labels(items: list[Item]):
        """(B, 2) labelled VA (VA_MID where none) and a (B,) bool mask of labelled items,
        whatever the condition dropout kept: the VA loss's targets."""
        va = torch.full((len(items), 2), VA_MID)
        known = torch.zeros(len(items), dtype=torch.bool)
        for b, it in enumerate(items):
            if it.va is not None:
                va[b], known[b] = torch.tensor(it.va, dtype=torch.float32), True
        return va, known


def loss_fn(model, x, cond, pad: int, labels=None, predictor=None, va_weight: float = 0.0,
            attributes=None, attr_weight: float = 0.0) -> dict:
    """-> {"loss", "ce", "va", "attr"}: token cross-entropy (PAD not scored), plus ``va_weight`` x the
    differentiable VA loss and ``attr_weight`` x the attribute loss (training.attribute_loss) over
    the labelled windows that kept a condition ("va"/"attr" are None when off or when the batch has none)."""
    logits = model(x[:, :-1], *cond)
    tgt = x[:, 1:]
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=pad)
    out = {"loss": ce, "ce": ce, "va": None, "attr": None}
    if labels is None:
        return out
    target, known = labels
    rows = known & ((cond[1][:, 0] > 0) | (cond[3][:, 0] > 0))
    if not bool(rows.any()):
        return out
    if predictor is not None and va_weight > 0:
        out["va"] = soft_va_error(logits[rows], tgt[rows] != pad, target[rows], predictor)
        out["loss"] = out["loss"] + va_weight * out["va"]
    if attributes is not None and attr_weight > 0:
        out["attr"] = attributes.loss(logits[rows], tgt[rows] != pad, target[rows])
        out["loss"] = out["loss"] + attr_weight * out["attr"]
    return out


def validation_windows(win: Windows, items: list[Item], n: int, seed: int = 1234):
    """A fixed set of windows (the same at every evaluation): the first window of each item,
    then random ones, ``n`` in all, without transposition."""
    rng = np.random.default_rng(seed)
    chosen = [items[i % len(items)] for i in range(n)]
    xs = [win.window(it, rng, start=int(it.bars[0]) if i < len(items) else None, augment=False)
          for i, it in enumerate(chosen)]
    return torch.from_numpy(np.stack(xs)), chosen


@torch.no_grad()
def evaluate(model, win: Windows, items: list[Item], n: int, device, conditioned: bool = True, batch: int = 8) -> float:
    """Mean token cross-entropy over fixed validation windows (PAD not scored)."""
    was = model.training
    model.eval()
    x, chosen = validation_windows(win, items, n)
    total, count = 0.0, 0
    for i in range(0, len(x), batch):
        xb, its = x[i:i + batch].to(device), chosen[i:i + batch]
        cond = win.condition(its if conditioned else [Item(it.ids, it.bars) for it in its], None)
        logits = model(xb[:, :-1], *(c.to(device) for c in cond))
        tgt = xb[:, 1:]
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=win.g.pad,
                             reduction="sum")
        total += ce.item()
        count += int((tgt != win.g.pad).sum())
    model.train(was)
    return total / max(count, 1)


# -- checkpoints ------------------------------------------------------------------------------
def save_checkpoint(model: MusicModel, opt, step: int, cfg: TrainConfig, history: dict, out: Path,
                    extra: dict | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    meta = {"format": CHECKPOINT_FORMAT, "train_config": json.dumps(asdict(cfg)),
            "model_config": json.dumps(model.cfg.to_dict()), "step": str(step)}
    meta.update({k: json.dumps(v) for k, v in (extra or {}).items()})
    tmp = out / "model.safetensors.tmp"
    save_model(model, str(tmp), metadata=meta)
    os.replace(tmp, out / "model.safetensors")
    if opt is not None:
        torch.save({"optimizer": opt.state_dict(), "step": step}, out / "optimizer.pt.tmp")
        os.replace(out / "optimizer.pt.tmp", out / "optimizer.pt")
    (out / "log.json").write_text(json.dumps(history))


def checkpoint_metadata(path: str | Path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a Moodroll checkpoint (format {meta.get('format')!r})")
    return meta


def load_checkpoint(path: str | Path, device="cpu") -> tuple[MusicModel, dict]:
    """A checkpoint file -> (model in eval mode, metadata with train_config/model_config parsed)."""
    meta = checkpoint_metadata(path)
    mcfg = ModelConfig.from_dict(json.loads(meta["model_config"]))
    model = MusicModel(mcfg)
    load_model(model, str(path), device=str(device))
    parsed = {"format": meta["format"], "step": int(meta["step"]),
              "train_config": json.loads(meta["train_config"]), "model_config": json.loads(meta["model_config"])}
    return model.eval(), parsed


def plot_va_curve(ax, history: dict) -> None:
    """The VA-loss curve of a run, if it has one, on a second y axis of ``ax``."""
    if history.get("train_va"):
        s, l = zip(*history["train_va"])
        ax2 = ax.twinx()
        ax2.plot(s, l, color="tab:red", alpha=0.6, label="train VA loss")
        ax2.set_ylabel("VA loss (MAE, 1-9)")
        ax2.legend(loc="upper right")


def plot_history(history: dict, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    if history["train"]:
        s, l = zip(*history["train"])
        ax.plot(s, l, label="train", alpha=0.6)
    for name, pts in history["val"].items():
        if pts:
            s, l = zip(*pts)
            ax.plot(s, l, "o-", label=f"val {name}")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    plot_va_curve(ax, history)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def lr_at(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.max_steps - cfg.warmup))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t))


# -- the loop --------------------------------------------------------------------------------
def train(cfg: TrainConfig, resume: str | Path | None = None) -> Path:
    """Run (or resume) a training run; returns the checkpoint path. ``resume``: a file written by
    ``training.publish`` (weights, step, history; no optimizer state), used when ``out_dir`` has no
    checkpoint of its own: the run goes on from its step, re-warming the learning rate."""
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if ddp:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    torch.set_num_threads(cfg.threads)
    main = rank == 0
    out = Path(cfg.out_dir)
    if not out.is_absolute():
        out = REPO_ROOT / out

    tok = Tokenizer()
    mcfg = replace(cfg.model_config, vocab_size=tok.vocab_size)  # the vocabulary decides
    torch.manual_seed(cfg.seed)
    model = MusicModel(mcfg)
    opt = torch.optim.AdamW(
        [{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": cfg.weight_decay},
         {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.95))
    step, history, rewarm_from = 0, {"train": [], "val": {}}, None
    ckpt = out / "model.safetensors"
    if ckpt.is_file():  # resume
        load_model(model, str(ckpt))
        state = torch.load(out / "optimizer.pt", map_location="cpu", weights_only=True)
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        if (out / "log.json").is_file():
            history = json.loads((out / "log.json").read_text())
        if main:
            print(f"resuming {out} at step {step}", flush=True)
    elif resume:
        meta = checkpoint_metadata(resume)
        load_model(model, str(resume))  # float16 values are copied into the float32 parameters
        step = rewarm_from = int(meta["step"])
        history = json.loads(meta.get("history", '{"train": [], "val": {}}'))
        if main:
            print(f"resuming from {resume} at step {step} (fresh optimizer state, lr re-warmed)", flush=True)
    elif cfg.init_from:
        src = Path(cfg.init_from)
        load_model(model, str(src if src.is_absolute() else REPO_ROOT / src))
        if main:
            print(f"initialised from {cfg.init_from}", flush=True)
    model.to(device)
    if main:
        print(f"model: {model.num_params() / 1e6:.2f} M parameters; {mcfg}; world size {world}; {device}",
              flush=True)
    net = torch.nn.parallel.DistributedDataParallel(model) if ddp else model

    train_groups, val_groups = load_items(cfg, tok)
    mix = dict(cfg.mix) if cfg.stage == "pretrain" else {"eimg": 1.0 - cfg.finetune_pop909,
                                                          "pop909": cfg.finetune_pop909}
    win = Windows(cfg, mcfg, tok)
    predictor = None
    if cfg.va_loss_weight > 0:
        from training.va_predictor import load_music_va_predictor
        predictor = load_music_va_predictor(cfg.va_predictor or None, device=str(device))
    attributes = None
    if cfg.attr_loss_weight > 0:
        from training.attribute_loss import AttributeTargets
        labelled = [it for it in train_groups.get("eimg", []) if it.va is not None]
        attributes = AttributeTargets.fit([it.ids for it in labelled], [it.va for it in labelled], tok.groups,
                                          mcfg.vocab_size)
        if main:
            print(f"attribute targets from {len(labelled)} EIMG train clips: r {attributes.r}", flush=True)
    if main:
        sizes = {k: (len(v), int(sum(len(i.ids) for i in v))) for k, v in train_groups.items()}
        print(f"train (items, tokens): {sizes}; val items: { {k: len(v) for k, v in val_groups.items()} }",
              flush=True)

    bar = tqdm(total=cfg.max_steps, initial=step, desc=f"{cfg.name} {cfg.stage}", disable=not (main and cfg.progress),
               dynamic_ncols=True)
    t0, recent, recent_va, recent_attr = time.time(), [], [], []
    model.train()
    end = min(cfg.stop_at, cfg.max_steps) if cfg.stop_at else cfg.max_steps
    while step < end:
        rng = np.random.default_rng([cfg.seed, rank, step])  # resumable: depends on the step only
        x, cond, labels = win.batch(train_groups, mix, rng)
        x, cond = x.to(device), tuple(c.to(device) for c in cond)
        labels = tuple(t.to(device) for t in labels)
        lr = lr_at(cfg, step)
        if rewarm_from is not None:
            lr *= min(1.0, (step - rewarm_from + 1) / max(1, cfg.warmup))
        for g in opt.param_groups:
            g["lr"] = lr
        losses = loss_fn(net, x, cond, win.g.pad, labels, predictor, cfg.va_loss_weight, attributes,
                         cfg.attr_loss_weight)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        recent.append(losses["ce"].item())
        if losses["va"] is not None:
            recent_va.append(losses["va"].item())
        if losses["attr"] is not None:
            recent_attr.append(losses["attr"].item())
        bar.update(1)
        if step % cfg.log_every == 0 or step == end:
            avg = float(np.mean(recent))
            history["train"].append((step, avg))
            va_txt = ""
            if recent_va:
                history.setdefault("train_va", []).append((step, float(np.mean(recent_va))))
                va_txt = f" va {np.mean(recent_va):.4f}"
            if recent_attr:
                history.setdefault("train_attr", []).append((step, float(np.mean(recent_attr))))
                va_txt += f" attr {np.mean(recent_attr):.4f}"
            recent, recent_va, recent_attr = [], [], []
            bar.set_postfix(loss=f"{avg:.3f}", lr=f"{lr_at(cfg, step):.1e}")
            if main and not cfg.progress:
                print(f"step {step} loss {avg:.4f}{va_txt} {time.time() - t0:.0f}s", flush=True)
        if main and (step % cfg.eval_every == 0 or step == end):
            for name, items in val_groups.items():
                if items:
                    v = evaluate(model, win, items, cfg.eval_batches * cfg.batch_size, device)
                    history["val"].setdefault(name, []).append((step, v))
                    print(f"\nstep {step}: val {name} {v:.4f} (ppl {math.exp(v):.2f})", flush=True)
        if main and (step % cfg.ckpt_every == 0 or step == end):
            save_checkpoint(model, opt, step, cfg, history, out)
            plot_history(history, out / "loss.png", f"{cfg.name} ({cfg.stage})")
    bar.close()
    if ddp:
        dist.barrier()
        dist.destroy_process_group()
    return ckpt


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="a JSON file of TrainConfig fields")
    ap.add_argument("--resume", metavar="FILE", help="continue from a file written by training.publish "
                    "when out_dir holds no checkpoint (e.g. the committed weights, in a fresh checkout)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON",
                    help="override config fields, e.g. max_steps=10 out_dir='\"runs/x\"'")
    args = ap.parse_args(argv)
    cfg = TrainConfig.from_json(args.config)
    over = {}
    for kv in args.set:
        k, _, v = kv.partition("=")
        try:
            over[k] = json.loads(v)
        except ValueError:
            over[k] = v
    if over:
        cfg = replace(cfg, **over)
    train(cfg, resume=args.resume)


if __name__ == "__main__":
    main()
