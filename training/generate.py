"""Torch-side token stream from a :class:`training.model.MusicModel` (checks and experiments).

The engine streams with ONNX Runtime (``engine.model.generator.MusicGenerator``); this is the same
loop on the torch model, used by tests to prove the model itself handles endless streams:
KV-cached steps, steering that swaps only the cross-attention K/V, and re-priming per
docs/bundle.md (when the cache would pass ``max_context``: ``BOS`` + the last ``reprime_keep``
tokens from their first ``Bar``, one prefill at positions 0..n-1). Sampling uses
``engine.model.sampling.Sampler``, the engine's own.
"""
from __future__ import annotations

import numpy as np
import torch

from engine.model.sampling import Sampler, SamplingOptions
from training.model import MusicModel


class TorchStream:
    def __init__(self, model: MusicModel, bos: int, bar: int, sampling: SamplingOptions = SamplingOptions(seed=0),
                 banned: tuple = ()):
        self.model, self.bos, self.bar = model.eval(), bos, bar
        self.cfg = model.cfg
        self.sampler = Sampler(sampling)
        self.banned = list(banned)
        self.set_condition(*model.null_condition(1))
        self.past = model.empty_past(1)
        self.context: list[int] = []  # tokens in the cache, BOS first
        self.pending = bos
        self.n_reprimes = 0
        self.max_position = -1

    @torch.no_grad()
    def set_condition(self, va, use_va, image_tokens, use_image) -> None:
        """Steer: only the cross-attention K/V change; the self-attention cache continues."""
        self.cross = self.model.cross_kv(va, use_va, image_tokens, use_image)

    def cache_length(self) -> int:
        return int(self.past[0][0].shape[2])

    def reprime_ids(self) -> list[int]:
        window = (self.context[1:] + [self.pending])[-self.cfg.reprime_keep:]
        if self.bar in window:
            window = window[window.index(self.bar):]
        return [self.bos] + window

    @torch.no_grad()
    def logits(self) -> np.ndarray:
        if self.cache_length() + 1 > self.cfg.max_context:
            ids = self.reprime_ids()
            self.past = self.model.empty_past(1)
            positions = torch.arange(len(ids))[None]
            self.context = ids
            self.n_reprimes += 1
        else:
            ids = [self.pending]
            positions = torch.tensor([[self.cache_length()]])
            self.context.append(self.pending)
        self.max_position = max(self.max_position, int(positions.max()))
        out, self.past = self.model.step(torch.tensor([ids]), positions, self.past, self.cross)
        return out[0, -1].numpy()

    def next_token(self) -> int:
        logits = np.array(self.logits(), dtype=np.float32)
        logits[self.banned] = -np.inf
        self.pending = self.sampler.sample(logits)
        return self.pending

    def generate(self, n: int) -> list[int]:
        return [self.next_token() for _ in range(n)]
