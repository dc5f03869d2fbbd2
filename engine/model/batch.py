"""Several streams in one batch: the app's "Generate N variations".

    from engine.model.batch import generate_variations
    pieces = generate_variations(bundle, Condition(7, 3), MusicalControls(key="A minor"),
                                 SamplingOptions(seed=0, guidance=2.0), n=16, bars=8)
    # pieces[i] == MusicGenerator(bundle, SamplingOptions(seed=0 + i, guidance=2.0), ...).generate_bars(8)

Variation ``i`` is exactly the stream a :class:`~engine.model.generator.MusicGenerator` would write with
``seed + i`` (seed None: fresh randomness for each): same masks, sampler, re-priming and
guidance, only decoded together. On a format-2 bundle (fixed-capacity cache) the N streams are
the rows of ONE decoder call per token (2N rows with guidance: N conditioned, then N null), and
each stream re-primes alone on its own rows (a row of the cache is a batch-1 view), so a
stream's reprime never disturbs the others. A format-1 bundle cannot hold rows of different
lengths in one batch: there the variations run one after another (same tokens, no speed-up).

``on_progress(fraction)`` is called after every token step (0..1); ``cancel`` (a
``threading.Event`` or a callable returning True) stops the work with :class:`Cancelled`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Union

import numpy as np

from engine.model.bundle import Bundle, load_bundle
from engine.model.controls import MusicalControls
from engine.model.filters import build_masks
from engine.model.filters.state import MusicState
from engine.model.generator import Condition, MusicGenerator, reprime_ids
from engine.model.runtime import Runtime
from engine.model.sampling import Sampler, SamplingOptions


class Cancelled(Exception):
    """generate_variations was cancelled (its ``cancel`` event was set)."""


def variation_sampling(sampling: SamplingOptions, n: int) -> list[SamplingOptions]:
    """Variation i samples with ``seed + i`` (all None when the seed is None)."""
    return [replace(sampling, seed=None if sampling.seed is None else sampling.seed + i) for i in range(n)]


@dataclass
class _Stream:
    """One variation's musical state, masks, sampler and token history."""

    state: MusicState
    masks: list
    sampler: Sampler
    context: list
    pending: int
    out: list
    bars: int = 0
    done: bool = False


def _runtime(source, device: str, threads: int | None) -> Runtime:
    if isinstance(source, Runtime):
        return source
    bundle = source if isinstance(source, Bundle) else load_bundle(source)
    return Runtime(bundle, device=device, threads=threads)


def _is_cancelled(cancel) -> bool:
    if cancel is None:
        return False
    return bool(cancel.is_set() if hasattr(cancel, "is_set") else cancel())


def generate_variations(source: Union[Runtime, Bundle, str, Path, None], condition: Condition = Condition(),
                        controls: MusicalControls = MusicalControls(), sampling: SamplingOptions = SamplingOptions(),
                        n: int = 16, *, bars: int | None = None, n_tokens: int | None = None,
                        on_progress: Callable[[float], None] | None = None, cancel=None,
                        device: str = "auto", threads: int | None = None) -> list[list[int]]:
    """``n`` variations of one condition: each ``n_tokens`` tokens, or ``bars`` full bars (as
    :meth:`MusicGenerator.generate_bars`). ``source``: a Runtime (shared sessions), a bundle or
    its folder (None = shipped). Returns one token list per variation."""
    if (bars is None) == (n_tokens is None):
        raise ValueError("give exactly one of bars or n_tokens")
    if n < 1 or (bars is not None and bars < 1) or (n_tokens is not None and n_tokens < 1):
        raise ValueError("n, bars and n_tokens must be >= 1")
    rt = _runtime(source, device, threads)
    if not rt.fixed:
        return _one_after_another(rt, condition, controls, sampling, n, bars, n_tokens, on_progress, cancel)
    return _Batch(rt, condition, controls, sampling, n).run(bars, n_tokens, on_progress, cancel)


def _one_after_another(rt, condition, controls, sampling, n, bars, n_tokens, on_progress, cancel):
    out = []
    for i, opts in enumerate(variation_sampling(sampling, n)):
        if _is_cancelled(cancel):
            raise Cancelled("generate_variations was cancelled")
        gen = MusicGenerator(rt.bundle, opts, controls, condition, runtime=rt)
        out.append(gen.generate_bars(bars) if bars is not None else gen.generate(n_tokens))
        if on_progress is not None:
            on_progress((i + 1) / n)
    return out


class _Batch:
    """N streams stepping together through one fixed-capacity cache of N (or 2N) rows."""

    def __init__(self, rt: Runtime, condition: Condition, controls: MusicalControls, sampling: SamplingOptions,
                 n: int):
        self.rt, self.n, self.bundle = rt, n, rt.bundle
        tok = self.bundle.tokenizer
        self.bar = tok.groups.bar
        self.guidance = sampling.guidance
        self.guided = sampling.guidance != 1.0 and (condition.va is not None or condition.image_tokens is not None)
        self.cross = rt.cross_kv(condition.va, condition.image_tokens)
        rows = 2 * n if self.guided else n
        self.null = rt.cross_kv(None, None) if self.guided else None
        self.batch_cross = rt.stack_cross([self.cross] * n + [self.null] * n) if self.guided else self.cross
        self.cache = rt.empty_cache(rows)
        self.streams = [_Stream(MusicState(tok), build_masks(tok, controls), Sampler(o), [], self.bundle.bos, [])
                        for o in variation_sampling(sampling, n)]

    def _reprime(self, i: int, s: _Stream) -> None:
        """Stream i's rows start over with its re-prime window (all but the pending token, which
        the batched step runs next, as the single generator's prefill would)."""
        ids = reprime_ids(s.context, s.pending, self.bundle, self.bar)
        rows = [(i, self.cross)] + ([(self.n + i, self.null)] if self.guided else [])
        for r, cross in rows:
            view = self.cache.row(r)
            view.length = 0
            if len(ids) > 1:
                self.rt.decode(ids[:-1], view, cross)
        s.context = ids[:-1]

    def step(self) -> None:
        max_context = self.bundle.decoder.max_context
        for i, s in enumerate(self.streams):
            if self.cache.lengths[i] + 1 > max_context:
                self._reprime(i, s)
            s.context.append(s.pending)
        pending = np.array([s.pending for s in self.streams], np.int64)
        ids = np.concatenate([pending, pending])[:, None] if self.guided else pending[:, None]
        logits = self.rt.decode(ids, self.cache, self.batch_cross)[:, -1]
        if self.guided:
            c, u = logits[:self.n], logits[self.n:]
            logits = u + np.float32(self.guidance) * (c - u)
        for s, row in zip(self.streams, logits):
            if s.done:  # finished: its rows idle along (re-running its last token) until all are done
                continue
            x = np.array(row, dtype=np.float32)
            for mask in s.masks:
                mask.apply(x, s.state)
            s.pending = s.sampler.sample(x)
            s.state.feed(s.pending)
            s.out.append(s.pending)

    def run(self, bars, n_tokens, on_progress, cancel) -> list[list[int]]:
        limit = n_tokens if n_tokens is not None else 400 * bars + 64  # as MusicGenerator.generate_bars
        for t in range(limit):
            if _is_cancelled(cancel):
                raise Cancelled("generate_variations was cancelled")
            self.step()
            if bars is not None:
                for s in self.streams:
                    if not s.done and s.out[-1] == self.bar:
                        s.bars += 1
                        if s.bars > bars:  # stop before the next bar's Bar, like generate_bars
                            s.out.pop()
                            s.done = True
            if on_progress is not None:
                done = (t + 1) / limit if bars is None else np.mean([1.0 if s.done else s.bars / (bars + 1)
                                                                      for s in self.streams])
                on_progress(float(done))
            if bars is not None and all(s.done for s in self.streams):
                break
        return [s.out for s in self.streams]
