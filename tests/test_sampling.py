"""engine.model.sampling: options validation, filters, determinism."""
import numpy as np
import pytest

from engine.model.sampling import Sampler, SamplingOptions, SuppressTokens, TopK, TopP


def test_options_reject_bad_values():
    for kw in ({"temperature": -1}, {"temperature": float("nan")}, {"top_k": -2}, {"top_k": 1.5},
               {"top_p": 0.0}, {"top_p": 1.5}):
        with pytest.raises(ValueError):
            SamplingOptions(**kw)
    with pytest.raises(Exception):  # frozen
        SamplingOptions().temperature = 2.0


def test_top_k_keeps_k_best():
    x = np.array([0.0, 5.0, 1.0, 4.0, 3.0])
    TopK(2).apply(x)
    assert np.isfinite(x).sum() == 2 and np.isfinite(x[[1, 3]]).all()


def test_top_p_keeps_smallest_nucleus():
    p = np.array([0.5, 0.3, 0.15, 0.05])
    x = np.log(p)
    TopP(0.7).apply(x)  # 0.5 < 0.7 <= 0.8: the two best
    assert np.isfinite(x).tolist() == [True, True, False, False]
    x = np.log(p)
    TopP(0.5).apply(x)  # the best alone reaches 0.5
    assert np.isfinite(x).tolist() == [True, False, False, False]


def test_suppressed_tokens_never_sampled():
    rng = np.random.default_rng(0)
    s = Sampler(SamplingOptions(temperature=1.5, top_p=1.0, seed=3))
    for _ in range(300):
        x = rng.normal(size=20)
        SuppressTokens([0, 7, 19]).apply(x)
        assert s.sample(x) not in (0, 7, 19)


def test_same_seed_same_tokens_and_greedy():
    rng = np.random.default_rng(1)
    logits = [rng.normal(size=50) for _ in range(200)]
    opts = SamplingOptions(temperature=0.9, top_k=20, top_p=0.9, seed=42)
    s1, s2 = Sampler(opts), Sampler(opts)
    a = [s1.sample(x) for x in logits]
    b = [s2.sample(x) for x in logits]
    c = [Sampler(SamplingOptions(seed=43)).sample(x) for x in logits]
    assert a == b and a != c
    g = Sampler(SamplingOptions(temperature=0.0))
    assert [g.sample(x) for x in logits] == [int(np.argmax(x)) for x in logits]


def test_sampling_follows_the_distribution():
    p = np.array([0.6, 0.3, 0.1])
    s = Sampler(SamplingOptions(top_p=1.0, seed=0))
    counts = np.bincount([s.sample(np.log(p)) for _ in range(5000)], minlength=3) / 5000
    assert np.allclose(counts, p, atol=0.03)


def test_all_masked_is_an_error():
    with pytest.raises(ValueError, match="masked"):
        Sampler().sample(np.full(4, -np.inf))
