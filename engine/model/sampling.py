"""Turning logits into one token: temperature, top-k, top-p, a seeded random generator.

Shaped like whisper's ``decoding.py``: small :class:`LogitFilter` classes each edit a logit
vector in place (masked entries become ``-inf``); :class:`Sampler` applies temperature and the
top-k / top-p filters, then draws with its own ``numpy.random.Generator``. The same seed and
the same options give the same tokens. Musical masks (key, range, polyphony, density) live
in :mod:`engine.model.controls` and are LogitFilters too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

NEG_INF = -np.inf
MAX_GUIDANCE = 5.0  # above ~3 the guided model can get stuck inside a bar


DEFAULT_GUIDANCE = 2.0  # the apps' default emotion strength (SamplingOptions itself defaults to 1 = off)


@dataclass(frozen=True)
class SamplingOptions:
    temperature: float = 1.0  # 0 = always the most likely token
    top_k: int = 0  # keep only the k most likely tokens (0 = off)
    top_p: float = 0.95  # keep the smallest set whose probability reaches p (1.0 = off)
    seed: int | None = None  # None = fresh randomness each time
    # "emotion strength": classifier-free guidance weight w, logits = u + w (c - u) with u from the
    # null condition (engine.model.generator runs a second decoder branch); 1.0 = off (no extra cost)
    guidance: float = 1.0

    def __post_init__(self):
        if not (self.temperature >= 0.0) or not np.isfinite(self.temperature):
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if int(self.top_k) != self.top_k or self.top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0, got {self.top_k}")
        if not (0.0 < self.top_p <= 1.0):
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not (0.0 < self.guidance <= MAX_GUIDANCE):
            raise ValueError(f"guidance (emotion strength) must be in (0, {MAX_GUIDANCE:g}], got {self.guidance}")


class LogitFilter:
    """Edits a logit vector in place (entries set to -inf can never be sampled)."""

    def apply(self, logits: np.ndarray) -> None:
        raise NotImplementedError


class SuppressTokens(LogitFilter):
    """Never emit the given token ids (e.g. PAD, BOS, EOS in an endless stream)."""

    def __init__(self, ids: Sequence[int]):
        self.ids = np.asarray(sorted(set(int(i) for i in ids)), dtype=np.int64)

    def apply(self, logits: np.ndarray) -> None:
        if self.ids.size:
            logits[self.ids] = NEG_INF


class TopK(LogitFilter):
    def __init__(self, k: int):
        self.k = int(k)

    def apply(self, logits: np.ndarray) -> None:
        if 0 < self.k < logits.size:
            kth = np.partition(logits, -self.k)[-self.k]
            logits[logits < kth] = NEG_INF


class TopP(LogitFilter):
    """Nucleus filter: keep the most likely tokens whose probabilities sum to at least p."""

    def __init__(self, p: float):
        self.p = float(p)

    def apply(self, logits: np.ndarray) -> None:
        if self.p >= 1.0:
            return
        order = np.argsort(-logits, kind="stable")
        probs = softmax(logits[order])
        cum = np.cumsum(probs)
        keep = int(np.searchsorted(cum, self.p, side="left")) + 1  # first index where cum >= p, inclusive
        logits[order[keep:]] = NEG_INF


def softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x)
    if not np.isfinite(m):
        raise ValueError("every token is masked")
    e = np.exp(x - m)
    return e / e.sum()


class Sampler:
    """Draw token ids from logit vectors under one :class:`SamplingOptions`."""

    def __init__(self, options: SamplingOptions = SamplingOptions()):
        self.options = options
        self.rng = np.random.default_rng(options.seed)
        self.filters: list[LogitFilter] = []
        if options.top_k:
            self.filters.append(TopK(options.top_k))
        if options.top_p < 1.0:
            self.filters.append(TopP(options.top_p))

    def sample(self, logits: np.ndarray) -> int:
        """One token id from ``logits`` [V] (already masked by the caller's filters; not modified)."""
        x = np.array(logits, dtype=np.float64)  # a copy; float64 for stable cumulative sums
        if not np.isfinite(np.max(x)):
            raise ValueError("every token is masked")
        if self.options.temperature == 0.0:
            return int(np.argmax(x))
        x /= self.options.temperature
        for f in self.filters:
            f.apply(x)
        p = softmax(x)
        # inverse-CDF draw: exactly one uniform number per token, so streams replay exactly
        u = self.rng.random()
        i = int(np.searchsorted(np.cumsum(p), u * p.sum(), side="right"))
        i = min(i, p.size - 1)
        while p[i] == 0.0:  # float round-off landed on a masked entry: step back to a live one
            i -= 1
        return i
