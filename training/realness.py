"""Does Moodroll's music pass for a pianist's? Two-sample tests against held-out human clips.

    nice -n 10 python -m training.realness                    # report split -> docs/realness.md
    nice -n 10 python -m training.realness --split dev        # the split to choose settings on
    python -m training.realness --tiny --out /tmp/r.json      # a smoke run (tests/test_realness.py)

Both sides go through the same path: every clip (generated or human) is a score in ticks,
encoded by Moodroll's own tokenizer (engine.music.tokenizer) and decoded back, so quantisation to
the REMI grid and the tokenizer's 16 velocity bins give nothing away. Then

(a) **features**: ~110 musical statistics that ignore micro-timing (onsets rounded to 16th
    notes) and the exact velocity level (only spread, contour and accents): pitch-class
    profiles (absolute and key-relative), melodic/bass/harmonic intervals, onset and chord
    density, note lengths, velocity spread, polyphony, repetition of bars and chords, key
    clarity and chromaticism; a ridge logistic regression (its penalty chosen by an inner
    cross-validation) and a small MLP, grouped cross-validation;
(b) **a learned discriminator** on token sequences (Tempo and TimeSig tokens dropped, velocity
    tokens relative to the clip's median): a dilated 1-D CNN trained on random crops,
    cross-validated.

Each test gives a ROC AUC of the out-of-fold scores (0.5: indistinguishable, 1: always told
apart) with a 95 % cluster-bootstrap interval (clips from one song resample together).

Generated settings, all through the shipped engine path (``MusicGenerator`` on the bundle,
ONNX Runtime, default sampling, emotion strength 2, 4/4): ``grid`` (what ``moodroll generate
--valence V --arousal A`` writes), ``pictures`` (OASIS pictures, conditioned as the app does),
``live`` (``engine.live.decoder.LiveStream`` on virtual time, what ``moodroll live --capture`` keeps,
the VA moved once mid-clip as a webcam would), ``variations`` (``engine.model.batch``, the
app's "Generate N variations") and ``no_attributes`` (``--no-attributes``).

Splits: ``report`` (the numbers in docs/realness.md): EIMG's test split, POP909's test songs,
OASIS's hold-out pictures (``training.data`` seed 0; no model trained on them), generation
seeds 30000+. ``dev`` (for choosing models and decoding settings): EIMG's val split plus
train clips, POP909 train songs, OASIS train pictures, seeds 40000+. Nothing is tuned on report.

Beside the tests: velocity and note-length distributions (docs/figures/realness_expression.png),
tonic and mode counts over the grid (no key given), the emotion judge's r (training.emotion_eval)
and Music_Quality_Loss (engine.music.metrics).
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.music import metrics
from engine.music.notes import Notes, notes_from_score
from engine.paths import REPO_ROOT
from engine.model.sampling import DEFAULT_GUIDANCE

SETTINGS = ("grid", "pictures", "live", "variations", "no_attributes")
SETTING_NAMES = {"grid": "VA grid (`generate --valence --arousal`)", "pictures": "pictures (OASIS, as the app)",
                 "live": "live stream (`live --capture`, VA moved mid-clip)",
                 "variations": "variations (batched, as the app)", "no_attributes": "`--no-attributes` grid"}
GRID = (2.0, 3.5, 5.0, 6.5, 8.0)
TPQ = 480  # resolution of every clip (Moodroll's files and most EIMG files)
DOC = REPO_ROOT / "docs" / "realness.md"
BEFORE = REPO_ROOT / "docs" / "realness_before.json"
FIGURE = REPO_ROOT / "docs" / "figures" / "realness_expression.png"
SEED_BASE = {"report": 30000, "dev": 40000}


@dataclass(frozen=True)
class RealnessConfig:
    split: str = "report"  # "report" (docs) or "dev" (choose settings here)
    clips: int = 100  # generated clips per setting; human clips per reference (at most)
    seconds: float = 15.0  # every clip is cut to this (EIMG's clips are 15 s)
    folds: int = 10  # feature classifiers (few groups left out per fold: less of CV's pessimism under the null)
    repeats: int = 2  # cross-validation repeats of the feature classifiers (other fold draws)
    cnn_folds: int = 5
    bootstrap: int = 1000
    cnn_epochs: int = 24
    cnn_crop: int = 192  # tokens per training crop
    cnn_channels: int = 48
    settings: tuple = SETTINGS
    guidance: float = DEFAULT_GUIDANCE
    temperature: float = 1.0
    top_p: float = 0.95
    bundle: str | None = None
    workers: int = 2  # processes (each one thread)
    tiny: bool = False

    def __post_init__(self):
        if self.split not in SEED_BASE:
            raise ValueError(f"split must be 'report' or 'dev', got {self.split!r}")
        unknown = set(self.settings) - set(SETTINGS)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; choose from {', '.join(SETTINGS)}")


TINY = dict(clips=8, seconds=5.0, folds=2, cnn_folds=2, repeats=1, bootstrap=200, cnn_epochs=2, cnn_crop=64, cnn_channels=16,
            workers=1, tiny=True)


@dataclass
class Clip:
    """One clip after the tokenizer round trip: its tokens, decoded notes and where it came from."""

    ids: list
    midi: bytes  # the round-tripped score (480 ticks per quarter)
    group: str  # clips of one group resample and fold together (one song, one picture, ...)
    meta: dict = field(default_factory=dict)
    _notes: Notes | None = None
    _features: list | None = None

    @property
    def notes(self) -> Notes:
        if self._notes is None:
            from symusic import Score
            self._notes = notes_from_score(Score.from_midi(self.midi))
        return self._notes

    @property
    def features(self) -> list:
        """:func:`music_features` in ``FEATURE_NAMES`` order (computed once)."""
        if self._features is None:
            f = music_features(self.notes)
            self._features = [float(f.get(k, 0.0)) for k in FEATURE_NAMES]
        return self._features


# -- clips through the tokenizer ---------------------------------------------------------------
_TOKENIZER = None


def tokenizer():
    global _TOKENIZER
    if _TOKENIZER is None:
        from engine.music.tokenizer import Tokenizer
        _TOKENIZER = Tokenizer()
    return _TOKENIZER


def round_trip(score, group: str, meta: dict | None = None) -> Clip | None:
    """A score in ticks -> a :class:`Clip` (encode, decode, 480 tpq); None when it has no notes."""
    from engine.music.tokenizer import MidiReadError

    tok = tokenizer()
    try:
        ids = tok.encode(score)
    except MidiReadError:
        return None
    back = tok.decode(ids).resample(TPQ)
    if not len(back.tracks) or not len(back.tracks[0].notes):
        return None
    return Clip(list(ids), back.dumps_midi(), group, dict(meta or {}))


def excerpt(score, seconds: float, rng: np.random.Generator, whole: bool = False):
    """``seconds`` of a score in ticks, from a random downbeat (``whole``: from the start) that
    leaves a full excerpt where it can; shifted to start at 0."""
    s = score.resample(TPQ)
    start = 0
    if not whole:
        downs = np.asarray(s.get_downbeats())
        if len(downs):
            end_s = s.to("second").end()
            ok = downs[metrics.ticks_to_seconds(notes_from_score(s), downs) <= end_s - seconds]
            start = int(rng.choice(ok)) if len(ok) else 0
    n = notes_from_score(s)
    t0 = float(metrics.ticks_to_seconds(n, [start])[0])
    ticks, qpm = metrics.tempo_map(n)
    spt = 60.0 / (qpm * TPQ)
    seg_s = np.concatenate([[0.0], np.cumsum(np.diff(ticks) * spt[:-1])])
    i = int(np.searchsorted(seg_s, t0 + seconds, side="right") - 1)
    end = int(ticks[i] + (t0 + seconds - seg_s[i]) / spt[i])
    return s.clip(start, end, clip_end=True).shift_time(-start)


def _seeded(records, n: int, seed: int):
    idx = np.random.default_rng(seed).permutation(len(records))[:n]
    return [records[i] for i in sorted(idx.tolist())]


def human_clips(name: str, cfg: RealnessConfig) -> list[Clip]:
    """Held-out human clips: ``eimg``, ``pop909`` or ``vgmidi`` on the config's split."""
    import symusic
    from training import data

    seed = SEED_BASE[cfg.split]
    rng = np.random.default_rng(seed + {"eimg": 1, "pop909": 2, "vgmidi": 3}[name])
    if name == "eimg":
        s = data.split_eimg(data.load_eimg(), seed=0)
        recs = s.test if cfg.split == "report" else s.val + _seeded(s.train, max(cfg.clips - len(s.val), 0), seed)
        recs, per = recs[:cfg.clips], 1
    elif name == "pop909":
        s = data.split_eimg(data.load_pop909(), seed=0)
        songs = s.test if cfg.split == "report" else _seeded(s.train, len(s.test), seed)
        per = max(1, math.ceil(cfg.clips / len(songs)))
        recs = songs[:math.ceil(cfg.clips / per)]
    else:  # VGMIDI: the sanity row only (the test's power to see a style), one excerpt per piece
        recs, per = _seeded(data.load_vgmidi(), cfg.clips, seed), 1
    out = []
    for r in recs:
        score = symusic.Score(str(r.path))
        for k in range(per):
            c = round_trip(excerpt(score, cfg.seconds, rng, whole=name == "eimg"), f"{name}:{r.id}",
                           {"source": name, "id": r.id, "va": r.va})
            if c is not None:
                out.append(c)
    return out[:cfg.clips]


# -- generated clips ---------------------------------------------------------------------------
def _points(n: int) -> list[tuple[float, float]]:
    """n VA points cycling through the 5 x 5 grid (7 is prime to 25: every point before any twice)."""
    grid = [(v, a) for v in GRID for a in GRID]
    return [grid[(7 * i) % len(grid)] for i in range(n)]


def _sampling(cfg: RealnessConfig, seed: int):
    from engine.model.sampling import SamplingOptions
    return SamplingOptions(temperature=cfg.temperature, top_p=cfg.top_p, seed=seed, guidance=cfg.guidance)


def _offline_clip(gen, cfg: RealnessConfig, condition, controls, seed: int):
    """Tokens until the clip reaches ``cfg.seconds``, as ``moodroll generate`` decodes them;
    cut there and written as files are (training.emotion_eval.cut_seconds)."""
    from training.emotion_eval import cut_seconds

    gen.set_controls(controls)
    gen.set_sampling(_sampling(cfg, seed))
    gen.reset()
    gen.set_condition(condition)
    ids: list[int] = []
    while len(ids) < 3000:
        ids.append(gen.next_token())
        if gen.state.now * 60.0 / (gen.state.decoder.tempo or 120.0) >= cfg.seconds:
            break
    return cut_seconds(gen.tokenizer, ids, cfg.seconds)


def _live_clip(gen, cfg: RealnessConfig, planner, start, target, seed: int):
    """``moodroll live`` on virtual time: a LiveStream plays the generator to a memory port; at
    half time the VA moves (as a webcam's scene change steers it); the capture is the clip."""
    from engine.model.generator import Condition
    from tools.virtual_midi import MemoryOutput, VirtualTime
    from engine.live.decoder import LiveStream, StreamOptions
    from symusic import Score

    gen.set_sampling(_sampling(cfg, seed))
    gen.reset()
    gen.set_condition(Condition(*start))
    gen.set_controls(planner.retarget(*start))
    key, bpm = gen.controls.key, gen.controls.bpm or 110.0
    bars = math.ceil(cfg.seconds * bpm / 240.0) + 1
    vt = VirtualTime(start=0.0, timeout_s=300)
    stream = LiveStream(gen, gen.tokenizer, MemoryOutput(time_source=vt),
                        options=StreamOptions(bars=bars, realtime=False), time_source=vt)
    stream.start()
    vt.call_at(cfg.seconds / 2, lambda: stream.steer(condition=Condition(*target), controls=planner.retarget(*target)))
    try:
        vt.run(stop_when=lambda: stream.wait(0))
    finally:
        stream.stop()
    if stream.error is not None:
        raise RuntimeError(f"live stream failed: {stream.error}")
    with tempfile.TemporaryDirectory() as d:
        score = Score(str(stream.capture(Path(d) / "capture.mid", bars=bars)))
    return excerpt(score, cfg.seconds, np.random.default_rng(0), whole=True), key


_GEN = None


def _generator(cfg: RealnessConfig):
    global _GEN
    if _GEN is None:
        from engine.model.generator import MusicGenerator
        _GEN = MusicGenerator(cfg.bundle, device="cpu", threads=1)
    return _GEN


def _pictures(cfg: RealnessConfig) -> list:
    from training import data

    train, hold = data.split_oasis(data.load_oasis(), seed=0)
    recs = hold if cfg.split == "report" else train
    return _seeded(recs, cfg.clips, SEED_BASE[cfg.split] + 4)


def generate_part(cfg: RealnessConfig, setting: str, items: list[int]) -> list[dict]:
    """Clips ``items`` (indices) of one setting; each a dict with the round-tripped clip and the
    cut score as written (for the emotion judge) plus what made it."""
    from engine.model.controls import MusicalControls
    from engine.emotion.planner import EmotionPlanner
    from engine.model.generator import Condition

    gen = _generator(cfg)
    base = SEED_BASE[cfg.split] + 1000 * SETTINGS.index(setting)
    user = MusicalControls(time_signature=(4, 4))  # what generate / live / the app use by default
    points = _points(cfg.clips)
    out = []
    if setting == "variations":  # four variations per point, decoded together
        from engine.model.batch import generate_variations
        from training.emotion_eval import cut_seconds

        for i in sorted({i - i % 4 for i in items}):
            v, a = points[i]
            controls = EmotionPlanner(user, seed=base + i).retarget(v, a)
            bars = math.ceil(cfg.seconds * (controls.bpm or 110.0) / 240.0) + 1
            seqs = generate_variations(gen.runtime, Condition(v, a), controls, _sampling(cfg, base + i),
                                       n=min(4, cfg.clips - i), bars=bars)
            for k, ids in enumerate(seqs):
                out.append({"score": cut_seconds(gen.tokenizer, ids, cfg.seconds).dumps_midi(), "va": (v, a),
                            "group": f"variations:{i}", "key": controls.key, "index": i + k})
        return [o for o in out if o["index"] in set(items)]
    pics = _pictures(cfg) if setting == "pictures" else None
    for i in items:
        v, a = points[i]
        seed = base + i
        meta: dict = {"index": i, "group": f"{setting}:{i}"}
        if setting == "live":
            target = points[(i + 11) % len(points)]
            score, key = _live_clip(gen, cfg, EmotionPlanner(user, seed=seed), (v, a), target, seed)
            meta.update(va=(v, a), target=target, key=key)
        else:
            tokens = None
            if setting == "pictures":
                from engine.picture.image import load_image

                rec = pics[i % len(pics)]
                tokens, (v, a) = gen.analyze_image(load_image(rec.path))
                v, a = float(np.clip(v, 1, 9)), float(np.clip(a, 1, 9))
                meta.update(rated=rec.va, picture=rec.id, group=f"pictures:{rec.id}")
            controls = EmotionPlanner(user, enabled=setting != "no_attributes", seed=seed).retarget(v, a)
            score = _offline_clip(gen, cfg, Condition(v, a, tokens), controls, seed)
            meta.update(va=(v, a), key=controls.key)
        meta["score"] = score.dumps_midi()
        out.append(meta)
    return out


def _generate_task(args):
    cfg, setting, items = args
    return setting, generate_part(cfg, setting, items)


def generated_clips(cfg: RealnessConfig, pool=None) -> dict[str, list[dict]]:
    """Every setting's clips (rows with ``clip``, the round-tripped :class:`Clip`, and ``score``)."""
    tasks = []
    for s in cfg.settings:
        step = 4 if s == "variations" else max(1, math.ceil(cfg.clips / max(1, 2 * cfg.workers)))
        step = max(step - step % 4, 4) if s == "variations" else step
        tasks += [(cfg, s, list(range(j, min(j + step, cfg.clips)))) for j in range(0, cfg.clips, step)]
    results = pool.imap_unordered(_generate_task, tasks) if pool is not None else map(_generate_task, tasks)
    out: dict[str, list[dict]] = {s: [] for s in cfg.settings}
    for setting, rows in results:
        out[setting] += rows
    from symusic import Score

    for s, rows in out.items():
        rows.sort(key=lambda r: r["index"])
        for r in rows:
            r["clip"] = round_trip(Score.from_midi(r["score"]), r["group"], {"va": r.get("va")})
    return out


# -- features that ignore micro-timing and the velocity level ----------------------------------
def _hist(x, edges) -> list[float]:
    h = np.histogram(np.asarray(x, np.float64), bins=edges)[0].astype(np.float64)
    return (h / h.sum()).tolist() if h.sum() else [0.0] * (len(edges) - 1)


def _entropy(values) -> float:
    _, c = np.unique(np.asarray(values), return_counts=True)
    p = c / c.sum() if c.sum() else c
    return float(-(p * np.log2(p)).sum()) if len(p) else 0.0


def _corr(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


INTERVAL_EDGES = [-0.5, 0.5, 1.5, 2.5, 4.5, 7.5, 12.5, 128]  # 0, 1, 2, 3-4, 5-7, 8-12, > 12 semitones
IOI_EDGES = [0.5, 1.5, 2.5, 3.5, 4.5, 6.5, 8.5, 16.5, 1e9]  # in 16th notes
LENGTH_EDGES = [-np.inf, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, np.inf]  # log2 beats: 32nd ... > 4 beats
SCALES = {"major": {0, 2, 4, 5, 7, 9, 11}, "minor": {0, 2, 3, 5, 7, 8, 10, 11}}  # minor: natural + leading tone


def music_features(n: Notes) -> dict:
    """Musical statistics of a clip (see the module docstring); every value defined (0 where a
    statistic has nothing to measure). Onsets are rounded to 16th notes; velocities enter only
    relative to each other."""
    p = n.pitched()
    f: dict = {}
    N = len(p)
    res = p.resolution
    if N == 0:
        return {}
    step = np.floor(p.start * 4 / res + 0.5).astype(np.int64)  # 16th notes
    dur = np.maximum(p.end - p.start, 1) / res  # beats
    on_s = metrics.ticks_to_seconds(p, p.start)
    off_s = metrics.ticks_to_seconds(p, p.end)
    span_s = max(float(off_s.max() - on_s.min()), 1.0)
    span_beats = max(float((p.end.max() - p.start.min()) / res), 1.0)
    pitch, vel = p.pitch.astype(np.int64), p.velocity.astype(np.float64)
    ev_steps, ev_index = np.unique(step, return_inverse=True)
    E = len(ev_steps)
    sizes = np.bincount(ev_index, minlength=E)
    top = np.full(E, -1)
    bottom = np.full(E, 200)
    np.maximum.at(top, ev_index, pitch)
    np.minimum.at(bottom, ev_index, pitch)
    # density and rhythm
    f["log_notes_per_second"] = math.log(N / span_s)
    f["notes_per_beat"] = N / span_beats
    f["events_per_beat"] = E / span_beats
    ioi = np.diff(ev_steps)
    for k, x in enumerate(_hist(ioi, IOI_EDGES)):
        f[f"ioi_{k}"] = x
    f["ioi_entropy"] = _entropy(np.minimum(ioi, 32)) if len(ioi) else 0.0
    for k, x in enumerate(_hist(ev_steps % 4, [-0.5, 0.5, 1.5, 2.5, 3.5])):
        f[f"beat_position_{k}"] = x
    bar_starts, _ = metrics.bars(p, int(step.max()) + 1, 4)
    bar_of = np.searchsorted(bar_starts, ev_steps, side="right") - 1
    f["downbeat_share"] = float(np.isin(ev_steps, bar_starts).mean())
    # note lengths
    for k, x in enumerate(_hist(np.log2(dur), LENGTH_EDGES)):
        f[f"length_{k}"] = x
    f["log_length_std"] = float(np.log2(dur).std())
    q_len = np.maximum(np.round(dur * 4), 1)
    f["distinct_lengths"] = math.log1p(len(np.unique(q_len)))
    f["length_entropy"] = _entropy(q_len)
    nxt = np.append(ev_steps[1:], ev_steps[-1] + 4)[ev_index]  # the next event's onset
    ratio = np.clip(dur * 4 / np.maximum(nxt - step, 1), 0, 4)
    f["articulation"] = float(ratio.mean())
    f["legato_share"] = float((ratio > 1.05).mean())
    # pitch and key
    f["mean_pitch"] = float(pitch.mean())
    f["pitch_std"] = float(pitch.std())
    f["pitch_range"] = float(np.percentile(pitch, 95) - np.percentile(pitch, 5))
    f["pitch_entropy"] = metrics.pitch_entropy(p)
    f["pitch_class_entropy"] = _entropy(pitch % 12)
    profile = np.bincount(pitch % 12, weights=dur, minlength=12)
    profile = profile / profile.sum()
    key = metrics.estimate_key(p)
    tonic = key.tonic if key else 0
    for k in range(12):
        f[f"pc_{k}"] = float(profile[k])
        f[f"pc_rel_{k}"] = float(profile[(tonic + k) % 12])
    f["key_r"] = key.r if key else 0.0
    f["key_clarity"] = key.clarity if key else 0.0
    f["major"] = float(key is not None and key.mode == "major")
    scale = SCALES[key.mode if key else "major"]
    f["out_of_scale"] = float(sum(profile[(tonic + k) % 12] for k in range(12) if k not in scale))
    # harmony: intervals above each chord's lowest note, chord sizes, repeated chords
    chord = sizes[ev_index] >= 2
    f.update({f"harmonic_{k}": x for k, x in enumerate(_hist((pitch - bottom[ev_index])[chord & (pitch != bottom[ev_index])] % 12,
                                                               np.arange(-0.5, 12.5)))})
    f["chord_size_mean"] = float(sizes.mean())
    f["chord_size_std"] = float(sizes.std())
    f["chord_share"] = float((sizes >= 3).mean())
    f["single_share"] = float((sizes == 1).mean())
    sets = [frozenset(pitch[ev_index == e].tolist()) for e in range(E)]
    same = [a == b and len(a) >= 2 for a, b in zip(sets, sets[1:])]
    f["repeated_chord_share"] = float(np.mean(same)) if same else 0.0
    # melody (top line) and bass (bottom line)
    for name, line in (("melody", top), ("bass", bottom)):
        d = np.diff(line)
        for k, x in enumerate(_hist(np.abs(d), INTERVAL_EDGES)):
            f[f"{name}_interval_{k}"] = x
        f[f"{name}_up_share"] = float((d > 0).mean()) if len(d) else 0.0
    f["melody_mean_leap"] = float(np.abs(np.diff(top)).mean()) if E > 1 else 0.0
    # velocity: spread, contour and accents, never the level
    f["velocity_std"] = float(vel.std())
    f["velocity_iqr"] = float(np.percentile(vel, 75) - np.percentile(vel, 25))
    f["distinct_velocities"] = math.log1p(len(np.unique(vel)))
    f["velocity_pitch_r"] = _corr(vel, pitch)
    f["velocity_time_r"] = _corr(vel, p.start)
    lifts = [vel[(ev_index == e) & (pitch == top[e])].mean() - vel[(ev_index == e) & (pitch != top[e])].mean()
             for e in np.flatnonzero(sizes >= 2) if ((ev_index == e) & (pitch != top[e])).any()]
    f["melody_over_rest"] = float(np.mean(lifts)) if lifts else 0.0
    ev_vel = np.bincount(ev_index, weights=vel, minlength=E) / np.maximum(sizes, 1)
    f["event_velocity_change"] = float(np.abs(np.diff(ev_vel)).mean()) if E > 1 else 0.0
    bar_vel = [ev_vel[bar_of == b].mean() for b in np.unique(bar_of)]
    f["bar_velocity_change"] = float(np.abs(np.diff(bar_vel)).mean()) if len(bar_vel) > 1 else 0.0
    # polyphony and silence
    t = np.concatenate([on_s, off_s])
    s = np.concatenate([np.ones(N), -np.ones(N)])
    o = np.lexsort((s, t))
    t, c = t[o], np.cumsum(s[o])
    seg = np.diff(t)
    busy = seg[c[:-1] > 0].sum()
    f["mean_sounding"] = float((c[:-1] * seg).sum() / busy) if busy > 0 else 0.0
    f["max_sounding"] = float(c.max())
    f["silence_share"] = float(seg[c[:-1] <= 0].sum() / span_s)
    pr = metrics.polyphony_rate(p, metrics.PAPER_POLYPHONY_THRESHOLD)
    f["polyphony_rate"] = 0.0 if math.isnan(pr) else pr
    # repetition of bars
    bars_used = np.unique(bar_of)
    content = {b: frozenset(zip((ev_steps[ev_index] - bar_starts[bar_of[ev_index]])[bar_of[ev_index] == b].tolist(),
                                pitch[bar_of[ev_index] == b].tolist())) for b in bars_used}
    rhythm = {b: frozenset(x for x, _ in content[b]) for b in bars_used}
    seen, exact = set(), 0
    for b in bars_used:
        exact += content[b] in seen
        seen.add(content[b])
    f["bar_repeat_share"] = exact / len(bars_used)
    pairs = list(zip(bars_used, bars_used[1:]))
    f["bar_jaccard"] = float(np.mean([len(content[a] & content[b]) / len(content[a] | content[b]) for a, b in pairs])) if pairs else 0.0
    f["bar_rhythm_repeat"] = float(np.mean([rhythm[a] == rhythm[b] for a, b in pairs])) if pairs else 0.0
    chroma = {b: np.bincount(pitch[bar_of[ev_index] == b] % 12, minlength=12).astype(np.float64) for b in bars_used}
    f["bar_chroma_similarity"] = float(np.mean([chroma[a] @ chroma[b] / (np.linalg.norm(chroma[a]) * np.linalg.norm(chroma[b]))
                                                for a, b in pairs])) if pairs else 0.0
    per_bar = np.array([(bar_of[ev_index] == b).sum() for b in bars_used], np.float64)
    f["bar_density_cv"] = float(per_bar.std() / per_bar.mean()) if per_bar.mean() else 0.0
    gcb = metrics.groove_consistency_bar(p)
    f["groove_consistency_bar"] = 0.0 if math.isnan(gcb) else gcb
    return f


def _feature_names() -> tuple:
    from engine.music.notes import make_notes

    return tuple(music_features(make_notes([0, 480, 960, 960], [480, 960, 1440, 1440], [60, 64, 67, 72],
                                           [60, 70, 80, 90])))


FEATURE_NAMES = _feature_names()  # every non-empty clip has exactly these, in this order


def feature_matrix(clips: list[Clip]) -> np.ndarray:
    rows = [c.features for c in clips]
    return np.nan_to_num(np.asarray(rows, np.float64).reshape(len(rows), len(FEATURE_NAMES)), nan=0.0, posinf=0.0,
                         neginf=0.0)


# -- statistics ----------------------------------------------------------------------------------
def roc_auc(y, score) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count half): P(score of a 1 > score of a 0)."""
    from scipy.stats import rankdata

    y, score = np.asarray(y).astype(bool), np.asarray(score, np.float64)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return math.nan
    r = rankdata(score)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def bootstrap_ci(y, score, groups, n: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the AUC over cluster-bootstrap resamples: groups drawn with
    replacement within each class (the clips of one song stay together)."""
    y, score, groups = np.asarray(y), np.asarray(score, np.float64), np.asarray(groups)
    rng = np.random.default_rng(seed)
    members = {c: [np.flatnonzero((groups == g) & (y == c)) for g in np.unique(groups[y == c])] for c in (0, 1)}
    aucs = []
    for _ in range(n):
        idx = np.concatenate([np.concatenate([m[i] for i in rng.integers(0, len(m), len(m))]) for m in members.values()])
        aucs.append(roc_auc(y[idx], score[idx]))
    lo, hi = np.nanpercentile(aucs, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def group_folds(y, groups, k: int, seed: int) -> np.ndarray:
    """Fold of each sample: groups shuffled and dealt round-robin within each class, so every
    fold holds both classes and no group is split."""
    y, groups = np.asarray(y), np.asarray(groups)
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), np.int64)
    for c in (0, 1):
        gs = np.unique(groups[y == c])
        for i, g in enumerate(rng.permutation(gs)):
            fold[(groups == g) & (y == c)] = i % k
    return fold


def _standardise(train: np.ndarray, *others: np.ndarray):
    mu, sd = train.mean(0), train.std(0)
    sd[sd < 1e-9] = 1.0
    return [(x - mu) / sd for x in (train, *others)]


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float, iters: int = 50) -> np.ndarray:
    """Ridge logistic regression by Newton's method; returns [bias, weights]."""
    Xb = np.hstack([np.ones((len(X), 1)), X])
    w = np.zeros(Xb.shape[1])
    reg = np.full(Xb.shape[1], l2)
    reg[0] = 0.0
    for _ in range(iters):
        z = np.clip(Xb @ w, -30, 30)
        pr = 1 / (1 + np.exp(-z))
        g = Xb.T @ (pr - y) + reg * w
        H = (Xb * (pr * (1 - pr))[:, None]).T @ Xb + np.diag(reg + 1e-8)
        d = np.linalg.solve(H, g)
        w -= d
        if np.abs(d).max() < 1e-6:
            break
    return w


def logistic_scores(Xtr, ytr, Xte, seed: int, grid=(0.1, 1.0, 10.0, 100.0)) -> np.ndarray:
    """Standardise on the training part, choose the ridge penalty by a 3-fold inner CV (AUC), fit."""
    Xtr, Xte = _standardise(Xtr, Xte)
    inner = group_folds(ytr, np.arange(len(ytr)), 3, seed)
    best, best_auc = grid[0], -1.0
    for l2 in grid:
        s = np.zeros(len(ytr))
        for f in range(3):
            tr, te = inner != f, inner == f
            w = fit_logistic(Xtr[tr], ytr[tr], l2)
            s[te] = w[0] + Xtr[te] @ w[1:]
        a = roc_auc(ytr, s)
        if a > best_auc + 1e-9:
            best, best_auc = l2, a
    w = fit_logistic(Xtr, ytr, best)
    return w[0] + Xte @ w[1:]


def mlp_scores(Xtr, ytr, Xte, seed: int) -> np.ndarray:
    """A small MLP (one hidden layer of 32, dropout, weight decay) on standardised features."""
    import torch

    Xtr, Xte = _standardise(Xtr, Xte)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(Xtr.shape[1], 32), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                              torch.nn.Linear(32, 1))
    opt = torch.optim.AdamW(net.parameters(), lr=5e-3, weight_decay=1e-2)
    x, t = torch.tensor(Xtr, dtype=torch.float32), torch.tensor(ytr, dtype=torch.float32)
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x)[:, 0], t)
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        return net(torch.tensor(Xte, dtype=torch.float32))[:, 0].numpy().astype(np.float64)


def cross_validated(scorer, X, y, groups, folds: int, repeats: int, seed: int) -> np.ndarray:
    """Out-of-fold scores, averaged over ``repeats`` fold draws (grouped, stratified)."""
    out = np.zeros(len(y))
    for r in range(repeats):
        fold = group_folds(y, groups, folds, seed + r)
        s = np.zeros(len(y))
        for f in range(folds):
            tr, te = fold != f, fold == f
            if te.any():
                s[te] = scorer(X[tr], y[tr], X[te], seed + 100 * r + f)
        out += (s - s.mean()) / (s.std() + 1e-12)  # comparable across repeats
    return out / repeats


# -- the token discriminator ---------------------------------------------------------------------
VEL_STEPS = 4  # relative velocity classes -4..4 of 8 velocity units each


def discriminator_vocab() -> dict:
    """Token name -> index for the discriminator (0 = padding): every REMI token but Tempo,
    TimeSig and the specials, velocities as 9 classes relative to the clip's median."""
    names = [t for t in tokenizer().remi.vocab if t.split("_")[0] not in ("Tempo", "TimeSig", "Velocity", "PAD", "BOS", "EOS")]
    names += [f"VelRel_{k}" for k in range(-VEL_STEPS, VEL_STEPS + 1)]
    return {t: i + 1 for i, t in enumerate(sorted(names))}


def discriminator_ids(ids, vocab: dict) -> np.ndarray:
    tok = tokenizer()
    names = [tok.id_to_token(i) for i in ids]
    vels = [int(t.split("_")[1]) for t in names if t.startswith("Velocity_")]
    med = float(np.median(vels)) if vels else 64.0
    out = []
    for t in names:
        if t.startswith("Velocity_"):
            k = int(np.clip(round((int(t.split("_")[1]) - med) / 8.0), -VEL_STEPS, VEL_STEPS))
            t = f"VelRel_{k}"
        if t in vocab:
            out.append(vocab[t])
    return np.asarray(out or [0], np.int64)


def _cnn(vocab_size: int, channels: int):
    import torch
    from torch import nn

    class TokenCNN(nn.Module):
        """Embedding -> three dilated convolutions -> masked mean and max pooling -> a logit."""

        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(vocab_size, channels, padding_idx=0)
            self.convs = nn.ModuleList(nn.Conv1d(channels, channels, 5, padding=2 * d, dilation=d) for d in (1, 2, 4))
            self.out = nn.Linear(2 * channels, 1)
            self.drop = nn.Dropout(0.2)

        def forward(self, x):
            mask = (x > 0).float()[:, None, :]
            h = self.emb(x).transpose(1, 2)
            for conv in self.convs:
                h = torch.relu(conv(h)) + h
            mean = (h * mask).sum(-1) / mask.sum(-1).clamp(min=1)
            mx = (h + (mask - 1) * 1e4).max(-1).values
            return self.out(self.drop(torch.cat([mean, mx], 1)))[:, 0]

    return TokenCNN()


def _crops(seqs, crop: int, rng) -> np.ndarray:
    out = np.zeros((len(seqs), crop), np.int64)
    for i, s in enumerate(seqs):
        if len(s) > crop:
            j = int(rng.integers(0, len(s) - crop + 1))
            out[i] = s[j:j + crop]
        else:
            out[i, :len(s)] = s
    return out


def cnn_scores(train_seqs, ytr, test_seqs, seed: int, epochs: int, crop: int, channels: int, vocab_size: int) -> np.ndarray:
    """Train the CNN on random crops (one per clip per epoch, batches of 16), score a test clip
    by its mean logit over half-overlapping windows."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = _cnn(vocab_size, channels)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-2)
    y = torch.tensor(ytr, dtype=torch.float32)
    for _ in range(epochs):
        net.train()
        order = rng.permutation(len(train_seqs))
        x = torch.tensor(_crops([train_seqs[i] for i in order], crop, rng))
        for b in range(0, len(order), 16):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x[b:b + 16]), y[order[b:b + 16]])
            loss.backward()
            opt.step()
    net.eval()
    out = []
    with torch.no_grad():
        for s in test_seqs:
            starts = list(range(0, max(len(s) - crop, 0) + 1, crop // 2))
            if starts[-1] + crop < len(s):
                starts.append(len(s) - crop)
            w = np.zeros((len(starts), crop), np.int64)
            for i, j in enumerate(starts):
                part = s[j:j + crop]
                w[i, :len(part)] = part
            out.append(float(net(torch.tensor(w)).mean()))
    return np.asarray(out)


def _cnn_task(args):
    name, seqs, y, groups, cfg, seed = args
    import torch

    torch.set_num_threads(1)
    vocab_size = len(discriminator_vocab()) + 1
    fold = group_folds(y, groups, cfg.cnn_folds, seed)
    s = np.zeros(len(y))
    for f in range(cfg.cnn_folds):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        if len(te):
            s[te] = cnn_scores([seqs[i] for i in tr], y[tr], [seqs[i] for i in te], seed + f, cfg.cnn_epochs,
                               cfg.cnn_crop, cfg.cnn_channels, vocab_size)
    return name, s


def _result(y, s, groups, cfg, seed) -> dict:
    lo, hi = bootstrap_ci(y, s, groups, cfg.bootstrap, seed)
    return {"auc": roc_auc(y, s), "ci95": [lo, hi]}


def compare(name: str, gen: list[Clip], human: list[Clip], cfg: RealnessConfig, seed: int) -> tuple[dict, tuple]:
    """Feature tests now; the CNN's task (run later, maybe in a pool). Label 1 = ``gen`` side."""
    clips = gen + human
    y = np.array([1] * len(gen) + [0] * len(human))
    groups = np.array([f"{int(t)}|{c.group}" for t, c in zip(y, clips)])
    X = feature_matrix(clips)
    out = {"n": [len(gen), len(human)]}
    for test, scorer in (("features_logistic", logistic_scores), ("features_mlp", mlp_scores)):
        out[test] = _result(y, cross_validated(scorer, X, y, groups, cfg.folds, cfg.repeats, seed), groups, cfg, seed)
    vocab = discriminator_vocab()
    seqs = [discriminator_ids(c.ids, vocab) for c in clips]
    return out, (name, seqs, y, groups, cfg, seed)


def top_features(gen: list[Clip], human: list[Clip], k: int = 8) -> list[dict]:
    """The features whose means differ most between the two sides (in pooled SDs): what gives it away."""
    a, b = feature_matrix(gen), feature_matrix(human)
    sd = np.sqrt((a.var(0) + b.var(0)) / 2) + 1e-9
    d = (a.mean(0) - b.mean(0)) / sd
    order = np.argsort(-np.abs(d))[:k]
    return [{"feature": FEATURE_NAMES[i], "d": float(d[i]), "generated": float(a[:, i].mean()),
             "human": float(b[:, i].mean())} for i in order]


# -- expression, keys, emotion ----------------------------------------------------------------
def expression(clips: list[Clip]) -> dict:
    """Velocity and note-length statistics per clip and pooled (what docs/figures/realness_expression.png shows)."""
    vs, dvel, dlen, lengths, vel_all, rel = [], [], [], [], [], []
    for c in clips:
        p = c.notes.pitched()
        if len(p) < 2:
            continue
        v = p.velocity.astype(np.float64)
        d = (p.end - p.start) / p.resolution
        vs.append(float(v.std()))
        dvel.append(len(np.unique(v)))
        dlen.append(len(np.unique(np.round(d * 8))))
        lengths += np.log2(np.maximum(d, 1 / 32)).tolist()
        vel_all += v.tolist()
        rel += (v - np.median(v)).tolist()
    pct = lambda x: [float(np.percentile(x, q)) for q in (10, 50, 90)] if len(x) else None  # noqa: E731
    return {"clips": len(vs), "velocity_std_p10_50_90": pct(vs), "distinct_velocities_p10_50_90": pct(dvel),
            "distinct_lengths_p10_50_90": pct(dlen), "constant_velocity_share": float(np.mean(np.array(dvel) == 1)) if dvel else None,
            "log2_length_hist": _hist(lengths, np.arange(-5.5, 4.0, 1.0)), "velocity_hist": _hist(vel_all, np.arange(0, 136, 8)),
            "relative_velocity_hist": _hist(rel, np.arange(-60, 64, 8)), "_velocity_std": vs, "_distinct_lengths": dlen}


def keys(rows: list[dict]) -> dict:
    """Tonic and mode counts: the key the plan chose (None: the model's) and the key estimated from the notes."""
    planned = Counter(r.get("key") or "none" for r in rows)
    est = [metrics.estimate_key(r["clip"].notes) for r in rows if r["clip"] is not None]
    est = [e for e in est if e is not None]
    return {"clips": len(rows), "planned": dict(planned.most_common()),
            "estimated": dict(Counter(e.name for e in est).most_common()),
            "estimated_tonics": len({e.tonic for e in est}),
            "estimated_modes": dict(Counter(e.mode for e in est)),
            "planned_tonics": len({k.split()[0] for k in planned if k != "none"})}


def emotion(rows: list[dict], rated: bool = False) -> dict:
    """The independent judge's r and Music_Quality_Loss (training.emotion_eval) over clips as written."""
    from symusic import Score
    from training.emotion_eval import clip_stats, correlations, quality

    stats = [clip_stats(Score.from_midi(r["score"])) for r in rows]
    va = np.array([r["rated"] if rated else r["va"] for r in rows], np.float64)
    c = correlations(stats, va)
    q = quality(stats)
    return {"judge_r_valence": c["judge_r_valence"], "judge_r_arousal": c["judge_r_arousal"], "judged": c["judged"],
            "clips": len(rows), "degenerate": int(sum(s["degenerate"] for s in stats)),
            "music_quality_loss": q["music_quality_loss"], "polyphony_rate": q["polyphony_rate"],
            "pitch_entropy": q["pitch_entropy"], "groove_consistency": q["groove_consistency"]}


def human_quality(clips: list[Clip]) -> dict:
    from symusic import Score
    from training.emotion_eval import clip_stats, quality

    q = quality([clip_stats(Score.from_midi(c.midi)) for c in clips])
    return {k: q[k] for k in ("music_quality_loss", "polyphony_rate", "pitch_entropy", "groove_consistency")}


# -- the run ---------------------------------------------------------------------------------------
def run(cfg: RealnessConfig, log=print) -> dict:
    """Every measurement of the module docstring, as one JSON-ready dict."""
    import torch

    torch.set_num_threads(1)
    t0 = time.time()
    load = [os.getloadavg()[0]]
    ctx = mp.get_context("spawn")
    pool = ctx.Pool(cfg.workers) if cfg.workers > 1 else None
    try:
        log(f"realness: {cfg.split} split, {cfg.clips} clips per side, {cfg.seconds:g} s, settings {', '.join(cfg.settings)}")
        gen = generated_clips(cfg, pool)
        log(f"realness: generated in {time.time() - t0:.0f} s")
        human = {name: human_clips(name, cfg) for name in ("eimg", "pop909", "vgmidi")}
        log(f"realness: human clips {', '.join(f'{k} {len(v)}' for k, v in human.items())}")
        tests, cnn_tasks = {}, []

        def add(name, a, b, seed):
            tests[name], task = compare(name, a, b, cfg, seed)
            cnn_tasks.append(task)

        for i, s in enumerate(cfg.settings):
            clips = [r["clip"] for r in gen[s] if r["clip"] is not None]
            for ref in ("eimg", "pop909"):
                add(f"{s}|{ref}", clips, human[ref], 100 + 10 * i)
        for ref in ("eimg", "pop909"):  # sanity: two halves of one human set
            h = human[ref]
            groups = sorted({c.group for c in h})
            first = set(groups[::2])
            add(f"{ref}_half|{ref}_half", [c for c in h if c.group in first], [c for c in h if c.group not in first], 7)
        add("vgmidi|eimg", human["vgmidi"], human["eimg"], 8)
        add("pop909|eimg", human["pop909"], human["eimg"], 9)
        log(f"realness: feature tests done at {time.time() - t0:.0f} s; token discriminator on {len(cnn_tasks)} pairs")
        results = pool.imap_unordered(_cnn_task, cnn_tasks) if pool is not None else map(_cnn_task, cnn_tasks)
        for name, s in results:
            task = next(t for t in cnn_tasks if t[0] == name)
            tests[name]["tokens_cnn"] = _result(task[2], s, task[3], cfg, task[5])
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    res: dict = {"config": asdict(cfg), "tests": tests}
    res["giveaways"] = {s: top_features([r["clip"] for r in gen[s] if r["clip"] is not None], human["eimg"])
                        for s in cfg.settings}
    res["expression"] = {**{s: expression([r["clip"] for r in gen[s] if r["clip"] is not None]) for s in cfg.settings},
                         "eimg": expression(human["eimg"]), "pop909": expression(human["pop909"])}
    if "grid" in gen:
        res["keys"] = keys(gen["grid"])
    res["keys_human"] = {"eimg": keys([{"clip": c} for c in human["eimg"]])}
    res["emotion"] = {s: emotion(gen[s], rated=s == "pictures") for s in cfg.settings if s != "live"}
    res["quality_human"] = {k: human_quality(human[k]) for k in ("eimg", "pop909")}
    bundle = _generator_bundle(cfg)
    res["bundle"] = bundle
    res["seconds_total"] = time.time() - t0
    res["load_average"] = load + [os.getloadavg()[0]]  # 1-minute load at start and end (this machine is shared)
    return res


def _generator_bundle(cfg: RealnessConfig) -> dict:
    from engine.model.bundle import load_bundle

    b = load_bundle(cfg.bundle)
    manifest = b.path / "manifest.json"
    sha = __import__("hashlib").sha256(manifest.read_bytes()).hexdigest()[:12] if manifest.exists() else None
    return {"path": str(b.path.relative_to(REPO_ROOT) if b.path.is_relative_to(REPO_ROOT) else b.path),
            "name": b.name, "manifest_sha256_12": sha}


# -- the report ----------------------------------------------------------------------------------
def _ci(t: dict | None) -> str:
    if not t:
        return "–"
    return f"{t['auc']:.2f} [{t['ci95'][0]:.2f}, {t['ci95'][1]:.2f}]"


def _strongest(row: dict) -> dict:
    return max((row[k] for k in ("features_logistic", "features_mlp", "tokens_cnn") if k in row), key=lambda t: t["auc"])


def figure(res: dict, path: Path) -> None:
    """Velocity spread, velocity levels and note lengths: generated (grid, live) vs POP909 and EIMG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ex = res["expression"]
    sets = [(k, lab) for k, lab in (("grid", "generated (grid)"), ("live", "generated (live)"), ("pop909", "POP909 (performed)"),
                                    ("eimg", "EIMG")) if k in ex]
    fig, ax = plt.subplots(1, 4, figsize=(16, 3.6))
    bins = np.arange(0, 30, 1.5)
    for k, lab in sets:
        ax[0].hist(ex[k]["_velocity_std"], bins=bins, histtype="step", density=True, label=lab, linewidth=1.5)
    ax[0].set(title="velocity spread per clip (SD)", xlabel="velocity SD", ylabel="density")
    centres = np.arange(4, 132, 8)
    for k, lab in sets:
        ax[1].plot(centres, ex[k]["velocity_hist"], marker=".", label=lab)
    ax[1].set(title="velocities (all notes)", xlabel="velocity", ylabel="share")
    lc = np.arange(-5, 4)
    for k, lab in sets:
        ax[2].plot(lc, ex[k]["log2_length_hist"], marker=".", label=lab)
    ax[2].set(title="note lengths (all notes)", xlabel="length (beats)", ylabel="share", xticks=lc,
              xticklabels=[f"1/{2 ** -x}" if x < 0 else f"{2 ** x}" for x in lc])
    db = np.arange(0.5, 25.5, 1)
    for k, lab in sets:
        ax[3].hist(ex[k]["_distinct_lengths"], bins=db, histtype="step", density=True, label=lab, linewidth=1.5)
    ax[3].set(title="distinct note lengths per clip", xlabel="distinct lengths (32nd grid)", ylabel="density")
    ax[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_doc(res: dict, path: Path, before: dict | None = None, figure_path: Path | None = None,
              command: str = "") -> None:
    cfg, T = res["config"], res["tests"]
    b = before["tests"] if before else None
    L = ["# Does it pass for a pianist? Realness tests", "",
         f"Written by `{command or 'python -m training.realness'}`: bundle `{res['bundle']['path']}` "
         f"(manifest SHA-256 `{res['bundle']['manifest_sha256_12']}…`), **{cfg['split']} split**, {cfg['clips']} clips per "
         f"side of {cfg['seconds']:g} s, emotion strength {cfg['guidance']:g}, temperature {cfg['temperature']:g}, "
         f"top-p {cfg['top_p']:g}; {res['seconds_total'] / 60:.1f} min on {cfg['workers']} single-threaded processes"
         + (f" (machine load {res['load_average'][0]:.1f} → {res['load_average'][1]:.1f} on 2 cores)." if "load_average" in res else ".")
         + (" The *before* column is the run saved in `docs/realness_before.json`"
            f" (bundle `{before['bundle']['path']}`, manifest `{before['bundle']['manifest_sha256_12']}…`)." if before else ""), "",
         "## Method", "",
         "- **Both sides through the tokenizer.** Every clip, generated or human, is encoded by Moodroll's REMI tokenizer "
         "and decoded back (480 ticks per quarter), so the 32nd-note grid and the 16 velocity bins give nothing away.",
         "- **Human clips** (held out: no model was trained on them). Report split: EIMG's test split (`split_eimg(seed=0)`, "
         "the whole 15-s clip) and 15-s excerpts from POP909's test songs (the same split function; a random downbeat, "
         "about three per song, resampled together). Dev split (for choosing settings): EIMG's val split plus train clips, "
         "POP909 train songs, OASIS train pictures, other generation seeds. VGMIDI excerpts serve only the sanity row.",
         "- **Generated clips** through the shipped engine path (ONNX Runtime bundle, default sampling, 4/4): "
         + "; ".join(f"`{s}`: {SETTING_NAMES[s]}" for s in cfg["settings"]) + ". VA points cycle through the 5 × 5 grid "
         "(2 … 8); pictures are OASIS's hold-out (report) with the head's VA estimate, as the app does.",
         "- **(a) Features** (`music_features`, ~110): pitch-class profile absolute and relative to the estimated key, key "
         "clarity, out-of-scale share; melodic, bass and harmonic interval histograms; onset, event and chord density; "
         "inter-onset and beat-position histograms on a 16th grid (no micro-timing); note-length histogram, spread, distinct "
         "lengths, articulation; velocity SD, IQR, distinct levels, pitch and time correlation, melody-over-accompaniment, "
         "event and bar contour (never the level); polyphony, silence; bar repetition, chord repetition, bar chroma "
         "similarity, groove. Classifiers: ridge logistic regression (penalty by inner 3-fold CV) and a one-hidden-layer "
         f"MLP, {cfg['folds']}-fold grouped, stratified cross-validation, {cfg['repeats']} fold draws averaged.",
         "- **(b) Token discriminator**: a dilated 1-D CNN over the token sequence (Tempo and TimeSig tokens dropped, "
         f"velocities as classes relative to the clip's median), trained on random {cfg['cnn_crop']}-token crops for "
         f"{cfg['cnn_epochs']} epochs, scored by the mean logit over windows; {cfg.get('cnn_folds', cfg['folds'])}-fold grouped CV.",
         f"- **AUC** of the out-of-fold scores (0.5 = indistinguishable, 1 = always told apart), 95 % interval from "
         f"{cfg['bootstrap']} cluster-bootstrap resamples (the clips of one song or picture together). The *strongest* "
         "test is the highest of the three (slightly optimistic: a maximum of three).",
         "- **Calibration.** Cross-validation is pessimistic when the two sides do not differ: leaving a song out moves "
         "its own class's training mean away from it, so human-vs-human AUCs fall below 0.5, most where clips come in "
         "groups (POP909: three excerpts per song). Read an AUC against the sanity rows' spread, not against 0.5 alone.", "",
         *_aims(res, before), "",
         "## Realness AUC", "",
         "| generated setting | human reference | features: logistic | features: MLP | tokens: CNN | strongest"
         + (" | strongest *before* |" if b else " |"),
         "| --- | --- | --- | --- | --- | ---" + (" | --- |" if b else " |")]
    for s in cfg["settings"]:
        for ref in ("eimg", "pop909"):
            row = T.get(f"{s}|{ref}")
            if not row:
                continue
            bs = f" | {_strongest(b[f'{s}|{ref}'])['auc']:.2f}" if b and f"{s}|{ref}" in b else (" | –" if b else "")
            L.append(f"| {SETTING_NAMES[s]} | {ref.upper() if ref == 'eimg' else 'POP909'} | {_ci(row['features_logistic'])} | "
                     f"{_ci(row['features_mlp'])} | {_ci(row.get('tokens_cnn'))} | **{_strongest(row)['auc']:.2f}**{bs} |")
    L += ["", "Sanity rows (the test's calibration and power, no model involved):", "",
          "| comparison | features: logistic | features: MLP | tokens: CNN |", "| --- | --- | --- | --- |"]
    for name, lab in (("eimg_half|eimg_half", "EIMG vs EIMG (two halves)"), ("pop909_half|pop909_half", "POP909 vs POP909 (two halves, by song)"),
                      ("vgmidi|eimg", "VGMIDI vs EIMG"), ("pop909|eimg", "POP909 vs EIMG")):
        row = T.get(name)
        if row:
            L.append(f"| {lab} ({row['n'][0]} / {row['n'][1]}) | {_ci(row['features_logistic'])} | {_ci(row['features_mlp'])} | "
                     f"{_ci(row.get('tokens_cnn'))} |")
    L += ["", "What gives it away against EIMG (largest standardised mean differences, generated − human, in pooled SDs):", ""]
    for s, feats in res["giveaways"].items():
        L.append(f"- `{s}`: " + ", ".join(f"{g['feature']} {g['d']:+.1f} ({g['generated']:.2f} vs {g['human']:.2f})" for g in feats[:6]))
    ex = res["expression"]
    L += ["", "## Expression: velocity and note lengths", ""]
    if figure_path is not None:
        L += [f"![velocity and note-length distributions]({os.path.relpath(figure_path, path.parent)})", ""]
    L += ["| set | clips | velocity SD per clip (p10 / 50 / 90) | distinct velocities (p10 / 50 / 90) | one velocity in the clip | "
          "distinct note lengths (p10 / 50 / 90) |", "| --- | --- | --- | --- | --- | --- |"]
    for k in list(cfg["settings"]) + ["eimg", "pop909"]:
        e = ex.get(k)
        if not e or not e["clips"]:
            continue
        fmt = lambda x: " / ".join(f"{v:.1f}" if v % 1 else f"{v:.0f}" for v in x)  # noqa: E731
        L.append(f"| {SETTING_NAMES.get(k, k.upper() if k == 'eimg' else 'POP909')} | {e['clips']} | {fmt(e['velocity_std_p10_50_90'])} | "
                 f"{fmt(e['distinct_velocities_p10_50_90'])} | {e['constant_velocity_share'] * 100:.0f} % | {fmt(e['distinct_lengths_p10_50_90'])} |")
    if "keys" in res:
        k = res["keys"]
        L += ["", f"## Keys over the {k['clips']}-clip grid (no key given)", "",
              f"- Key the emotion plan chose: {k['planned_tonics']} different tonics; "
              + ", ".join(f"{n} × {c}" for n, c in k["planned"].items()) + ".",
              f"- Key estimated from the notes (Krumhansl–Schmuckler): {k['estimated_tonics']} different tonics; modes "
              + ", ".join(f"{m} {c}" for m, c in k["estimated_modes"].items()) + "; "
              + ", ".join(f"{n} × {c}" for n, c in list(k["estimated"].items())[:12]) + ".",
              f"- EIMG's {res['keys_human']['eimg']['clips']} clips, estimated the same way: "
              f"{res['keys_human']['eimg']['estimated_tonics']} tonics; modes "
              + ", ".join(f"{m} {c}" for m, c in res["keys_human"]["eimg"]["estimated_modes"].items()) + "."]
    L += ["", "## Emotion (the independent judge, engine/emotion/judge.py) and Music_Quality_Loss", "",
          "Judge r between the requested VA (grid settings) or the pictures' human ratings (pictures) and the VA the judge "
          "hears, over the same clips (as written files, before the tokenizer round trip). Music_Quality_Loss: the paper's, "
          "engine.music.metrics (lower is better; ≤ 0.3 is the aim).", "",
          "| setting | clips | judge r valence | judge r arousal | degenerate | Music_Quality_Loss | PR / PE / GC |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    for s, e in res["emotion"].items():
        L.append(f"| {SETTING_NAMES[s]} | {e['clips']} | {_f(e['judge_r_valence'])} | {_f(e['judge_r_arousal'])} | {e['degenerate']} | "
                 f"{e['music_quality_loss']:.3f} | {e['polyphony_rate']:.3f} / {e['pitch_entropy']:.2f} / {e['groove_consistency']:.3f} |")
    for k, q in res["quality_human"].items():
        L.append(f"| {k.upper() if k == 'eimg' else 'POP909'} (human, these clips) | – | – | – | – | {q['music_quality_loss']:.3f} | "
                 f"{q['polyphony_rate']:.3f} / {q['pitch_entropy']:.2f} / {q['groove_consistency']:.3f} |")
    L += ["", "## Re-running", "",
          "- `nice -n 10 python -m training.realness` (report split; writes this file, the figure and runs/realness/report.json).",
          "- `python -m training.realness --split dev --settings grid` to compare models or decoding settings "
          "(`--bundle`, `--guidance`, `--temperature`, `--top-p`); decide there, then run the report once.",
          "- `--save-before` stores the run as `docs/realness_before.json`; later runs show it in the *before* column.", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(L))


def r_clips(res: dict) -> int:
    return res.get("keys", {}).get("clips", 0)


def _aims(res: dict, before: dict | None) -> list[str]:
    """The aims, checked on this run (and the saved *before* run)."""
    def row(r):
        T, ex = r["tests"], r["expression"]
        strongest = max((_strongest(v)["auc"], k) for k, v in T.items() if k.split("|")[0] in SETTINGS)
        grid_vsd = ex.get("grid", {}).get("velocity_std_p10_50_90")
        return {"auc": strongest, "vsd": grid_vsd, "tonics": r.get("keys", {}).get("estimated_tonics"),
                "planned": r.get("keys", {}).get("planned_tonics"), "emotion": r.get("emotion", {})}
    now, was = row(res), row(before) if before else None
    human = [res["expression"][k]["velocity_std_p10_50_90"] for k in ("eimg", "pop909")]
    g, p = now["emotion"].get("grid", {}), now["emotion"].get("pictures", {})
    L = ["## Aims and where this run stands", "",
         "| aim | this run | " + ("before | " if was else "") + "met |", "| --- | --- | " + ("--- | " if was else "") + "--- |"]

    def line(aim, value, old, ok):
        L.append(f"| {aim} | {value} | " + (f"{old} | " if was else "") + ("yes" if ok else "**no**") + " |")

    line("realness AUC ≤ 0.70 (strongest test, worst setting)", f"{now['auc'][0]:.2f} (`{now['auc'][1]}`)",
         was and f"{was['auc'][0]:.2f}", now["auc"][0] <= 0.70)
    if now["vsd"]:  # EIMG's transcriptions are mostly one velocity per clip: the performed range is POP909's
        line("velocity spread within the performed range (grid median SD per clip within POP909's p10–p90)",
             f"{now['vsd'][1]:.1f} (EIMG p10–p90 {human[0][0]:.1f}–{human[0][2]:.1f}, POP909 {human[1][0]:.1f}–{human[1][2]:.1f})",
             was and was["vsd"] and f"{was['vsd'][1]:.1f}", human[1][0] <= now["vsd"][1] <= human[1][2])
    if now["tonics"] is not None:
        line(f"≥ 10 tonics over the {r_clips(res)}-clip grid without a key (estimated / planned)", f"{now['tonics']} / {now['planned']}",
             was and f"{was['tonics']} / {was['planned']}", now["tonics"] >= 10)
    if g:
        wg = was["emotion"].get("grid", {}) if was else {}
        wp = was["emotion"].get("pictures", {}) if was else {}
        line("emotion held: judge r, grid (valence / arousal)", f"{_f(g['judge_r_valence'])} / {_f(g['judge_r_arousal'])}",
             was and f"{_f(wg.get('judge_r_valence'))} / {_f(wg.get('judge_r_arousal'))}",
             not was or (g["judge_r_valence"] >= wg.get("judge_r_valence", 0) - 0.05
                         and g["judge_r_arousal"] >= wg.get("judge_r_arousal", 0) - 0.05))
        if p:
            line("emotion held: judge r, pictures (valence / arousal)", f"{_f(p['judge_r_valence'])} / {_f(p['judge_r_arousal'])}",
                 was and f"{_f(wp.get('judge_r_valence'))} / {_f(wp.get('judge_r_arousal'))}",
                 not was or (p["judge_r_valence"] >= wp.get("judge_r_valence", 0) - 0.05
                             and p["judge_r_arousal"] >= wp.get("judge_r_arousal", 0) - 0.05))
        line("Music_Quality_Loss ≤ 0.3 (grid)", f"{g['music_quality_loss']:.3f}",
             was and wg and f"{wg['music_quality_loss']:.3f}", g["music_quality_loss"] <= 0.3)
    if was is None:
        L += ["", "(Emotion \"held\" compares with a saved *before* run; within 0.05 counts as held.)"]
    return L


def _f(x, nd=2):
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _public(res: dict) -> dict:
    """JSON-ready results (numpy numbers as floats)."""
    return json.loads(json.dumps(res, default=float))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="realness: two-sample tests of generated vs held-out human piano clips")
    ap.add_argument("--split", choices=("report", "dev"), default="report")
    ap.add_argument("--tiny", action="store_true", help="a few seconds of everything (smoke test)")
    ap.add_argument("--clips", type=int)
    ap.add_argument("--settings", nargs="+", choices=SETTINGS)
    ap.add_argument("--workers", type=int)
    ap.add_argument("--bundle")
    ap.add_argument("--guidance", type=float)
    ap.add_argument("--temperature", type=float)
    ap.add_argument("--top-p", type=float)
    ap.add_argument("--out", help="JSON results (default runs/realness/<split>.json)")
    ap.add_argument("--doc", help="markdown report (default docs/realness.md for the report split, none for dev/tiny)")
    ap.add_argument("--figure", help="expression figure (default docs/figures/realness_expression.png with the doc)")
    ap.add_argument("--save-before", action="store_true", help="also store the results as docs/realness_before.json")
    ap.add_argument("--from-json", metavar="JSON", help="only rewrite the doc and figure from these results")
    args = ap.parse_args(argv)
    if args.from_json:
        res = json.loads(Path(args.from_json).read_text())
        doc = Path(args.doc) if args.doc else DOC
        fig = Path(args.figure) if args.figure else (FIGURE if doc == DOC else doc.with_suffix(".png"))
        figure(res, fig)
        before = json.loads(BEFORE.read_text()) if BEFORE.exists() and doc == DOC else None
        if before is not None and before.get("seconds_total") == res.get("seconds_total"):
            before = None  # the run is itself the saved "before"
        write_doc(res, doc, before, fig, res.get("command", ""))
        return
    kw = dict(TINY) if args.tiny else {}
    kw["split"] = args.split
    for k in ("clips", "workers", "bundle", "guidance", "temperature", "top_p"):
        if getattr(args, k) is not None:
            kw[k] = getattr(args, k)
    if args.settings:
        kw["settings"] = tuple(args.settings)
    cfg = RealnessConfig(**kw)
    res = run(cfg, log=lambda s: print(s, file=sys.stderr, flush=True))
    name = "tiny" if cfg.tiny else cfg.split
    out = Path(args.out) if args.out else REPO_ROOT / "runs" / "realness" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    res["command"] = "python -m training.realness" + "".join(" " + a for a in (argv if argv is not None else sys.argv[1:]))
    public = _public(res)
    out.write_text(json.dumps(public, indent=1))
    if args.save_before:
        BEFORE.write_text(json.dumps(public, indent=1))
    doc = Path(args.doc) if args.doc else (DOC if cfg.split == "report" and not cfg.tiny else None)
    if doc is not None:
        fig = Path(args.figure) if args.figure else (FIGURE if doc == DOC else doc.with_suffix(".png"))
        figure(res, fig)
        before = json.loads(BEFORE.read_text()) if BEFORE.exists() and not args.save_before and doc == DOC else None
        write_doc(res, doc, before, fig, res["command"])
    for name_, row in res["tests"].items():
        print(f"{name_:32s} " + "  ".join(f"{k} {_ci(row.get(k))}" for k in ("features_logistic", "features_mlp", "tokens_cnn")))


if __name__ == "__main__":
    main()
