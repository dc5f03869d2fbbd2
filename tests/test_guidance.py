"""Emotion strength (classifier-free guidance) in engine.model.generator on a random-weight bundle:
off (w = 1) is exactly the plain stream and runs no null branch, on it is u + w (c - u) from two
independent cache rows run as ONE batch-2 call, equal to the two-call form (same tokens for a
seed, logits within 1e-5), seeded, masked, and survives re-priming. Bundle formats 1 and 2."""
import numpy as np
import pytest

from tests.test_runtime import random_bundle2  # noqa: F401  (the format-2 twin of random_bundle)

from engine.model.controls import MusicalControls
from engine.model.filters import allowed_pitches, build_masks
from engine.model.generator import Condition, MusicGenerator
from engine.model.sampling import Sampler, SamplingOptions
from engine.music.events import NOTE_ON

COND = Condition(7.5, 2.0, None)


@pytest.fixture(scope="module", params=[1, 2], ids=["format1", "format2"])
def both(request, bundle, rt, random_bundle2):
    """(bundle, runtime) of format 1 and of format 2 (same weights)."""
    if request.param == 1:
        return bundle, rt
    from engine.model.bundle import load_bundle
    from engine.model.runtime import Runtime

    b2 = load_bundle(random_bundle2)
    return b2, Runtime(b2, device="cpu", threads=1)


def by_hand(bundle, rt, opts, controls, n, w=None):
    """The plain (w None) or guided stream written out from runtime calls, no re-priming; the
    guided one runs the two branches as two separate batch-1 calls (the old two-call form)."""
    gen = MusicGenerator(bundle, opts, controls, runtime=rt)  # only for its musical state
    masks, sampler = build_masks(bundle.tokenizer, controls), Sampler(opts)
    cross, ucross = rt.cross_kv(COND.va, None), rt.cross_kv(None, None)
    cache, ucache, pending, out = rt.empty_cache(), rt.empty_cache(), bundle.bos, []
    for _ in range(n):
        c = rt.decode([pending], cache, cross)[-1]
        logits = c if w is None else (lambda u: u + np.float32(w) * (c - u))(rt.decode([pending], ucache, ucross)[-1])
        logits = np.array(logits, np.float32)
        for m in masks:
            m.apply(logits, gen.state)
        pending = sampler.sample(logits)
        gen.state.feed(pending)
        out.append(pending)
    return out


def test_guidance_off_is_the_plain_stream(both):
    bundle, rt = both
    opts = SamplingOptions(seed=3, top_p=0.9)
    gen = MusicGenerator(bundle, opts, condition=COND, runtime=rt)
    assert gen.generate(80) == by_hand(bundle, rt, opts, MusicalControls(), 80)
    assert gen.cache.batch == 1 and gen._ucross is None  # the null branch never ran


def test_guided_logits_are_u_plus_w_c_minus_u_in_one_call(both):
    bundle, rt = both
    gen = MusicGenerator(bundle, SamplingOptions(seed=0, guidance=2.5), condition=COND, runtime=rt)
    cross, ucross = rt.cross_kv(COND.va, None), rt.cross_kv(None, None)
    cache, ucache = rt.empty_cache(), rt.empty_cache()
    calls = []
    decode = rt.decode
    rt.decode = lambda *a, **k: calls.append(np.shape(a[0])) or decode(*a, **k)  # count decoder calls
    try:
        for _ in range(6):
            pending = gen._pending
            got = gen.logits()
            c, u = decode([pending], cache, cross)[-1], decode([pending], ucache, ucross)[-1]
            assert not np.allclose(c, u)
            np.testing.assert_allclose(got, u + np.float32(2.5) * (c - u), rtol=0, atol=1e-5)
            gen._pending = int(np.argmax(got))  # feed both branches the same token, as next_token does
    finally:
        del rt.decode
    assert calls == [(2, 1)] * 6  # one batch-2 decoder step per token
    assert gen.cache.batch == 2 and gen.cache.length == 6


def test_guided_stream_is_seeded_and_differs_from_plain(both):
    bundle, rt = both
    g2 = SamplingOptions(seed=5, guidance=2.0)
    a = MusicGenerator(bundle, g2, condition=COND, runtime=rt).generate(120)
    assert MusicGenerator(bundle, g2, condition=COND, runtime=rt).generate(120) == a
    assert a == by_hand(bundle, rt, g2, MusicalControls(), 120, w=2.0)
    assert MusicGenerator(bundle, SamplingOptions(seed=5), condition=COND, runtime=rt).generate(120) != a
    # unconditioned: c = u, so guidance is a no-op and costs nothing
    plain = MusicGenerator(bundle, SamplingOptions(seed=5), runtime=rt).generate(60)
    gen = MusicGenerator(bundle, g2, runtime=rt)
    assert gen.generate(60) == plain and gen._ucross is None


def test_masks_hold_with_guidance(both):
    bundle, rt = both
    controls = MusicalControls(key="D dorian", pitch_range=(50, 70))
    allowed = set(allowed_pitches(controls))
    gen = MusicGenerator(bundle, SamplingOptions(seed=2, guidance=3.0), controls, COND, runtime=rt)
    notes = []
    for _ in range(400):
        gen.next_token()
        notes += [e.pitch for e in gen.last_events if e.kind == NOTE_ON]
    assert notes and set(notes) <= allowed


def test_guided_reprime_and_steering(both):
    bundle, rt = both
    d = bundle.decoder
    gen = MusicGenerator(bundle, SamplingOptions(seed=1, guidance=2.0), condition=COND, runtime=rt)
    for i in range(3 * d.max_context):
        gen.next_token()
        assert gen.cache.batch == 2 and gen.cache.length == len(gen.context) <= d.max_context
        if i == d.max_context // 2:
            null = gen._ucross
            gen.set_condition(Condition(2.0, 8.0))  # steering keeps the null cross K/V and both rows
            assert gen._ucross is null and gen.cache.batch == 2
    assert gen.n_reprimes >= 2
    # switching guidance on mid-stream catches the null row up to the same context ...
    gen = MusicGenerator(bundle, SamplingOptions(seed=1), condition=COND, runtime=rt)
    gen.generate(20)
    gen.set_sampling(SamplingOptions(seed=1, guidance=2.0))
    gen.next_token()
    assert gen.cache.batch == 2 and gen.cache.length == 21
    null = rt.empty_cache()  # ... with exactly the null branch's own cache
    rt.decode(gen.context, null, rt.cross_kv(None, None))
    one = rt.select_rows(gen.cache, [1])
    if rt.fixed:
        np.testing.assert_allclose(one.buffers["past_key_0"][:, :, :21], null.buffers["past_key_0"][:, :, :21], atol=1e-5)
    else:
        np.testing.assert_allclose(one.past["past_key_0"].numpy(), null.past["past_key_0"].numpy(), atol=1e-5)
    gen.set_sampling(SamplingOptions(seed=1))  # ... and off again: back to one row
    gen.next_token()
    assert gen.cache.batch == 1 and gen.cache.length == 22


@pytest.mark.parametrize("w", [0.0, -1.0, 5.5, float("nan")])
def test_bad_guidance_is_refused(w):
    with pytest.raises(ValueError, match="guidance"):
        SamplingOptions(guidance=w)
