"""engine.runtime + engine.generator on a random-weight bundle: the KV cache is exact, steering
keeps the cache, re-priming bounds it, seeds replay, and no masked pitch is ever emitted."""
import numpy as np
import pytest

from engine.controls import MusicalControls, allowed_pitches
from engine.generator import Condition, MusicGenerator
from engine.runtime import CPU, DeviceError, Runtime, cuda_driver_present
from engine.sampling import SamplingOptions
from engine.streaming import NOTE_ON, decode_events


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
