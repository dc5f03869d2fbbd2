"""MusicGenerator: an endless, steerable stream of REMI tokens from a model bundle.

The one object the live engine and offline generation drive::

    gen = MusicGenerator(load_bundle(), SamplingOptions(seed=0), MusicalControls(key="C minor"))
    tokens, (v, a) = gen.analyze_image(rgb)          # picture -> image tokens + VA estimate
    gen.set_condition(Condition(v, a, tokens))       # steer: recomputes cross K/V only
    while True:
        tok = gen.next_token()                       # one token, KV-cached
        for event in gen.last_events: ...            # the MIDI events that token completed

Each ``next_token`` runs the decoder on the previous token (so a new condition, control or
sampling setting acts on the very next token), masks the logits with the grammar and the
musical controls (:mod:`engine.model.controls`), and samples (:mod:`engine.model.sampling`). When the
cache would pass the bundle's ``max_context`` it re-primes at a bar boundary as
docs/bundle.md prescribes: ``BOS`` + the last ``reprime_keep`` tokens from a ``Bar`` on, one
prefill at positions 0..n-1. The musical state (:class:`engine.model.filters.state.MusicState`, built on
:class:`engine.music.events.StreamingDecoder`) runs on regardless, so event times keep growing.
The same bundle, seed, options and condition give the same tokens.

Emotion strength (``SamplingOptions.guidance`` = w > 1): classifier-free guidance. A second
branch runs the same tokens under the null condition (use_va = use_image = 0; its cross K/V
computed once) with its OWN self-attention cache rows, and the logits become ``u + w (c - u)``
before the masks and the sampler see them. Both branches are the two rows of ONE batch-2
decoder call (``self.cache`` has batch 2, the cross K/V are stacked [conditioned, null]), so
guidance costs one step, not two; both rows re-prime together. w = 1 (or an unconditioned
stream, where c = u) runs a batch-1 cache with only the conditioned branch, exactly as without it.

API (what the live stream and ``moodroll generate`` use)
-------------------------------------------------------
* ``MusicGenerator(bundle=None, sampling=SamplingOptions(), controls=MusicalControls(),
  condition=Condition(), *, runtime=None, device="auto", threads=None)``: ``bundle`` is a
  :class:`engine.model.bundle.Bundle`, a folder, or None (the shipped one); ``runtime`` shares already
  opened ONNX sessions; ``threads`` = ONNX Runtime intra-op threads (default half the cores).
* ``analyze_image(rgb) -> (image_tokens [Ni, Dc], (valence, arousal))``
* ``set_condition(Condition)``: cross K/V only; ``set_controls(MusicalControls)`` (validated
  first: a bad setting raises ValueError and the old one stays); ``set_sampling(SamplingOptions)``
  (the random generator restarts from its seed).
* ``next_token() -> int``; afterwards ``last_events`` holds the
  :class:`engine.music.events.Event` list that token completed and ``state`` the musical state
  (``state.now`` beat, ``state.decoder`` the StreamingDecoder).
* ``reset()``: new piece (empty cache, state at beat 0, sampler at its seed).
* ``generate(n)``, ``generate_bars(n)``: convenience loops over ``next_token``.
* Read-only facts: ``bundle``, ``tokenizer``, ``runtime.provider``, ``n_tokens``, ``n_reprimes``,
  ``condition``, ``controls``, ``sampling``.

Not thread-safe: call it from one thread (the live stream's decoder thread).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from engine.model.bundle import Bundle, load_bundle
from engine.model.controls import MusicalControls
from engine.model.filters import build_masks
from engine.model.filters.state import MusicState
from engine.model.runtime import Runtime
from engine.model.sampling import Sampler, SamplingOptions
from engine.music.events import Event
from engine.emotion.va import check_va


@dataclass(frozen=True, eq=False)  # eq=False: it holds an array; compare by identity
class Condition:
    """What the music should express. VA on the paper's 1-9 scale; a part left ``None`` is off
    (both off = unconditioned). ``image_tokens``: from :meth:`MusicGenerator.analyze_image`."""

    valence: float | None = None
    arousal: float | None = None
    image_tokens: np.ndarray | None = None

    def __post_init__(self):
        if (self.valence is None) != (self.arousal is None):
            raise ValueError("give both valence and arousal, or neither")
        if self.valence is not None:
            check_va(self.valence, self.arousal)

    @property
    def va(self) -> tuple[float, float] | None:
        return None if self.valence is None else (float(self.valence), float(self.arousal))


def reprime_ids(context: list[int], pending: int, bundle: Bundle, bar: int) -> list[int]:
    """What a full stream re-primes with: BOS + the last ``reprime_keep`` tokens (``context``
    without its BOS, then ``pending``), cut to start at their first Bar."""
    keep, max_context = bundle.decoder.reprime_keep, bundle.decoder.max_context
    recent = context[1:] + [pending]
    window = recent[-keep:]
    if bar in window:
        window = window[window.index(bar):]
    else:  # no Bar in the window: take the last bar that still fits, else the window
        starts = [i for i, t in enumerate(recent) if t == bar and len(recent) - i < max_context]
        if starts:
            window = recent[starts[-1]:]
    return [bundle.bos] + window


class MusicGenerator:
    """Sample an endless token stream from a bundle (a :class:`Bundle`, a folder, or None = shipped)."""

    def __init__(self, bundle: Union[Bundle, str, Path, None] = None, sampling: SamplingOptions = SamplingOptions(),
                 controls: MusicalControls = MusicalControls(), condition: Condition = Condition(),
                 *, runtime: Runtime | None = None, device: str = "auto", threads: int | None = None):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.runtime = runtime or Runtime(self.bundle, device=device, threads=threads)
        self.tokenizer = self.bundle.tokenizer
        self.state = MusicState(self.tokenizer)
        self.max_context = self.bundle.decoder.max_context
        self.reprime_keep = self.bundle.decoder.reprime_keep
        self._ucross: dict | None = None  # the null condition's cross K/V (guidance), made on first use
        self._gcross: dict | None = None  # [conditioned, null] stacked as batch 2 (guidance)
        self.set_controls(controls)
        self.set_sampling(sampling)
        self.set_condition(condition)
        self.reset()

    # -- settings (each takes effect at the next token) ---------------------------------------
    def set_condition(self, condition: Condition) -> None:
        """Steer: recompute the cross-attention K/V only; the self-attention cache continues."""
        c = self.bundle.image_encoder
        if condition.image_tokens is not None and np.asarray(condition.image_tokens).size != c.image_tokens * c.dim:
            raise ValueError(f"image_tokens must have {c.image_tokens} x {c.dim} values, "
                             f"got shape {np.shape(condition.image_tokens)}")
        self._cross = self.runtime.cross_kv(condition.va, condition.image_tokens)
        self._gcross = None
        self.condition = condition

    def set_controls(self, controls: MusicalControls) -> None:
        self._masks = build_masks(self.tokenizer, controls)  # raises before anything changes
        self.controls = controls

    def set_sampling(self, sampling: SamplingOptions) -> None:
        """New options; the random generator restarts from ``sampling.seed``."""
        self.sampler = Sampler(sampling)
        self.sampling = sampling

    def analyze_image(self, rgb: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        """RGB uint8 (H, W, 3) -> (image tokens [Ni, Dc], (valence, arousal) on 1-9)."""
        return self.runtime.encode_image(rgb)

    # -- the stream ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Start a new piece: empty cache, fresh musical state, sampler back at its seed."""
        self.cache = self.runtime.empty_cache(self._rows())  # row 0 conditioned, row 1 null (guided)
        self.context: list[int] = []  # the tokens in the cache, BOS first
        self._pending = self.bundle.bos  # the token the decoder runs next
        self.state.reset()
        self.sampler = Sampler(self.sampling)
        self.last_events: list[Event] = []
        self.n_tokens = 0  # tokens emitted since reset
        self.n_reprimes = 0

    def _reprime_ids(self) -> list[int]:
        return reprime_ids(self.context, self._pending, self.bundle, self.tokenizer.groups.bar)

    @property
    def guided(self) -> bool:
        """Whether the null branch runs: guidance on and a condition to guide towards."""
        c = self.condition
        return self.sampling.guidance != 1.0 and (c.va is not None or c.image_tokens is not None)

    def _rows(self) -> int:
        return 2 if self.guided else 1

    def logits(self) -> np.ndarray:
        """Run the decoder on the pending token; returns the logits [V] of the next one
        (guided, ``u + w (c - u)`` from one batch-2 call, when :attr:`guided`)."""
        rows = self._rows()
        if self.cache.length + 1 > self.max_context:
            ids = self._reprime_ids()
            if self.runtime.fixed and self.cache.batch == rows:
                self.cache.length = 0  # format 2: start over in the same buffers (old entries are masked)
            else:
                self.cache = self.runtime.empty_cache(rows)
            self.context = ids
            self.n_reprimes += 1
        else:
            if self.cache.batch != rows:  # guidance switched on (catch the null row up) or off
                self._set_branches(rows)
            ids = [self._pending]
            self.context.append(self._pending)
        if rows == 1:
            return self.runtime.decode(ids, self.cache, self._cross)[-1]
        c, u = self.runtime.decode(np.tile(np.asarray(ids, np.int64), (2, 1)), self.cache, self._guided_cross())[:, -1]
        return u + np.float32(self.sampling.guidance) * (c - u)

    def _set_branches(self, rows: int) -> None:
        if rows == 1:
            self.cache = self.runtime.select_rows(self.cache, [0])
            return
        null = self.runtime.empty_cache(1)
        if self.context:
            self.runtime.decode(self.context, null, self._null_cross())
        self.cache = self.runtime.stack_caches([self.cache, null])

    def _null_cross(self) -> dict:
        if self._ucross is None:
            self._ucross = self.runtime.cross_kv(None, None)
        return self._ucross

    def _guided_cross(self) -> dict:
        if self._gcross is None:
            self._gcross = self.runtime.stack_cross([self._cross, self._null_cross()])
        return self._gcross

    def next_token(self) -> int:
        """Sample one token (masked by grammar and controls); ``last_events`` gets its events."""
        logits = np.array(self.logits(), dtype=np.float32)
        for mask in self._masks:
            mask.apply(logits, self.state)
        tok = self.sampler.sample(logits)
        self._pending = tok
        self.last_events = self.state.feed(tok)
        self.n_tokens += 1
        return tok

    def generate(self, n_tokens: int) -> list[int]:
        return [self.next_token() for _ in range(n_tokens)]

    def generate_bars(self, n_bars: int, max_tokens: int | None = None) -> list[int]:
        """Tokens until ``n_bars`` full bars are written (stops before the next bar's ``Bar``)."""
        bar = self.tokenizer.groups.bar
        out: list[int] = []
        limit = max_tokens or 400 * n_bars + 64
        bars = 0
        while len(out) < limit:
            tok = self.next_token()
            if tok == bar:
                bars += 1
                if bars > n_bars:
                    break
            out.append(tok)
        return out
