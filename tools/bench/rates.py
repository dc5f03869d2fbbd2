"""Raw decoding rates: cached single-token steps of an ONNX Runtime session, timed in blocks."""
from __future__ import annotations

import time

import numpy as np

from engine.model.runtime import KVCache, Runtime


class DecodeRounds:
    """Single-token cached steps after ``context`` cached tokens; each call times one block.

    ``rows`` streams step together (tokens/s counts every row's token); ``guided``: each stream
    is a conditioned + null pair (2 rows per stream, one token per pair), as guidance runs.
    Format 2 caches get a capacity of ``context + 1``: every step writes the same slot."""

    def __init__(self, rt: Runtime, context: int, rows: int = 1, guided: bool = False):
        self.rt, self.context, self.rows = rt, context, rows
        self.b = 2 * rows if guided else rows
        cross = rt.cross_kv((5.0, 5.0), None)
        if guided:
            cross = rt.stack_cross([cross] * rows + [rt.cross_kv(None, None)] * rows)
        self.cross = cross
        rng = np.random.default_rng(0)
        self.cache = rt.empty_cache(self.b, capacity=context + 1) if rt.fixed else rt.empty_cache(self.b)
        for start in range(0, context, 256):  # prefill in chunks (bounded attention matrices)
            n = min(256, context - start)
            rt.decode(np.tile(rng.integers(4, rt.vocab_size, n), (self.b, 1)), self.cache, self.cross)
        self(2)  # warm up (first binding, first allocations)

    def _step(self, i: int) -> None:
        if self.rt.fixed:
            self.cache.length = self.context  # context stays at `context` (the slot is overwritten)
            step = self.cache
        else:
            step = KVCache(dict(self.cache.past), self.cache.length)
        self.rt.decode(np.full((self.b, 1), 4 + i % 64), step, self.cross)

    def __call__(self, steps: int) -> float:
        t = time.perf_counter()
        for i in range(steps):
            self._step(i)
        return self.rows * steps / (time.perf_counter() - t)


def decode_rate(rt: Runtime, context: int, steps: int, repeats: int = 3, rows: int = 1,
                guided: bool = False) -> float:
    """Tokens/s of :class:`DecodeRounds` (best of ``repeats`` blocks of ``steps``)."""
    r = DecodeRounds(rt, context, rows, guided)
    return max(r(steps) for _ in range(repeats))
