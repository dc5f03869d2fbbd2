"""Generate N variations of the current picture / emotion offline, into the takes list.

:class:`VariationsWorker` runs on its own QThread (the UI thread never waits on decoding):
it builds one :class:`engine.model.generator.MusicGenerator` (sharing the app's ONNX sessions when
given a ``runtime``), analyses the picture once, then writes variation ``i`` with seed
``seed + i`` as a take (:meth:`engine.takes.store.TakeStore.add_midi_bytes`, atomic). Signals:
``progress(done, total)`` after each take, ``finished(list of takes)`` at the end (also after
Cancel, with the takes made so far), ``failed(one line)`` on an error. :meth:`cancel` is
honoured between tokens, so it stops within one decoder step.

:func:`generate_variation` is the one place that turns (generator, job, seed) into tokens:
swap it for a batched multi-stream generator without touching the worker.
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass, replace

import numpy as np
from PyQt6.QtCore import QObject, QThread, pyqtSignal

from engine.model.controls import MusicalControls
from engine.model.sampling import DEFAULT_GUIDANCE, SamplingOptions


class Cancelled(Exception):
    """The user pressed Cancel."""


@dataclass(frozen=True, eq=False)
class VariationJob:
    """What to vary: a picture (RGB uint8) and/or a VA point, the musical settings, how many."""

    n: int = 4
    bars: int = 8
    rgb: np.ndarray | None = None  # the current picture or webcam frame
    valence: float | None = None  # the target (the puck); None = the picture's estimate
    arousal: float | None = None
    controls: MusicalControls = MusicalControls(time_signature=(4, 4))
    sampling: SamplingOptions = SamplingOptions(guidance=DEFAULT_GUIDANCE)
    bpm: float | None = None  # tempo written to the files; None = controls.bpm, else the model's
    seed: int | None = None  # variation i uses seed + i; None = a fresh random base
    source: str | None = None  # shown in the takes list ("beach.jpg", "webcam", "VA")

    def __post_init__(self):
        if not 1 <= self.n <= 100:
            raise ValueError(f"the number of variations must be 1..100, got {self.n}")
        if self.bars < 1:
            raise ValueError(f"bars must be at least 1, got {self.bars}")
        if self.rgb is None and self.valence is None:
            raise ValueError("give a picture or a valence/arousal point to vary")
        if (self.valence is None) != (self.arousal is None):
            raise ValueError("give both valence and arousal, or neither")


def generate_variation(gen, bars: int, should_stop=lambda: False) -> list[int]:
    """Tokens for ``bars`` full bars from ``gen`` (already reset and conditioned), checking
    ``should_stop`` before every token (raises :class:`Cancelled`). The one function to swap
    for a batched generator. Bars are counted by the engine's own
    :meth:`MusicGenerator.generate_bars`; only its ``next_token`` is wrapped for the check."""
    step = gen.next_token

    def checked() -> int:
        if should_stop():
            raise Cancelled()
        return step()

    gen.next_token = checked  # an instance attribute: generate_bars' self.next_token finds it
    try:
        return gen.generate_bars(bars)
    finally:
        del gen.next_token


def run_job(job: VariationJob, store, bundle=None, runtime=None, device: str = "auto",
            progress=lambda done, total: None, should_stop=lambda: False) -> list:
    """Generate the job's variations into ``store``; returns the takes (Qt-free: the worker's body)."""
    from engine.offline import to_midi_bytes
    from engine.model.generator import Condition, MusicGenerator
    from engine.takes.store import TakeMeta, key_label

    gen = MusicGenerator(bundle if runtime is None else runtime.bundle, job.sampling, job.controls,
                         runtime=runtime, device=device)
    image_tokens, v, a = None, job.valence, job.arousal
    if job.rgb is not None:
        image_tokens, (ev, ea) = gen.analyze_image(job.rgb)
        if v is None:
            v, a = float(np.clip(ev, 1, 9)), float(np.clip(ea, 1, 9))
    base = job.seed if job.seed is not None else random.SystemRandom().randrange(2**31)
    bpm = job.bpm if job.bpm is not None else job.controls.bpm
    sig = job.controls.scale.key_signature if job.controls.scale else None
    takes = []
    for i in range(job.n):
        if should_stop():
            break
        seed = base + i
        gen.set_sampling(replace(job.sampling, seed=seed))
        gen.reset()
        gen.set_condition(Condition(v, a, image_tokens))
        try:
            tokens = generate_variation(gen, job.bars, should_stop)
        except Cancelled:
            break
        text = f"moodroll variation {i + 1}/{job.n}: valence={v:.2f} arousal={a:.2f}; seed={seed}"
        data, key, first_bpm, _ = to_midi_bytes(gen.tokenizer, tokens, bpm, sig, text)
        meta = TakeMeta(valence=round(v, 2), arousal=round(a, 2), key=job.controls.key or key_label(key), bpm=first_bpm,
                        bars=job.bars, source=job.source, seed=seed, kind="variation")
        takes.append(store.add_midi_bytes(data, meta, prefix="variation"))
        progress(len(takes), job.n)
    return takes


class _Thread(QThread):
    def __init__(self, body):
        super().__init__()
        self.setObjectName("moodroll-variations")
        self._body = body

    def run(self) -> None:  # noqa: D102
        self._body()


class VariationsWorker(QObject):
    """Runs :func:`run_job` on a QThread of its own; see the module docstring.

    ``worker = VariationsWorker(job, store, runtime=bridge_runtime); worker.start()``."""

    progress = pyqtSignal(int, int)  # done, total
    finished = pyqtSignal(list)  # the takes written (fewer than asked after Cancel)
    failed = pyqtSignal(str)  # one line

    def __init__(self, job: VariationJob, store, bundle=None, runtime=None, device: str = "auto", parent=None):
        super().__init__(parent)
        self.job, self.store, self.bundle, self.runtime, self.device = job, store, bundle, runtime, device
        self._stop = threading.Event()
        self.takes: list = []
        self.error: str | None = None
        self._thread = _Thread(self._run)  # signals emitted there reach UI-thread slots queued

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        """Stop after the current decoder step; ``finished`` then carries the takes made so far."""
        self._stop.set()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def running(self) -> bool:
        return self._thread.isRunning()

    def wait(self, ms: int = 30000) -> bool:
        return self._thread.wait(ms)

    def _run(self) -> None:
        try:
            self.takes = run_job(self.job, self.store, self.bundle, self.runtime, self.device,
                                 progress=self.progress.emit, should_stop=self._stop.is_set)
        except Exception as e:  # noqa: BLE001 - reported as one line, never a traceback dialog
            self.error = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.failed.emit(f"variations failed: {self.error}")
            return
        self.finished.emit(self.takes)
