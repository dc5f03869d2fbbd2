"""Generation for evaluation: one clip per test picture, then its music metrics and emotion.

Settings (:class:`GenConfig`, the same for every row): start from ``BOS``, at most
``max_new`` tokens, stop at ``EOS``. ``"sampled"``: temperature 1.0 with top-p 0.95
(``engine.model.sampling``), seeded per picture; ``"greedy"``: arg-max, the authors' decoding
(``generate_midiSequence`` in their code).

Metrics (:func:`quality`): MusPy-exact polyphony rate (threshold 2), pitch entropy and
groove consistency (measure resolution 4) of each generated clip with ``engine.music.metrics``,
averaged over the clips that hold notes, and the paper's Music_Quality_Loss of those means
(the authors' ``Music_Quality.py`` does the same; clips it cannot read are skipped there,
clips without notes are skipped and counted here).

Emotional alignment (:func:`alignment`): the music VA predictor's reading of each generated
clip against the picture's VA: MAE and Pearson r per dimension.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from engine.music.metrics import PAPER_MEASURE_RESOLUTION, PAPER_POLYPHONY_THRESHOLD, groove_consistency, music_quality_loss, pitch_entropy, polyphony_rate
from engine.music.notes import notes_from_tokens
from engine.model.sampling import Sampler, SamplingOptions
from engine.music.tokenizer import Tokenizer
from training.va_predictor import MusicVAPredictor, va_metrics


@dataclass(frozen=True)
class GenConfig:
    max_new: int = 255  # tokens after BOS (the training window is 256 with BOS)
    decoding: str = "sampled"  # "sampled" | "greedy"
    temperature: float = 1.0
    top_p: float = 0.95
    seed: int = 0


@torch.no_grad()
def generate(model, images: torch.Tensor, tok: Tokenizer, cfg: GenConfig) -> list[np.ndarray]:
    """One clip per picture (images [N, D]); token ids without BOS/EOS/PAD."""
    model.eval()
    N = images.shape[0]
    g = tok.groups
    samplers = [Sampler(SamplingOptions(temperature=cfg.temperature if cfg.decoding == "sampled" else 0.0,
                                        top_p=cfg.top_p, seed=cfg.seed * 100003 + i)) for i in range(N)]
    token = torch.full((N,), g.bos, dtype=torch.long)
    done = np.zeros(N, bool)
    out = [[] for _ in range(N)]
    state = None
    for pos in range(cfg.max_new):
        logits, state = model.step(images, token, pos, state)
        logits = logits.double().numpy()
        logits[:, [g.pad, g.bos]] = -np.inf  # never generate padding or a second BOS
        nxt = np.array([samplers[i].sample(logits[i]) for i in range(N)])
        for i in range(N):
            if done[i]:
                continue
            if nxt[i] == g.eos:
                done[i] = True
            else:
                out[i].append(int(nxt[i]))
        if done.all():
            break
        token = torch.from_numpy(np.where(done, g.pad, nxt)).long()
    return [np.array(o, np.int64) for o in out]


def clip_metrics(ids: np.ndarray, tok: Tokenizer) -> dict:
    """PR / PE / GC of one generated clip (NaN where undefined, e.g. no notes)."""
    try:
        notes = notes_from_tokens(ids.tolist(), tok)
    except Exception:  # noqa: BLE001 - an undecodable sequence scores as an empty clip
        return {"polyphony_rate": math.nan, "pitch_entropy": math.nan, "groove_consistency": math.nan, "notes": 0}
    return {"polyphony_rate": polyphony_rate(notes, PAPER_POLYPHONY_THRESHOLD),
            "pitch_entropy": pitch_entropy(notes),
            "groove_consistency": groove_consistency(notes, PAPER_MEASURE_RESOLUTION),
            "notes": len(notes)}


def quality(clips: list, tok: Tokenizer) -> dict:
    """Mean PR, PE, GC over clips with notes, and Music_Quality_Loss of the means."""
    rows = [clip_metrics(c, tok) for c in clips]
    ok = [r for r in rows if r["notes"] > 0 and all(math.isfinite(r[k]) for k in
                                                     ("polyphony_rate", "pitch_entropy", "groove_consistency"))]
    out = {"clips": len(rows), "scored": len(ok), "empty": len(rows) - len(ok),
           "mean_tokens": float(np.mean([len(c) for c in clips])) if clips else 0.0,
           "mean_notes": float(np.mean([r["notes"] for r in rows])) if rows else 0.0}
    if not ok:
        return {**out, "polyphony_rate": math.nan, "pitch_entropy": math.nan, "groove_consistency": math.nan,
                "music_quality_loss": math.nan}
    m = {k: float(np.mean([r[k] for r in ok])) for k in ("polyphony_rate", "pitch_entropy", "groove_consistency")}
    return {**out, **m, "music_quality_loss": music_quality_loss(m["polyphony_rate"], m["pitch_entropy"],
                                                                  m["groove_consistency"])}


def grammar(clips: list, tok: Tokenizer) -> dict:
    """How much of a clip is notes: the share of Pitch tokens, and of those the share that
    form a complete REMI note (Pitch, Velocity, Duration in a row); per-clip means."""
    g = tok.groups
    pitch, vel, dur = set(g.pitch), set(g.velocity), set(g.duration)
    shares, complete, per_clip = [], [], []
    for c in clips:
        c = [int(x) for x in c]
        starts = [i for i, t in enumerate(c) if t in pitch]
        ok = [i for i in starts if i + 2 < len(c) and c[i + 1] in vel and c[i + 2] in dur]
        shares.append(len(starts) / max(len(c), 1))
        complete.append(len(ok) / len(starts) if starts else 0.0)
        per_clip.append(len(ok))
    return {"pitch_token_share": float(np.mean(shares)) if clips else 0.0,
            "complete_note_share": float(np.mean(complete)) if clips else 0.0,
            "complete_notes_per_clip": float(np.mean(per_clip)) if clips else 0.0}


def alignment(clips: list, image_va: np.ndarray, predictor: MusicVAPredictor) -> dict:
    """Predicted VA of the generated clips vs the pictures' VA (MAE, Pearson r)."""
    pred = predictor.predict(clips)
    return {**va_metrics(pred, image_va), "pred_valence_sd": float(pred[:, 0].std()),
            "pred_arousal_sd": float(pred[:, 1].std())}
