"""Measure a trained model and its exported bundle; the numbers go into the model card.

    python -m training.evaluate --checkpoint runs/default_finetune/model.safetensors \
        --bundle assets/models/default --out runs/eval/default.json

1. Validation loss / perplexity (torch checkpoint, fixed windows, no transposition): held-out
   EIMG clips (``split_eimg`` test; conditioned on VA + the paired hold-out picture, on VA
   only, and unconditioned) and held-out POP909 songs (unconditioned).
2. Generation through the shipped path (``engine.generator.MusicGenerator`` on the bundle,
   ONNX Runtime, engine grammar masks, default sampling): for each OASIS hold-out picture
   (``split_oasis``) one 15-second clip conditioned on the picture (image tokens + its VA
   estimate, as the app does), and one unconditioned clip.
3. Music quality (``engine.metrics``: polyphony rate, pitch entropy, groove consistency,
   Music_Quality_Loss) over the first ``--clips`` clips of each set.
4. Emotional alignment: the music VA predictor (``training.va_predictor``) on each clip vs the
   picture's rated VA: Pearson r and MAE for valence and arousal; conditioned vs unconditioned.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from engine import metrics
from engine.midi_notes import notes_from_score
from engine.tokenizer import Tokenizer
from training import data
from training.va_head import va_metrics


# -- 1. losses ------------------------------------------------------------------------------
def validation_losses(checkpoint: str | Path, windows: int = 4) -> dict:
    """Cross-entropy (nats/token) and perplexity on the held-out sets."""
    from training.train import Item, TrainConfig, Windows, evaluate, load_checkpoint, load_items

    model, meta = load_checkpoint(checkpoint)
    cfg = TrainConfig(**{**meta["train_config"], "datasets": tuple(meta["train_config"]["datasets"])})
    cfg = replace(cfg, stage="finetune", progress=False)
    tok = Tokenizer()
    _, val = load_items(cfg, tok)
    win = Windows(cfg, model.cfg, tok)
    eimg, pop = val["eimg"], val["pop909"]
    modes = {
        "eimg_test_image_va": eimg,
        "eimg_test_va_only": [Item(i.ids, i.bars, va=i.va, source=i.source) for i in eimg],
        "eimg_test_image_only": [Item(i.ids, i.bars, image=i.image, source=i.source) for i in eimg],
        "eimg_test_unconditioned": [Item(i.ids, i.bars, source=i.source) for i in eimg],
        "pop909_test_unconditioned": pop,
    }
    out = {}
    for name, items in modes.items():
        n = len(items) if name.startswith("eimg") else len(items) * windows
        ce = evaluate(model, win, items, n, torch.device("cpu"))
        out[name] = {"cross_entropy": ce, "perplexity": math.exp(ce), "windows": n}
    return out


# -- 2. generation ----------------------------------------------------------------------------
def clip_seconds(tok: Tokenizer, ids, seconds: float):
    """Decode tokens and cut the piece at ``seconds`` -> (score in ticks, its end in seconds).

    The score is resampled to the resolution of the app's .mid files (and of most EIMG files,
    whose means are the paper's reference values): MusPy's groove consistency with
    ``measure_resolution=4`` counts ticks, so it depends on that resolution."""
    from engine.generate import TICKS_PER_QUARTER

    score = tok.decode(ids).resample(TICKS_PER_QUARTER)
    sec = score.to("second")
    end = sec.end()
    if end > seconds:
        sec = sec.clip(0, seconds, clip_end=True)
    return sec.to("tick"), min(end, seconds)


def generate_clip(gen, condition, seed: int, seconds: float, max_bars: int = 64, max_tokens: int = 3000):
    """Bars until the clip lasts ``seconds`` (at most ``max_bars`` bars / ``max_tokens`` tokens);
    -> (token ids of the clip, score, length in s)."""
    from engine.generator import Condition  # noqa: F401  (documented type of ``condition``)
    from engine.sampling import SamplingOptions

    gen.set_sampling(SamplingOptions(seed=seed))
    gen.reset()
    gen.set_condition(condition)
    tok = gen.tokenizer
    ids: list[int] = []
    length = 0.0
    for _ in range(max_bars // 2):
        ids += gen.generate_bars(2, max_tokens=max_tokens - len(ids))
        score, length = clip_seconds(tok, ids, seconds)
        if length >= seconds or len(ids) >= max_tokens:
            break
    return tok.encode(score) if len(score.tracks) and len(score.tracks[0].notes) else [], score, length


def quality(scores) -> dict:
    rows = []
    for s in scores:
        n = notes_from_score(s)
        if len(n) == 0:
            continue
        pr = metrics.polyphony_rate(n, metrics.PAPER_POLYPHONY_THRESHOLD)
        pe = metrics.pitch_entropy(n)
        gc = metrics.groove_consistency(n, metrics.PAPER_MEASURE_RESOLUTION)
        rows.append((pr, pe, gc))
    a = np.array(rows, np.float64)
    pr, pe, gc = (float(np.nanmean(a[:, i])) for i in range(3))
    return {"clips": len(scores), "clips_with_notes": len(rows), "polyphony_rate": pr, "pitch_entropy": pe,
            "groove_consistency": gc, "music_quality_loss": metrics.music_quality_loss(pr, pe, gc),
            "reference": list(metrics.REFERENCE)}


def generation_eval(bundle: str | Path, clips: int = 100, seconds: float = 15.0, seed: int = 0,
                    limit: int | None = None, threads: int = 1, guidance: float = 0.0,
                    only_guided: bool = False) -> dict:
    """Clips per hold-out picture: picture-conditioned and unconditioned; with ``guidance`` > 0
    also picture-conditioned with classifier-free guidance of that weight (``only_guided``:
    that set alone)."""
    from engine.generator import Condition, MusicGenerator
    from engine.image import load_image
    from training.va_predictor import load_music_va_predictor

    gen = MusicGenerator(bundle, device="cpu", threads=threads)
    _, hold = data.split_oasis(data.load_oasis(), seed=seed)
    hold = hold[:limit] if limit else hold
    predictor = load_music_va_predictor()
    rated = np.array([r.va for r in hold])
    sets = {} if only_guided else {"image": [], "unconditioned": []}
    guided = guided_generator(bundle, guidance, threads) if guidance else None
    if guided is not None:
        sets[f"image_guided_w{guidance:g}"] = []
    est = []
    t0 = time.time()
    for i, rec in enumerate(tqdm(hold, desc="generating", unit="picture")):
        tokens, (v, a) = gen.analyze_image(load_image(rec.path))
        v, a = float(np.clip(v, 1, 9)), float(np.clip(a, 1, 9))
        est.append((v, a))
        if not only_guided:
            sets["image"].append(generate_clip(gen, Condition(v, a, tokens), 1000 + i, seconds))
            sets["unconditioned"].append(generate_clip(gen, Condition(), 1000 + i, seconds))
        if guided is not None:
            sets[f"image_guided_w{guidance:g}"].append(generate_clip(guided, Condition(v, a, tokens), 1000 + i,
                                                                     seconds))
    out = {"pictures": len(hold), "seconds": seconds, "generation_seconds": time.time() - t0,
           "image_va_head_on_these_pictures": va_metrics(np.array(est), rated)}
    for name, rows in sets.items():
        ids = [r[0] for r in rows]
        pred = predictor.predict([np.asarray(x, np.int64) for x in ids])
        out[name] = {"quality": quality([r[1] for r in rows[:clips]]),
                     "alignment_vs_rated_va": va_metrics(pred, rated),
                     "alignment_vs_condition_va": (va_metrics(pred, np.array(est)) if name.startswith("image")
                                                   else None),
                     "mean_tokens": float(np.mean([len(x) for x in ids])),
                     "mean_seconds": float(np.mean([r[2] for r in rows]))}
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="measure a model and its bundle (numbers for the model card)")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--out", required=True, help="a JSON file for the results")
    ap.add_argument("--clips", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--limit", type=int, default=None, help="only the first N hold-out pictures (quick runs)")
    ap.add_argument("--skip-losses", action="store_true")
    ap.add_argument("--guidance", type=float, default=0.0,
                    help="also measure classifier-free guidance with this weight (e.g. 3)")
    ap.add_argument("--only-guided", action="store_true", help="only the guided set")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    res = {"checkpoint": str(args.checkpoint), "bundle": str(args.bundle)}
    if not args.skip_losses:
        res["losses"] = validation_losses(args.checkpoint)
        print(json.dumps(res["losses"], indent=1), flush=True)
    res["generation"] = generation_eval(args.bundle, args.clips, args.seconds, limit=args.limit,
                                        guidance=args.guidance, only_guided=args.only_guided)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res["generation"], indent=1))



# -- classifier-free guidance (an evaluation of what the engine could add) --------------------
def guided_generator(bundle, guidance: float, threads: int = 1):
    """A MusicGenerator whose logits are ``u + w (c - u)``: c with the condition, u with the
    null condition (use_va = use_image = 0), each with its own self-attention cache. w = 1 is
    the plain model. Uses only the bundle's graphs (no contract change)."""
    from engine.generator import MusicGenerator

    class Guided(MusicGenerator):
        def reset(self):
            super().reset()
            self._ucache = self.runtime.empty_cache()

        def set_condition(self, condition):
            super().set_condition(condition)
            self._ucross = self.runtime.cross_kv(None, None)

        def logits(self):
            before = self.cache.length
            c = super().logits()  # may re-prime: then self.context holds the re-primed ids
            if self.cache.length < before + 1:  # re-primed
                self._ucache = self.runtime.empty_cache()
                u = self.runtime.decode(self.context, self._ucache, self._ucross)[-1]
            else:
                u = self.runtime.decode([self.context[-1]], self._ucache, self._ucross)[-1]
            return u + guidance * (c - u)

    return Guided(bundle, device="cpu", threads=threads)


if __name__ == "__main__":
    main()
