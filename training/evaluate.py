"""Measure a trained model and its exported bundle; the numbers go into the model card.

    python -m training.evaluate --checkpoint runs/default_finetune/model.safetensors \
        --bundle assets/models/default --out runs/eval/default.json

1. Validation loss / perplexity (torch checkpoint, fixed windows, no transposition): held-out
   EIMG clips (``split_eimg`` test; conditioned on VA + the paired hold-out picture, on VA
   only, and unconditioned) and held-out POP909 songs (unconditioned).
2. Generation through the shipped path (``engine.model.generator.MusicGenerator`` on the bundle,
   ONNX Runtime, engine grammar masks, default sampling): for each OASIS hold-out picture
   (``split_oasis``) 15-second clips conditioned on the picture (image tokens + its VA
   estimate, as the app does) and one unconditioned clip.
3. Music quality (``engine.music.metrics``: polyphony rate, pitch entropy, groove consistency,
   Music_Quality_Loss) over the first ``--clips`` clips of each set.
4. Emotional alignment: the music VA predictor (``training.va_predictor``) on each clip vs the
   picture's rated VA: Pearson r and MAE for valence and arousal; conditioned (emotion strength
   w = 1 and the engine's default) vs unconditioned.
5. A VA-grid probe with no pictures (VA-only conditions; controllability, and the check used to
   choose between models), and correlations of interpretable clip features (notes per second,
   velocity, tempo, pitch, major/minor) with VA, which do not depend on the music VA predictor
   that a VA-loss fine-tune was trained against; EIMG's own clips give the reference values.
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

from engine.music import metrics
from engine.music.notes import notes_from_score
from engine.model.sampling import DEFAULT_GUIDANCE
from engine.music.tokenizer import Tokenizer
from training import data
from training.va_head import pearson, va_metrics


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
    from engine.offline import TICKS_PER_QUARTER

    score = tok.decode(ids).resample(TICKS_PER_QUARTER)
    sec = score.to("second")
    end = sec.end()
    if end > seconds:
        sec = sec.clip(0, seconds, clip_end=True)
    return sec.to("tick"), min(end, seconds)


def generate_clip(gen, condition, seed: int, seconds: float, guidance: float = 1.0, max_bars: int = 64,
                  max_tokens: int = 3000):
    """Bars until the clip lasts ``seconds`` (at most ``max_bars`` bars / ``max_tokens`` tokens),
    with the engine's emotion strength ``guidance`` (1 = off); -> (token ids, score, length in s)."""
    from engine.model.generator import Condition  # noqa: F401  (documented type of ``condition``)
    from engine.model.sampling import SamplingOptions

    gen.set_sampling(SamplingOptions(seed=seed, guidance=guidance))
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


# -- 5. a check that does not use the music VA predictor ---------------------------------------
FEATURES = ("notes_per_second", "mean_velocity", "tempo_bpm", "mean_pitch", "major_minus_minor")


def clip_features(score) -> dict:
    """Interpretable statistics of a clip (engine.music.metrics), NaN where undefined:
    notes per second, mean velocity, opening tempo, mean pitch, and the Krumhansl-Schmuckler
    mode score (best major-key r minus best minor-key r; > 0 = major)."""
    n = notes_from_score(score).pitched()
    if len(n) == 0:
        return {f: float("nan") for f in FEATURES}
    d = metrics.describe(n)
    key = metrics.estimate_key(n)
    mode = float("nan") if key is None else (key.mode_clarity if key.mode == "major" else -key.mode_clarity)
    return {"notes_per_second": d["note_density"] or float("nan"), "mean_velocity": d["mean_velocity"],
            "tempo_bpm": d["tempo_bpm"], "mean_pitch": float(n.pitch.mean()), "major_minus_minor": mode}


def feature_correlations(feats: list[dict], va: np.ndarray) -> dict:
    """Pearson r of every clip feature with valence and with arousal (clips where it is defined)."""
    va = np.asarray(va, np.float64)
    out = {}
    for d, name in enumerate(("valence", "arousal")):
        row = {}
        for f in FEATURES:
            x = np.array([c[f] for c in feats], np.float64)
            ok = np.isfinite(x)
            r = pearson(x[ok], va[ok, d]) if ok.sum() > 2 else float("nan")
            row[f] = None if math.isnan(r) else r
        out[name] = row
    return out


def eimg_reference_correlations(seed: int = 0) -> dict:
    """The same feature correlations on real EIMG held-out clips (test + val) against their
    labels: how the data itself ties these features to valence and arousal."""
    import symusic

    splits = data.split_eimg(data.load_eimg(), seed=seed)
    recs = list(splits.test) + list(splits.val)
    feats = [clip_features(symusic.Score(str(r.path))) for r in recs]
    return {"clips": len(recs), "r": feature_correlations(feats, np.array([r.va for r in recs]))}


def summarise(rows, predictor, clips: int, rated: np.ndarray | None, condition: np.ndarray | None) -> dict:
    """Quality, predictor alignment (vs rated VA and vs the condition) and feature checks of a set."""
    ids = [r[0] for r in rows]
    pred = predictor.predict([np.asarray(x, np.int64) for x in ids])
    feats = [clip_features(r[1]) for r in rows]
    return {"quality": quality([r[1] for r in rows[:clips]]),
            "alignment_vs_rated_va": None if rated is None else va_metrics(pred, rated),
            "alignment_vs_condition_va": None if condition is None else va_metrics(pred, condition),
            "features_vs_rated_va": None if rated is None else feature_correlations(feats, rated),
            "features_vs_condition_va": None if condition is None else feature_correlations(feats, condition),
            "mean_tokens": float(np.mean([len(x) for x in ids])),
            "mean_seconds": float(np.mean([r[2] for r in rows]))}


def generation_eval(bundle: str | Path, clips: int = 100, seconds: float = 15.0, seed: int = 0,
                    limit: int | None = None, threads: int = 1, guidance: tuple = (1.0, DEFAULT_GUIDANCE)) -> dict:
    """One clip per hold-out picture and emotion strength w in ``guidance`` (``image_w<w>``),
    plus one unconditioned clip, all with the same seeds."""
    from engine.model.generator import Condition, MusicGenerator
    from engine.picture.image import load_image
    from training.va_predictor import load_music_va_predictor

    gen = MusicGenerator(bundle, device="cpu", threads=threads)
    _, hold = data.split_oasis(data.load_oasis(), seed=seed)
    hold = hold[:limit] if limit else hold
    predictor = load_music_va_predictor()
    rated = np.array([r.va for r in hold])
    sets = {f"image_w{w:g}": [] for w in guidance}
    sets["unconditioned"] = []
    est = []
    t0 = time.time()
    for i, rec in enumerate(tqdm(hold, desc="generating", unit="picture")):
        tokens, (v, a) = gen.analyze_image(load_image(rec.path))
        v, a = float(np.clip(v, 1, 9)), float(np.clip(a, 1, 9))
        est.append((v, a))
        for w in guidance:
            sets[f"image_w{w:g}"].append(generate_clip(gen, Condition(v, a, tokens), 1000 + i, seconds, w))
        sets["unconditioned"].append(generate_clip(gen, Condition(), 1000 + i, seconds))
    est = np.array(est)
    out = {"pictures": len(hold), "seconds": seconds, "guidance": list(guidance),
           "generation_seconds": time.time() - t0, "image_va_head_on_these_pictures": va_metrics(est, rated)}
    for name, rows in sets.items():
        out[name] = summarise(rows, predictor, clips, rated, None if name == "unconditioned" else est)
    return out


GRID = (2.0, 3.5, 5.0, 6.5, 8.0)


def va_grid_eval(bundle: str | Path, values=GRID, seeds: int = 2, seconds: float = 15.0,
                 guidance: float = DEFAULT_GUIDANCE, threads: int = 1) -> dict:
    """Controllability without pictures: VA-only conditions on a ``values`` x ``values`` grid,
    ``seeds`` clips each; does the music's VA (and its tempo, density, mode...) follow the
    requested VA? Uses no OASIS picture, so it can choose between models without touching the
    hold-out set."""
    from engine.model.generator import Condition, MusicGenerator
    from training.va_predictor import load_music_va_predictor

    gen = MusicGenerator(bundle, device="cpu", threads=threads)
    predictor = load_music_va_predictor()
    rows, cond = [], []
    t0 = time.time()
    points = [(v, a) for v in values for a in values]
    for j, (v, a) in enumerate(tqdm(points, desc="VA grid", unit="point")):
        for k in range(seeds):
            rows.append(generate_clip(gen, Condition(v, a), 5000 + 100 * j + k, seconds, guidance))
            cond.append((v, a))
    out = {"values": list(values), "seeds": seeds, "guidance": guidance, "generation_seconds": time.time() - t0}
    out.update(summarise(rows, predictor, len(rows), None, np.array(cond)))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="measure a model and its bundle (numbers for the model card)")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--out", required=True, help="a JSON file for the results")
    ap.add_argument("--clips", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--limit", type=int, default=None, help="only the first N hold-out pictures (quick runs)")
    ap.add_argument("--guidance", type=float, nargs="+", default=[1.0, DEFAULT_GUIDANCE],
                    help="emotion strengths to measure on the hold-out pictures (default: 1 = off and the "
                         "engine's default)")
    ap.add_argument("--skip-losses", action="store_true")
    ap.add_argument("--grid-only", action="store_true",
                    help="only the VA-grid probe (no pictures: for choosing between models)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = {"checkpoint": str(args.checkpoint), "bundle": str(args.bundle)}
    if not args.skip_losses and not args.grid_only:
        res["losses"] = validation_losses(args.checkpoint)
        print(json.dumps(res["losses"], indent=1), flush=True)
    res["va_grid"] = va_grid_eval(args.bundle, seconds=args.seconds, threads=args.threads)
    if not args.grid_only:
        res["generation"] = generation_eval(args.bundle, args.clips, args.seconds, limit=args.limit,
                                            threads=args.threads, guidance=tuple(args.guidance))
        res["eimg_reference_features"] = eimg_reference_correlations()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps({k: v for k, v in res.items() if k != "losses"}, indent=1))


if __name__ == "__main__":
    main()
