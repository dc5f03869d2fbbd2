"""Does the requested emotion come out of the speakers? The emotion measurements, JSON + docs.

    python -m training.emotion_eval --out runs/emotion/eval.json --doc docs/emotion.md   # full run
    python -m training.emotion_eval --quick --out runs/emotion/quick.json                # development

On a bundle (default: the shipped one), through the shipped engine path (MusicGenerator, ONNX
Runtime, default sampling, emotion strength 2), attributes OFF ("before") and ON ("after"):

1. grid: VA-only 5 x 5 grid (2..8), ``--seeds`` clips each, 15 s: Pearson r between requested
   and heard VA by the judge (engine.emotion.judge, fit on EIMG train) and, as a secondary check,
   by training.va_predictor (another model family; the model's VA loss trained against it);
   each attribute's r with the requested VA beside EIMG's own (hold-out clips vs labels).
2. pictures: the OASIS hold-out (training.data.split_oasis seed 0), conditioned as the app does
   (image tokens + the head's VA estimate): judge r against the pictures' rated VA.
3. sanity: degenerate clips (> 20 notes/s, > 10 sounding at once, a tempo outside 50-190) over
   the grid at emotion strength 1, 2 and 3 (one seed).
4. quality: Music_Quality_Loss (engine.music.metrics) and notes/s, tempo, polyphony distributions
   (10/50/90 %) against EIMG's hold-out clips.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from engine.music import metrics
from engine.emotion import judge as J
from engine.emotion.attributes import clip_attributes
from engine.emotion.planner import EmotionPlanner
from engine.music.notes import notes_from_score
from engine.model.sampling import DEFAULT_GUIDANCE
from training import data
from training.fit_emotion import clip_rows, pearson

GRID = (2.0, 3.5, 5.0, 6.5, 8.0)
ATTRS = ("major", "bpm", "notes_per_second", "velocity", "register", "log_note_seconds", "polyphony")


def clip_stats(score) -> dict:
    """Judge VA, attributes, quality parts and degeneracy of one clip (a symusic Score in ticks)."""
    n = notes_from_score(score)
    p = n.pitched()
    row: dict = {"notes": len(p)}
    if len(p) == 0:
        return {**row, "degenerate": False, "judge": None}
    on = metrics.ticks_to_seconds(p, p.start)
    off = metrics.ticks_to_seconds(p, p.end)
    seconds = max(float(off.max()), 1e-9)
    t = np.concatenate([on, off])
    s = np.concatenate([np.ones(len(on)), -np.ones(len(off))])
    o = np.lexsort((s, t))  # note-offs before note-ons at the same time
    max_sounding = int(np.cumsum(s[o]).max())
    tempi = [q for _, q in p.tempos.tolist()] or [120.0]
    nps = len(p) / seconds
    row.update(seconds=seconds, notes_per_second=nps, max_sounding=max_sounding,
               tempo_min=float(min(tempi)), tempo_max=float(max(tempi)), tempo_changes=len(set(tempi)) - 1,
               degenerate=bool(nps > 20 or max_sounding > 10 or min(tempi) < 50 - 1e-6 or max(tempi) > 190 + 1e-6))
    if len(p) >= 2:
        row["attributes"] = clip_attributes(p)
    pr = metrics.polyphony_rate(n, metrics.PAPER_POLYPHONY_THRESHOLD)
    pe = metrics.pitch_entropy(n)
    gc = metrics.groove_consistency(n, metrics.PAPER_MEASURE_RESOLUTION)
    row["quality"] = (pr, pe, gc)
    f = J.features_of_notes(n)
    row["judge"] = None if f is None else J.predict(f)
    return row


def make_clip(gen, planner_on: bool, v: float, a: float, seed: int, seconds: float, guidance: float,
              image_tokens=None, max_tokens: int = 3000):
    """One clip through the engine (controls from the planner when on, else the CLI defaults), as
    ``moodroll generate`` makes it; tokens until the stream reaches ``seconds`` (the sanity rules
    keep one tempo, so beats -> seconds is exact), cut there -> (token ids, Score in ticks)."""
    from engine.model.controls import MusicalControls
    from engine.model.generator import Condition
    from engine.model.sampling import SamplingOptions

    user = MusicalControls(time_signature=(4, 4))  # what generate/live use by default
    gen.set_controls(EmotionPlanner(user, enabled=planner_on, seed=seed).retarget(v, a))
    gen.set_sampling(SamplingOptions(seed=seed, guidance=guidance))
    gen.reset()
    gen.set_condition(Condition(v, a, image_tokens))
    ids: list[int] = []
    while len(ids) < max_tokens:
        ids.append(gen.next_token())
        if gen.state.now * 60.0 / (gen.state.decoder.tempo or 120.0) >= seconds:
            break
    return ids, cut_seconds(gen.tokenizer, ids, seconds)


def cut_seconds(tokenizer, ids, seconds: float):
    """Decode at 480 ticks per quarter (like the app's files and EIMG's), one note per key at a
    time (as written files are), and cut at ``seconds``, keeping the tempo map (a cut in the
    seconds domain would drop it)."""
    from engine.offline import TICKS_PER_QUARTER
    from engine.music.tokenizer import release_before_repeat

    score = release_before_repeat(tokenizer.decode(ids).resample(TICKS_PER_QUARTER))  # as files are written
    n = notes_from_score(score)
    ticks, qpm = metrics.tempo_map(n)
    spt = 60.0 / (qpm * TICKS_PER_QUARTER)
    starts = np.concatenate([[0.0], np.cumsum(np.diff(ticks) * spt[:-1])])
    i = int(np.searchsorted(starts, seconds, side="right") - 1)
    end_tick = int(ticks[i] + (seconds - starts[i]) / spt[i])
    return score.clip(0, end_tick, clip_end=True)


def correlations(rows: list[dict], va: np.ndarray) -> dict:
    """r of requested (or rated) VA with the judge's VA and with every attribute."""
    ok = [i for i, r in enumerate(rows) if r.get("judge") is not None]
    heard = np.array([rows[i]["judge"] for i in ok]).reshape(-1, 2)
    out = {"clips": len(rows), "judged": len(ok),
           "judge_r_valence": pearson(va[ok, 0], heard[:, 0]) if ok else None,
           "judge_r_arousal": pearson(va[ok, 1], heard[:, 1]) if ok else None,
           "judge_mae_valence": float(np.abs(va[ok, 0] - heard[:, 0]).mean()) if ok else None,
           "judge_mae_arousal": float(np.abs(va[ok, 1] - heard[:, 1]).mean()) if ok else None}
    att = [i for i, r in enumerate(rows) if "attributes" in r]
    out["attributes_r"] = {name: {d: pearson(va[att, k], [rows[i]["attributes"][name] for i in att])
                                  for k, d in enumerate(("valence", "arousal"))} for name in ATTRS}
    return out


def predictor_r(ids: list, va: np.ndarray) -> dict:
    """Secondary check: training.va_predictor (the VA loss's own predictor) on the clips."""
    from training.va_predictor import load_music_va_predictor

    keep = [i for i, x in enumerate(ids) if len(x)]
    pred = load_music_va_predictor().predict([np.asarray(ids[i], np.int64) for i in keep])
    return {"valence": pearson(va[keep, 0], pred[:, 0]), "arousal": pearson(va[keep, 1], pred[:, 1])}


def quality(rows: list[dict]) -> dict:
    q = np.array([r["quality"] for r in rows if "quality" in r], np.float64).reshape(-1, 3)
    pr, pe, gc = (float(np.nanmean(q[:, i])) for i in range(3))
    dist = lambda k: [float(np.percentile([r[k] for r in rows if k in r], x)) for x in (10, 50, 90)]  # noqa: E731
    return {"music_quality_loss": metrics.music_quality_loss(pr, pe, gc), "polyphony_rate": pr,
            "pitch_entropy": pe, "groove_consistency": gc, "notes_per_second_p10_50_90": dist("notes_per_second"),
            "tempo_p10_50_90": [float(np.percentile([r["attributes"]["bpm"] for r in rows if "attributes" in r], x))
                                for x in (10, 50, 90)],
            "polyphony_p10_50_90": [float(np.percentile([r["attributes"]["polyphony"] for r in rows
                                                          if "attributes" in r], x)) for x in (10, 50, 90)]}


def eimg_reference(seed: int = 0) -> dict:
    """The same measurements on EIMG's hold-out clips (test + val) against their labels."""
    import symusic

    s = data.split_eimg(data.load_eimg(), seed=seed)
    recs = s.test + s.val
    rows = [clip_stats(symusic.Score(str(r.path)).resample(480)) for r in recs]
    va = np.array([r.va for r in recs])
    return {"correlations": correlations(rows, va), "quality": quality(rows),
            "degenerate": int(sum(r["degenerate"] for r in rows)), "clips": len(rows)}


def grid_eval(gen, on: bool, values, seeds: int, seconds: float, guidance: float, predictor: bool,
              seed_base: int = 5000) -> dict:
    from tqdm import tqdm

    rows, ids, va = [], [], []
    pts = [(v, a) for v in values for a in values]
    for j, (v, a) in enumerate(tqdm(pts, desc=f"grid (attributes {'on' if on else 'off'}, w={guidance:g})")):
        for k in range(seeds):
            x, score = make_clip(gen, on, v, a, seed_base + 100 * j + k, seconds, guidance)
            rows.append(clip_stats(score))
            ids.append(x)
            va.append((v, a))
    va = np.array(va)
    out = {"guidance": guidance, "seeds": seeds, "values": list(values), **correlations(rows, va),
           "degenerate": int(sum(r["degenerate"] for r in rows)), "quality": quality(rows),
           "max_notes_per_second": max(r.get("notes_per_second", 0) for r in rows),
           "max_sounding": max(r.get("max_sounding", 0) for r in rows),
           "tempo_range": [min(r.get("tempo_min", 999) for r in rows), max(r.get("tempo_max", 0) for r in rows)],
           "clips_with_tempo_changes": int(sum(r.get("tempo_changes", 0) > 0 for r in rows))}
    if predictor:
        out["predictor_r"] = predictor_r(ids, va)
    return out


def picture_eval(gen, on: bool, limit: int | None, seconds: float, guidance: float, seed: int = 0) -> dict:
    from engine.picture.image import load_image
    from tqdm import tqdm

    _, hold = data.split_oasis(data.load_oasis(), seed=seed)
    hold = hold[:limit] if limit else hold
    rows, rated, est = [], [], []
    for i, rec in enumerate(tqdm(hold, desc=f"pictures (attributes {'on' if on else 'off'})")):
        tokens, (v, a) = gen.analyze_image(load_image(rec.path))
        v, a = float(np.clip(v, 1, 9)), float(np.clip(a, 1, 9))
        _, score = make_clip(gen, on, v, a, 1000 + i, seconds, guidance, image_tokens=tokens)
        rows.append(clip_stats(score))
        rated.append(rec.va)
        est.append((v, a))
    rated, est = np.array(rated), np.array(est)
    return {"pictures": len(hold), **correlations(rows, rated), "degenerate": int(sum(r["degenerate"] for r in rows)),
            "head_r_valence": pearson(est[:, 0], rated[:, 0]), "head_r_arousal": pearson(est[:, 1], rated[:, 1])}


def run(bundle=None, quick: bool = False, seeds: int = 2, seconds: float = 15.0, pictures: int | None = None,
        threads: int = 1, predictor: bool = True, modes=("before", "after"), sanity_seconds: float = 8.0) -> dict:
    """Every measurement of the module docstring, attributes off ("before") and on ("after")."""
    from engine.model.generator import MusicGenerator

    values = (2.0, 5.0, 8.0) if quick else GRID
    seeds = 1 if quick else seeds
    seconds = 8.0 if quick else seconds
    sanity_seconds = min(sanity_seconds, seconds)
    pictures = (12 if quick else None) if pictures is None else pictures
    gen = MusicGenerator(bundle, device="cpu", threads=threads)
    t0 = time.time()
    res: dict = {"bundle": str(gen.bundle.path) if hasattr(gen.bundle, "path") else str(bundle),
                 "quick": quick, "seconds": seconds, "sanity_seconds": sanity_seconds, "grid_seeds": seeds,
                 "pictures_limit": pictures, "judge": J.load_judge()["fit"], "eimg": eimg_reference()}
    for on, name in ((False, "before"), (True, "after")):
        if name not in modes:
            continue
        part = {"grid": grid_eval(gen, on, values, seeds, seconds, DEFAULT_GUIDANCE, predictor),
                "pictures": picture_eval(gen, on, pictures, seconds, DEFAULT_GUIDANCE),
                "sanity": {}}
        for w in (1.0, 2.0, 3.0):
            g = part["grid"] if w == DEFAULT_GUIDANCE else grid_eval(gen, on, values, 1, sanity_seconds, w, False)
            part["sanity"][f"w{w:g}"] = {k: g[k] for k in ("degenerate", "clips", "max_notes_per_second", "max_sounding",
                                                           "tempo_range", "clips_with_tempo_changes")}
        res[name] = part
    res["seconds_total"] = time.time() - t0
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="emotion measurements (grid, pictures, sanity, quality)")
    ap.add_argument("--bundle", help="model bundle (default: the shipped assets/models/default)")
    ap.add_argument("--out", required=True, help="JSON results")
    ap.add_argument("--doc", help="also write this markdown report (docs/emotion.md)")
    ap.add_argument("--quick", action="store_true", help="3 x 3 grid, 1 seed, 8-s clips, 12 pictures")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--pictures", type=int, help="only the first N hold-out pictures")
    ap.add_argument("--no-predictor", action="store_true", help="skip the secondary check (no torch)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mode", choices=("before", "after", "both"), default="both",
                    help="attributes off (before), on (after) or both; run the two in parallel and --merge")
    ap.add_argument("--merge", nargs="+", metavar="JSON", help="only merge these result files (and write --doc)")
    args = ap.parse_args(argv)
    if args.merge:
        res = {}
        for f in args.merge:
            part = json.loads(Path(f).read_text())
            res.update({k: v for k, v in part.items() if k not in res or k in ("before", "after")})
        Path(args.out).write_text(json.dumps(res, indent=1))
        if args.doc:
            from training.emotion_doc import write_doc

            write_doc(res, args.doc)
        return
    if not args.no_predictor:
        import torch

        torch.set_num_threads(args.threads)
    modes = ("before", "after") if args.mode == "both" else (args.mode,)
    res = run(args.bundle, args.quick, args.seeds, args.seconds, args.pictures, args.threads, not args.no_predictor, modes)
    res["command"] = "python -m training.emotion_eval " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1, default=_json))
    if args.doc:
        from training.emotion_doc import write_doc

        write_doc(res, args.doc)
    print(json.dumps({k: res[k]["grid"] for k in modes}, default=_json, indent=1)[:4000])


def _json(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(type(x).__name__)


if __name__ == "__main__":
    main()
