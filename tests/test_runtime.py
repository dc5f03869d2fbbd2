"""engine.model.runtime + engine.model.generator on a random-weight bundle: the KV cache is exact, steering
keeps the cache, re-priming bounds it, seeds replay, and no masked pitch is ever emitted.
Format 2 (the fixed-capacity cache written in place) gives the same logits and tokens as format 1
on the same weights, rows of a batch match single streams, and the buffers really are reused."""
import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.model.controls import MusicalControls
from engine.model.filters import allowed_pitches
from engine.model.generator import Condition, MusicGenerator
from engine.model.runtime import CPU, DeviceError, Runtime, cuda_driver_present
from engine.model.sampling import SamplingOptions
from engine.music.events import NOTE_ON, decode_events


@functools.cache
def _export_format2(random_bundle: Path) -> Path:
    """The conftest random bundle's model (same seed, same weights) exported in format 2."""
    out = random_bundle.parent.parent / "random_format2"
    r = subprocess.run([sys.executable, "-m", "training.export", "--random", "--format", "2", "--threads", "1",
                        "--image-encoder-from", str(random_bundle), "--out", str(out)],
                       capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return out


@pytest.fixture(scope="session")
def random_bundle2(random_bundle) -> Path:
    """Format-2 twin of ``random_bundle`` (import this fixture where both formats are tested)."""
    return _export_format2(random_bundle)


@pytest.fixture(scope="module")
def rt2(random_bundle2):
    from engine.model.bundle import load_bundle

    return Runtime(load_bundle(random_bundle2), device="cpu", threads=1)


def test_provider_and_threads(bundle, rt):
    assert rt.provider == CPU and rt.device == "cpu" and rt.threads == 1
    assert rt.decoder.get_session_options().intra_op_num_threads == 1
    if not cuda_driver_present():
        with pytest.raises(DeviceError, match="device 'cuda' requested"):
            Runtime(bundle, device="cuda")
        assert Runtime(bundle, device="auto", threads=1).provider == CPU  # falls back, says so


def test_kv_cache_matches_full_prefill(bundle, rt):
    ids = np.random.default_rng(0).integers(3, bundle.decoder.vocab_size, 40)
    cross = rt.cross_kv((7.0, 2.0), None)
    full = rt.decode(ids, rt.empty_cache(), cross)
    cache = rt.empty_cache()
    step = np.concatenate([rt.decode(ids[:25], cache, cross)] + [rt.decode([i], cache, cross) for i in ids[25:]])
    assert cache.length == 40 and cache.past["past_key_0"].shape()[2] == 40
    np.testing.assert_allclose(step, full, rtol=1e-4, atol=1e-4)


def test_condition_changes_logits_not_cache(bundle, rt):
    ids = [bundle.bos, bundle.tokenizer.groups.bar]
    a = rt.decode(ids, rt.empty_cache(), rt.cross_kv((1.0, 1.0), None))
    b = rt.decode(ids, rt.empty_cache(), rt.cross_kv((9.0, 9.0), None))
    c = rt.decode(ids, rt.empty_cache(), rt.cross_kv(None, None))
    assert not np.allclose(a, b) and not np.allclose(a, c)
    gen = MusicGenerator(bundle, SamplingOptions(seed=0), runtime=rt)
    gen.generate(30)
    n = gen.cache.length
    gen.set_condition(Condition(2.0, 8.0))
    gen.next_token()
    assert gen.cache.length == n + 1  # the self-attention cache continued


def test_analyze_image(bundle, rt):
    rgb = (np.random.default_rng(1).random((120, 160, 3)) * 255).astype(np.uint8)
    tokens, (v, a) = MusicGenerator(bundle, runtime=rt).analyze_image(rgb)
    assert tokens.shape == (bundle.image_encoder.image_tokens, bundle.image_encoder.dim)
    assert 1.0 <= v <= 9.0 and 1.0 <= a <= 9.0
    gen = MusicGenerator(bundle, runtime=rt, condition=Condition(v, a, tokens))
    assert gen.next_token() == bundle.tokenizer.groups.bar  # a stream opens with a bar
    with pytest.raises(ValueError, match="image_tokens"):
        gen.set_condition(Condition(image_tokens=np.zeros(3)))
    with pytest.raises(ValueError, match="between 1 and 9"):
        Condition(0.0, 5.0)


def test_same_seed_same_tokens_and_reset(bundle, rt):
    opts = SamplingOptions(temperature=1.0, top_p=0.9, seed=7)
    a = MusicGenerator(bundle, opts, runtime=rt, condition=Condition(6, 6)).generate(200)
    gen = MusicGenerator(bundle, opts, runtime=rt, condition=Condition(6, 6))
    assert gen.generate(200) == a
    gen.reset()
    assert gen.generate(200) == a
    gen.set_sampling(SamplingOptions(seed=8))
    gen.reset()
    assert gen.generate(200) != a


def test_reprime_bounds_the_cache(bundle, rt):
    d = bundle.decoder
    gen = MusicGenerator(bundle, SamplingOptions(seed=1), runtime=rt)
    longest = 0
    for _ in range(3 * d.max_context):
        gen.next_token()
        longest = max(longest, gen.cache.length)
        assert gen.context[0] == bundle.bos and gen.cache.length == len(gen.context)
    assert gen.n_reprimes >= 2 and longest <= d.max_context


def test_reprime_keeps_bos_and_starts_at_a_bar(bundle, rt):
    d, g = bundle.decoder, bundle.tokenizer.groups
    gen = MusicGenerator(bundle, runtime=rt)
    note = [min(g.position), min(g.pitch), min(g.velocity), min(g.duration)]
    bar_len = 1 + 4 * 3  # Bar + three notes
    body = ([g.bar] + note * 3) * (d.max_context // bar_len + 2)
    gen.context, gen._pending = [bundle.bos] + body[:d.max_context - 1], body[d.max_context - 1]
    ids = gen._reprime_ids()
    assert ids[0] == bundle.bos and ids[1] == g.bar and ids[-1] == gen._pending
    assert d.reprime_keep - bar_len < len(ids) - 1 <= d.reprime_keep
    gen.cache = rt.empty_cache()
    rt.decode(gen.context, gen.cache, gen._cross)  # a full cache ...
    assert gen.cache.length == d.max_context
    gen.logits()  # ... so this step re-primes:  # the cache now holds exactly the re-primed ids at positions 0..n-1
    assert gen.n_reprimes == 1 and gen.context == ids and gen.cache.length == len(ids)


def test_no_masked_pitch_is_ever_emitted(bundle, rt):
    """The proof: thousands of tokens from a random model under tight controls."""
    controls = MusicalControls(key="F# major", pitch_range=(54, 78), max_polyphony=2, density=1.5)
    gen = MusicGenerator(bundle, SamplingOptions(temperature=1.3, top_p=1.0, seed=3), controls,
                         Condition(8.0, 8.0), runtime=rt)
    ids = gen.generate(3000)
    g = bundle.tokenizer.groups
    pitches = [g.pitch[i] for i in ids if i in g.pitch]
    assert len(pitches) > 100
    assert set(pitches) <= set(allowed_pitches(controls))  # key and range
    ons = [e for e in decode_events(bundle.tokenizer, ids) if e.kind == NOTE_ON]
    starts = np.array([e.beat for e in ons])
    ends = starts + np.array([e.value for e in ons])
    assert max(int(np.sum((starts <= t) & (ends > t))) for t in starts) <= 2  # polyphony
    assert np.bincount(np.floor(starts).astype(int)).max() <= 1  # density 1.5 -> 1 onset per beat
    # controls change on the fly; a bad one is refused and the old ones stay
    with pytest.raises(ValueError, match="unknown key"):
        gen.set_controls(MusicalControls(key="Q lydian"))
    assert gen.controls is controls
    gen.set_controls(MusicalControls(key="C major", pitch_range=(60, 72)))
    more = [g.pitch[i] for i in gen.generate(600) if i in g.pitch]
    assert more and set(more) <= set(allowed_pitches(gen.controls))


# -- format 2: the fixed-capacity cache ----------------------------------------------------------
def test_format2_matches_format1_logits_and_tokens(bundle, rt, rt2):
    assert bundle.format == 1 and rt2.bundle.format == 2 and rt2.fixed
    ids = np.random.default_rng(0).integers(3, bundle.decoder.vocab_size, 60)
    c1, c2 = rt.cross_kv((7.0, 2.0), None), rt2.cross_kv((7.0, 2.0), None)
    full = rt.decode(ids, rt.empty_cache(), c1)
    cache = rt2.empty_cache()
    got = np.concatenate([rt2.decode(ids[:30], cache, c2)] + [rt2.decode([i], cache, c2) for i in ids[30:]])
    np.testing.assert_allclose(got, full, rtol=0, atol=1e-5)
    for w in (1.0, 2.0):  # plain and guided streams, re-primes included
        opts = SamplingOptions(seed=3, top_p=0.95, guidance=w)
        a = MusicGenerator(bundle, opts, condition=Condition(7, 2), runtime=rt).generate(2 * bundle.decoder.max_context)
        gen = MusicGenerator(rt2.bundle, opts, condition=Condition(7, 2), runtime=rt2)
        assert gen.generate(len(a)) == a and gen.n_reprimes >= 1


def test_fixed_cache_is_written_in_place(rt2):
    cross = rt2.cross_kv(None, None)
    cache = rt2.empty_cache(capacity=16)
    bufs = dict(cache.buffers)
    rt2.decode([1, 5, 9], cache, cross)
    rt2.decode([7], cache, cross)
    step = cache._steps[1]
    rt2.decode([8], cache, cross)
    assert cache._steps[1] is step  # one binding for every single-token step
    assert cache.length == 5 and all(cache.buffers[n] is bufs[n] for n in bufs)  # the same memory
    k = cache.buffers["past_key_0"]
    assert k[:, :, :5].any()
    assert not k[:, :, 5:].any()  # nothing written past the valid length
    # rewinding the length overwrites that slot: the step is the same as on a fresh copy
    again = rt2.empty_cache(capacity=16)
    rt2.decode([1, 5, 9, 7], again, cross)
    cache.length = 4
    np.testing.assert_allclose(rt2.decode([8], cache, cross), rt2.decode([8], again, cross), atol=1e-6)
    with pytest.raises(ValueError, match="do not fit"):
        rt2.decode(list(range(3, 15)), cache, cross)


@pytest.mark.parametrize("which", ["format1", "format2"])
def test_batched_rows_match_single_streams(rt, rt2, which):
    r = rt if which == "format1" else rt2
    rng = np.random.default_rng(1)
    ids = rng.integers(3, r.vocab_size, (3, 12))
    crosses = [r.cross_kv((2.0, 8.0), None), r.cross_kv(None, None), r.cross_kv((9.0, 9.0), None)]
    batch = r.empty_cache(3)
    got = np.concatenate([r.decode(ids[:, :8], batch, r.stack_cross(crosses))]
                         + [r.decode(ids[:, t:t + 1], batch, r.stack_cross(crosses)) for t in range(8, 12)], axis=1)
    for b in range(3):
        single = r.empty_cache()
        want = r.decode(ids[b], single, crosses[b])
        np.testing.assert_allclose(got[b], want, rtol=0, atol=1e-5)
    shared = r.empty_cache(3)  # one cross K/V of batch 1 serves every row
    np.testing.assert_allclose(r.decode(ids[:, :4], shared, crosses[0])[1],
                               r.decode(ids[1, :4], r.empty_cache(), crosses[0]), atol=1e-5)


def test_format2_rows_of_different_lengths(rt2):
    """Each row masks its own past: a batch whose rows hold 5 and 9 tokens matches two streams."""
    cross = rt2.cross_kv((4.0, 6.0), None)
    rng = np.random.default_rng(2)
    a, b = rng.integers(3, rt2.vocab_size, 6), rng.integers(3, rt2.vocab_size, 10)
    batch = rt2.empty_cache(2, capacity=32)
    rt2.decode(a[:5], batch.row(0), cross)  # a row is a batch-1 view of the same memory
    rt2.decode(b[:9], batch.row(1), cross)
    assert list(batch.lengths) == [5, 9]
    got = rt2.decode(np.array([[a[5]], [b[9]]]), batch, cross)
    assert list(batch.lengths) == [6, 10]
    np.testing.assert_allclose(got[0], rt2.decode(a, rt2.empty_cache(), cross)[-1:], atol=1e-5)
    np.testing.assert_allclose(got[1], rt2.decode(b, rt2.empty_cache(), cross)[-1:], atol=1e-5)
