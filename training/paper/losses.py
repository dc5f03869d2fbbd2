"""The training losses: categorical cross-entropy, the paper's VA loss, a differentiable VA loss.

Paper (Kundu, Singh & Iwahori 2024, Eq. for the total loss): ``L = λ1·L_VA + λ2·L_CC`` with
λ1 = 1e-5, λ2 = 1. ``L_VA`` takes the model's arg-max next tokens, turns them into MIDI,
runs a music VA predictor on that MIDI and takes the mean absolute error against the
reference clip's valence and arousal.

**The arg-max passes no gradient.** ``argmax`` is piecewise constant, and the MIDI
round-trip is not a torch operation at all, so ``∂L_VA/∂θ = 0``: the paper's VA loss changes
the *reported* loss value, never the weights. Trained from the same seed, a model with the
paper's VA loss is bit-for-bit the model without it (tests/test_paper.py checks this). The
authors' own code does the same (``custom_loss`` in their ``trainTrans_VA_loss.py``, with
λ1 = 1e-7 and the predictor applied to the reference tokens instead of its label).

:func:`soft_va_loss` is the differentiable variant: the expected token histogram under the
softmax (mean of the per-position probabilities) goes through the same predictor
(``training.va_predictor``, whose features are smooth functions of the histogram), so the
gradient reaches every logit.

Everything runs in memory (``Tokenizer.decode`` -> symusic Score -> predictor); no files.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.music.tokenizer import Tokenizer
from training.va_predictor import MusicVAPredictor, expected_histogram

PAPER_LAMBDA_VA = 1e-5
PAPER_LAMBDA_CC = 1.0


def cross_entropy(logits: torch.Tensor, ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Next-token categorical cross-entropy: logits[:, t] scores ids[:, t + 1]; pads ignored."""
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1), ignore_index=pad_id)


def _target_mask(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """(B, T-1) True where logits[:, t] has a real next token."""
    return ids[:, 1:] != pad_id


@torch.no_grad()
def argmax_sequences(logits: torch.Tensor, ids: torch.Tensor, pad_id: int) -> list[np.ndarray]:
    """The model's arg-max next token at every real position of each clip (teacher forced)."""
    pred = logits[:, :-1].argmax(-1).cpu().numpy()
    mask = _target_mask(ids, pad_id).cpu().numpy()
    return [p[m] for p, m in zip(pred, mask)]


@torch.no_grad()
def paper_va_loss(logits: torch.Tensor, ids: torch.Tensor, target_va: torch.Tensor,
                  predictor: MusicVAPredictor, tokenizer: Tokenizer, pad_id: int) -> torch.Tensor:
    """The paper's L_VA: arg-max tokens -> MIDI (in memory) -> VA predictor -> MAE vs target.

    Returns a constant tensor (no gradient: see the module docstring).
    """
    scores = []
    for seq in argmax_sequences(logits, ids, pad_id):
        try:
            scores.append(tokenizer.decode(seq.tolist()))
        except Exception:  # an arg-max sequence MidiTok cannot decode counts as an empty clip
            scores.append(None)
    va = predictor.predict_scores([s for s in scores if s is not None])
    full = np.full((len(scores), 2), np.nan, np.float32)
    full[[i for i, s in enumerate(scores) if s is not None]] = va
    empty = np.isnan(full[:, 0])
    if empty.any():  # undecodable: score it as the predictor's reading of an empty clip
        full[empty] = predictor.predict([np.zeros(0, np.int64)])[0]
    return (torch.from_numpy(full).to(target_va.device) - target_va).abs().mean()


def soft_va_error(logits: torch.Tensor, mask: torch.Tensor, target_va: torch.Tensor,
                  predictor: MusicVAPredictor) -> torch.Tensor:
    """predictor(expected token histogram of ``softmax(logits)`` over the ``mask``ed positions)
    vs ``target_va`` (MAE on the 1-9 scale). ``logits`` (B, T, V) and ``mask`` (B, T) are aligned:
    position t is a real next-token prediction where ``mask[:, t]``. Differentiable."""
    h = expected_histogram(logits.float().softmax(-1), mask)
    return (predictor.forward_histogram(h) - target_va).abs().mean()


def soft_va_loss(logits: torch.Tensor, ids: torch.Tensor, target_va: torch.Tensor,
                 predictor: MusicVAPredictor, pad_id: int) -> torch.Tensor:
    """Differentiable VA loss: predictor(expected token histogram under the softmax) vs target (MAE)."""
    return soft_va_error(logits[:, :-1], _target_mask(ids, pad_id), target_va, predictor)


@dataclass(frozen=True)
class LossConfig:
    va_loss: str = "none"  # "none" | "paper" (arg-max, no gradient) | "soft" (differentiable)
    lambda_va: float = PAPER_LAMBDA_VA
    lambda_cc: float = PAPER_LAMBDA_CC

    def __post_init__(self):
        if self.va_loss not in ("none", "paper", "soft"):
            raise ValueError(f"va_loss must be 'none', 'paper' or 'soft', got {self.va_loss!r}")


def total_loss(cfg: LossConfig, logits, ids, target_va, predictor, tokenizer, pad_id) -> dict:
    """``{"loss": λ2·L_CC + λ1·L_VA, "cc": L_CC, "va": L_VA or None}`` (tensors)."""
    cc = cross_entropy(logits, ids, pad_id)
    if cfg.va_loss == "none":
        return {"loss": cfg.lambda_cc * cc, "cc": cc, "va": None}
    if cfg.va_loss == "paper":
        va = paper_va_loss(logits, ids, target_va, predictor, tokenizer, pad_id)
    else:
        va = soft_va_loss(logits, ids, target_va, predictor, pad_id)
    return {"loss": cfg.lambda_cc * cc + cfg.lambda_va * va, "cc": cc, "va": va}
