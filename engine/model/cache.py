"""The fixed-capacity self-attention cache of bundle format 2, updated in place.

The engine owns one float32 numpy buffer per layer and kind, ``[B, H, C, Dh]`` (C = capacity),
and the valid length of every row, ``lengths`` [B]. A decoder step binds the whole buffers with
IO binding (OrtValues over the numpy memory: nothing is copied), plus ``cache_len`` = lengths;
the graph masks entries at or after each row's length and outputs only the T new keys/values
``[B, H, T, Dh]``, into pre-allocated output arrays, which :meth:`FixedKVCache.append` then
writes at ``lengths..lengths+T`` in place. So a step touches O(T) cache memory instead of
copying the whole past the way format 1's ``present = concat(past, new)`` does.

A row's buffers ``[b:b+1]`` are contiguous views, so :meth:`FixedKVCache.row` gives a batch-1
cache over the same memory (one stream of a batch re-primes alone). Bindings are reused while
the batch, T and the cross K/V stay the same (one binding for single-token steps, not one per step).
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort


class FixedKVCache:
    """Buffers ``buffers[past_{key,value}_{l}]`` [B, H, C, Dh] and ``lengths`` [B] (int64)."""

    def __init__(self, n_layers: int, batch: int, n_heads: int, capacity: int, head_dim: int,
                 _buffers: dict | None = None, _lengths: np.ndarray | None = None):
        if capacity < 1:
            raise ValueError(f"cache capacity must be >= 1, got {capacity}")
        shape = (batch, n_heads, capacity, head_dim)
        self.buffers = _buffers if _buffers is not None else {
            f"past_{k}_{i}": np.zeros(shape, np.float32) for i in range(n_layers) for k in ("key", "value")}
        self.lengths = _lengths if _lengths is not None else np.zeros(batch, np.int64)
        self.batch, self.capacity = batch, capacity
        self._dims = (n_layers, n_heads, head_dim)
        self._steps: dict = {}  # T -> _Step (the reusable binding for steps of T new tokens)

    @property
    def length(self) -> int:
        """Cached positions (the longest row; every row of a lockstep batch has the same)."""
        return int(self.lengths.max()) if self.batch else 0

    @length.setter
    def length(self, n: int) -> None:  # e.g. the bench rewinds to keep the context fixed
        self.lengths[:] = n

    def row(self, b: int) -> "FixedKVCache":
        """Row ``b`` as a batch-1 cache sharing this cache's memory."""
        L, H, Dh = self._dims
        return FixedKVCache(L, 1, H, self.capacity, Dh, {n: a[b:b + 1] for n, a in self.buffers.items()},
                            self.lengths[b:b + 1])

    def rows(self, index) -> "FixedKVCache":
        """A new cache holding copies of the rows ``index`` (a list of row numbers)."""
        L, H, Dh = self._dims
        idx = np.asarray(index, np.int64)
        return FixedKVCache(L, idx.size, H, self.capacity, Dh, {n: a[idx].copy() for n, a in self.buffers.items()},
                            self.lengths[idx].copy())

    @staticmethod
    def stack(caches: list["FixedKVCache"]) -> "FixedKVCache":
        """One cache whose rows are the rows of ``caches`` in order (copies; same capacity)."""
        first = caches[0]
        L, H, Dh = first._dims
        bufs = {n: np.concatenate([c.buffers[n] for c in caches]) for n in first.buffers}
        return FixedKVCache(L, sum(c.batch for c in caches), H, first.capacity, Dh, bufs,
                            np.concatenate([c.lengths for c in caches]))

    def append(self, new: list[np.ndarray], names: list[str], t: int) -> None:
        """Write the step's new keys/values [B, H, T, Dh] at each row's length; lengths += T."""
        lens = self.lengths
        if lens.min() == lens.max():  # lockstep: one slice assignment per tensor
            p = int(lens[0])
            for name, x in zip(names, new):
                self.buffers[name][:, :, p:p + t] = x
        else:
            for name, x in zip(names, new):
                buf = self.buffers[name]
                for b, p in enumerate(lens):
                    buf[b, :, p:p + t] = x[b]
        lens += t


class _Step:
    """One reusable IO binding for steps of ``t`` new tokens on one cache and one cross K/V."""

    def __init__(self, session: ort.InferenceSession, cache: FixedKVCache, cross: dict, t: int, vocab: int,
                 new_names: list[str]):
        L, H, Dh = cache._dims
        B = cache.batch
        self.cross, self.t = cross, t
        self.ids = np.zeros((B, t), np.int64)
        self.positions = np.zeros((B, t), np.int64)
        self.logits = np.zeros((B, t, vocab), np.float32)
        self.new = [np.zeros((B, H, t, Dh), np.float32) for _ in new_names]
        io = session.io_binding()
        self._keep = [ort.OrtValue.ortvalue_from_numpy(a) for a in (self.ids, self.positions, cache.lengths)]
        for name, v in zip(("input_ids", "positions", "cache_len"), self._keep):
            io.bind_ortvalue_input(name, v)
        for name, buf in cache.buffers.items():
            v = ort.OrtValue.ortvalue_from_numpy(buf)  # over the cache's memory: no copy
            self._keep.append(v)
            io.bind_ortvalue_input(name, v)
        for name, value in cross.items():
            io.bind_ortvalue_input(name, value)
        for name, arr in zip(["logits", *new_names], [self.logits, *self.new]):
            v = ort.OrtValue.ortvalue_from_numpy(arr)
            self._keep.append(v)
            io.bind_ortvalue_output(name, v)
        self.io = io


def decode_fixed(session: ort.InferenceSession, cache: FixedKVCache, cross: dict, ids: np.ndarray,
                 positions: np.ndarray | None, vocab: int, new_names: list[str]) -> np.ndarray:
    """Run ``ids`` [B, T] after ``cache`` (format 2); returns logits [B, T, V] (a copy), cache grown by T."""
    b, t = ids.shape
    if b != cache.batch:
        raise ValueError(f"{b} rows of token ids for a cache of batch {cache.batch}")
    if int(cache.lengths.max()) + t > cache.capacity:
        raise ValueError(f"{t} new tokens do not fit the cache ({cache.length} of {cache.capacity} used)")
    step = cache._steps.get(t)
    if step is None or step.cross is not cross:
        step = _Step(session, cache, cross, t, vocab, new_names)
        if t == 1:  # kept: single-token steps are the stream; prefills of other lengths are rare
            cache._steps[t] = step
    step.ids[...] = ids
    step.positions[...] = (cache.lengths[:, None] + np.arange(t)) if positions is None else positions
    session.run_with_iobinding(step.io)
    cache.append(step.new, [n.replace("new_", "past_", 1) for n in new_names], t)
    return step.logits.copy()
