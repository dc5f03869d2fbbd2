"""Keys without a key asked: does a take stay in its planned key, and how chromatic is it?

    nice -n 10 python -m training.keys_eval --out runs/eval/keys.json      # dev split, ~10 min

For each setting (the planned key as a hard lock, or only leaning the pitches at several tonal
bias weights) it generates grid clips through the shipped engine path (``training.realness``'s
clip maker, dev seeds) and reports: how many are heard in the planned key (the Krumhansl–Schmuckler
estimate has the planned key's pitch set: same key, or its relative), how many tonics the
estimates span, and the share of notes outside the estimated key's scale; the same share for
held-out human EIMG clips (dev split) beside it. Chooses nothing by itself: the weight shipped in
``engine.emotion.attributes.TONAL_BIAS`` was read off this table.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.emotion import attributes
from engine.emotion.planner import EmotionPlanner
from engine.model.controls import MusicalControls
from engine.model.generator import Condition
from engine.music import metrics
from engine.music.theory import parse_key
from training.realness import RealnessConfig, _generator, _offline_clip, _points, human_clips, round_trip

SEED_BASE = 45000


def pitch_set(scale) -> frozenset:
    return frozenset(p for p in range(12) if scale.contains(p))


def out_of_scale(notes, scale) -> float:
    """Share of notes whose pitch class is outside ``scale``."""
    p = notes.pitched()
    return float(np.mean([not scale.contains(int(x)) for x in p.pitch])) if len(p) else 0.0


def run_setting(gen, cfg: RealnessConfig, clips: int, lock: bool, bias: float) -> dict:
    saved = attributes.TONAL_BIAS
    attributes.TONAL_BIAS = bias
    try:
        heard, tonics, chromatic = 0, set(), []
        for i, (v, a) in enumerate(_points(clips)):
            seed = SEED_BASE + i
            c = replace(EmotionPlanner(MusicalControls(time_signature=(4, 4)), seed=seed).retarget(v, a), key_lock=lock)
            clip = round_trip(_offline_clip(gen, cfg, Condition(v, a), c, seed), "generated")
            est = metrics.estimate_key(clip.notes) if clip is not None else None
            if est is None:
                continue
            heard += pitch_set(parse_key(est.name)) == pitch_set(c.scale)
            tonics.add(est.tonic)
            chromatic.append(out_of_scale(clip.notes, parse_key(est.name)))
    finally:
        attributes.TONAL_BIAS = saved
    return {"lock": lock, "tonal_bias": bias, "clips": clips, "in_planned_key": heard,
            "estimated_tonics": len(tonics), "out_of_scale_share": round(float(np.mean(chromatic)), 4)}


def human(cfg: RealnessConfig, n: int) -> dict:
    shares = []
    for h in human_clips("eimg", cfg)[:n]:
        est = metrics.estimate_key(h.notes)
        if est is not None:
            shares.append(out_of_scale(h.notes, parse_key(est.name)))
    return {"clips": len(shares), "out_of_scale_share": round(float(np.mean(shares)), 4)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--clips", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--biases", type=float, nargs="+", default=[1.0, 2.0, 3.0, 4.0])
    ap.add_argument("--out", default="runs/eval/keys.json")
    args = ap.parse_args(argv)
    cfg = RealnessConfig(split="dev", seconds=args.seconds, **({"bundle": args.bundle} if args.bundle else {}))
    gen = _generator(cfg)
    rows = [run_setting(gen, cfg, args.clips, True, attributes.TONAL_BIAS)]
    rows += [run_setting(gen, cfg, args.clips, False, b) for b in args.biases]
    res = {"split": "dev", "seconds": args.seconds, "bundle": cfg.bundle, "settings": rows,
           "human_eimg": human(cfg, 100), "shipped_tonal_bias": attributes.TONAL_BIAS}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    for r in rows:
        print(json.dumps(r))
    print(json.dumps(res["human_eimg"]))


if __name__ == "__main__":
    main()
