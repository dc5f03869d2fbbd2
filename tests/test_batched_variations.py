"""engine.model.batch.generate_variations: N streams in one batch are exactly N single
MusicGenerator streams with seeds seed..seed+N-1 (plain and guided, re-primes included, bars
and token counts), on format 2 (one batched call per token) and format 1 (one after another);
progress is reported and cancel stops it."""
import threading

import numpy as np
import pytest

from engine.model.bundle import load_bundle
from engine.model.controls import MusicalControls
from engine.model.batch import Cancelled, generate_variations, variation_sampling
from engine.model.generator import Condition, MusicGenerator
from engine.model.runtime import Runtime
from engine.model.sampling import SamplingOptions
from tests.test_runtime import random_bundle2  # noqa: F401

COND = Condition(3.0, 7.0)


@pytest.fixture(scope="module")
def rt2(random_bundle2):
    return Runtime(load_bundle(random_bundle2), device="cpu", threads=1)


def singles(rt, sampling, controls, n, n_tokens=None, bars=None):
    out = []
    for opts in variation_sampling(sampling, n):
        gen = MusicGenerator(rt.bundle, opts, controls, COND, runtime=rt)
        out.append(gen.generate(n_tokens) if n_tokens else gen.generate_bars(bars))
    return out


@pytest.mark.parametrize("w", [1.0, 2.0])
def test_batch_equals_single_streams_with_reprimes(rt2, w):
    sampling = SamplingOptions(seed=11, top_p=0.95, guidance=w)
    controls = MusicalControls(key="A minor")
    n_tokens = rt2.bundle.decoder.max_context + 40  # every stream re-primes at its own bar
    calls = []
    decode = rt2.decode
    rt2.decode = lambda ids, *a, **k: calls.append(np.shape(ids)) or decode(ids, *a, **k)
    try:
        got = generate_variations(rt2, COND, controls, sampling, n=4, n_tokens=n_tokens)
    finally:
        del rt2.decode
    assert got == singles(rt2, sampling, controls, 4, n_tokens=n_tokens)
    assert len({tuple(g) for g in got}) == 4  # the variations differ
    rows = 8 if w != 1.0 else 4
    assert sum(1 for c in calls if c == (rows, 1)) == n_tokens  # one batched call per token
    assert any(len(c) == 1 for c in calls)  # and the re-primes ran row by row


def test_bars_and_progress(rt2):
    sampling = SamplingOptions(seed=2, guidance=2.0)
    seen = []
    got = generate_variations(rt2, COND, MusicalControls(), sampling, n=3, bars=2, on_progress=seen.append)
    assert got == singles(rt2, sampling, MusicalControls(), 3, bars=2)
    bar = rt2.bundle.tokenizer.groups.bar
    assert all(g.count(bar) == 2 for g in got)
    assert seen == sorted(seen) and seen[-1] == 1.0


def test_format1_runs_one_after_another_with_the_same_tokens(bundle, rt):
    sampling = SamplingOptions(seed=4, guidance=2.0)
    got = generate_variations(rt, COND, MusicalControls(), sampling, n=2, n_tokens=50)
    assert got == singles(rt, sampling, MusicalControls(), 2, n_tokens=50)


def test_cancel_and_bad_arguments(rt2):
    ev = threading.Event()
    count = []

    def progress(f):
        count.append(f)
        if len(count) == 5:
            ev.set()  # the app's Cancel button, pressed during the run

    with pytest.raises(Cancelled):
        generate_variations(rt2, COND, n=2, n_tokens=100, on_progress=progress, cancel=ev)
    assert len(count) == 5
    with pytest.raises(ValueError, match="exactly one"):
        generate_variations(rt2, COND, n=2)
    with pytest.raises(ValueError, match=">= 1"):
        generate_variations(rt2, COND, n=0, n_tokens=5)
