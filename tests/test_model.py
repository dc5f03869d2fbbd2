"""The music model (training/model.py) on small random weights: the KV cache is exact, the
condition memory behaves (nulls, steering), endless streams re-prime with bounded positions,
and the image-encoder plug-ins give the documented shapes."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from engine.model.sampling import SamplingOptions
from engine.music.tokenizer import Tokenizer
from training.generate import TorchStream
from training.model import ModelConfig, MusicModel

CFG = ModelConfig(vocab_size=342, d_model=64, n_layers=2, n_heads=4, d_ff=128, max_context=64,
                  reprime_keep=32, dropout=0.0, image_tokens=4, image_dim=32)
CFG_STREAM = ModelConfig(vocab_size=342, d_model=32, n_layers=2, n_heads=2, d_ff=64, max_context=24,
                         reprime_keep=12, dropout=0.0, image_tokens=4, image_dim=32)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MusicModel(CFG).eval()


def _cond(model, seed=0, va=(7.0, 3.0)):
    g = torch.Generator().manual_seed(seed)
    return (torch.tensor([va]), torch.ones(1, 1), torch.randn(1, CFG.image_tokens, CFG.image_dim, generator=g),
            torch.ones(1, 1))


@torch.no_grad()
def test_cached_steps_equal_full_sequence(model):
    ids = torch.randint(3, CFG.vocab_size, (1, 50), generator=torch.Generator().manual_seed(1))
    cond = _cond(model)
    full = model(ids, *cond)
    cross, past, steps = model.cross_kv(*cond), model.empty_past(1), []
    for t in range(ids.shape[1]):
        lg, past = model.step(ids[:, t:t + 1], torch.tensor([[t]]), past, cross)
        steps.append(lg)
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)
    assert past[0][0].shape == (1, CFG.n_heads, 50, CFG.head_dim)
    # a chunked prefill (T > 1 with P > 0) equals it too
    lg1, past = model.step(ids[:, :20], torch.arange(20)[None], model.empty_past(1), cross)
    lg2, _ = model.step(ids[:, 20:], torch.arange(20, 50)[None], past, cross)
    assert torch.allclose(torch.cat([lg1, lg2], 1), full, atol=1e-5)


@torch.no_grad()
def test_attention_depends_on_position_differences_only(model):
    """Rotated keys: shifting every position by the same offset leaves the logits unchanged."""
    ids = torch.randint(3, CFG.vocab_size, (1, 30), generator=torch.Generator().manual_seed(2))
    cross = model.cross_kv(*_cond(model))
    a, _ = model.step(ids, torch.arange(30)[None], model.empty_past(1), cross)
    b, _ = model.step(ids, torch.arange(500, 530)[None], model.empty_past(1), cross)
    assert torch.allclose(a, b, atol=1e-4)


@torch.no_grad()
def test_switched_off_condition_parts_are_ignored(model):
    ids = torch.randint(3, CFG.vocab_size, (1, 12), generator=torch.Generator().manual_seed(3))
    va1, _, img1, _ = _cond(model, seed=1, va=(2.0, 8.0))
    va2, _, img2, _ = _cond(model, seed=2, va=(8.0, 2.0))
    on, off = torch.ones(1, 1), torch.zeros(1, 1)
    # VA off: the VA value does not matter; image off: the image does not matter
    assert torch.allclose(model(ids, va1, off, img1, on), model(ids, va2, off, img1, on), atol=1e-6)
    assert torch.allclose(model(ids, va1, on, img1, off), model(ids, va1, on, img2, off), atol=1e-6)
    # switched on, they do
    assert not torch.allclose(model(ids, va1, on, img1, off), model(ids, va2, on, img1, off), atol=1e-4)
    assert not torch.allclose(model(ids, va1, off, img1, on), model(ids, va1, off, img2, on), atol=1e-4)
    # memory length is fixed whatever is switched off
    k, _ = model.cross_kv(va1, off, img1, off)[0]
    assert k.shape == (1, CFG.n_heads, CFG.memory_len, CFG.head_dim)


@torch.no_grad()
def test_steering_changes_only_the_cross_attention(model):
    """After a new condition the cache continues: the next logits equal a run whose cache was
    built under the old condition and whose last step uses the new one."""
    ids = torch.randint(3, CFG.vocab_size, (1, 20), generator=torch.Generator().manual_seed(4))
    old, new = model.cross_kv(*_cond(model, 1, (2.0, 2.0))), model.cross_kv(*_cond(model, 2, (8.0, 8.0)))
    _, past = model.step(ids[:, :19], torch.arange(19)[None], model.empty_past(1), old)
    steered, _ = model.step(ids[:, 19:], torch.tensor([[19]]), past, new)
    unsteered, _ = model.step(ids[:, 19:], torch.tensor([[19]]), past, old)
    assert not torch.allclose(steered, unsteered, atol=1e-4)
    # the cache itself is the same object content: steering did not touch it
    _, past2 = model.step(ids[:, :19], torch.arange(19)[None], model.empty_past(1), old)
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(past, past2))


def test_endless_stream_reprimes_with_bounded_positions():
    """A stream 24x longer than max_context, steered twice: no error, positions never reach
    max_context, the cache never exceeds it, tokens stay valid, re-priming happened."""
    g = Tokenizer().groups
    torch.manual_seed(0)
    model = MusicModel(CFG_STREAM).eval()
    CFG = CFG_STREAM  # noqa: N806
    s = TorchStream(model, bos=g.bos, bar=g.bar, sampling=SamplingOptions(temperature=1.0, top_p=0.95, seed=0),
                    banned=(g.pad, g.bos, g.eos))
    out = []
    for i in range(3):
        s.set_condition(*_cond(model, i, (2.0 + 3 * i, 8.0 - 3 * i)))
        for _ in range(CFG.max_context * 8):
            out.append(s.next_token())
            assert s.cache_length() <= CFG.max_context
    assert len(out) == 24 * CFG.max_context
    assert s.max_position < CFG.max_context
    assert s.n_reprimes >= len(out) // CFG.max_context  # at least one per max_context tokens
    assert all(3 <= t < CFG.vocab_size for t in out)
    # the re-primed context starts with BOS, then a Bar when one was in the kept window
    assert s.context[0] == g.bos
    assert len(set(out)) > 50  # a random model over 342 tokens: not stuck on one token


def test_reprime_keeps_bos_and_starts_at_a_bar(model):
    g = Tokenizer().groups
    s = TorchStream(model, bos=g.bos, bar=g.bar)
    s.context = [g.bos] + [10] * 40 + [g.bar] + [11] * 20 + [g.bar] + [12] * 5
    s.pending = 13
    ids = s.reprime_ids()
    assert ids[0] == g.bos and ids[1] == g.bar and ids[-1] == 13
    assert len(ids) - 1 <= CFG.reprime_keep


@pytest.mark.parametrize("name,size,dim", [("vgg16", 224, 512), ("inception_v3", 299, 2048)])
def test_torchvision_encoders_without_weights(name, size, dim):
    from training.encoders import build_encoder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = build_encoder(name, pretrained=False)
    assert (enc.size, enc.dim, enc.image_tokens, enc.pretrained) == (size, dim, 4, False)
    with torch.no_grad():
        out = enc(torch.randn(1, 3, size, size))
    assert out.shape == (1, 4, dim) and torch.isfinite(out).all()
    assert not any(p.requires_grad for p in enc.parameters())


def test_efficientnet_lite0_imagenet_weights_recognise_a_picture(data_dir):
    """The package's weights, renamed onto timm's keys, classify OASIS's acorns as acorns."""
    import timm

    from engine.picture.image import load_image, preprocess
    from training.encoders import _lite0_state_dict

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    net.load_state_dict(_lite0_state_dict(net.state_dict()))
    x = torch.from_numpy(preprocess(load_image(data_dir / "oasis" / "images" / "I2.jpg")))[None]
    with torch.no_grad():
        probs = net(x).softmax(-1)[0]
    assert int(probs.argmax()) == 988  # ImageNet class 988: acorn
    assert float(probs.max()) > 0.5


def test_unknown_encoder_is_one_clear_error():
    from training.encoders import build_encoder
    with pytest.raises(ValueError, match="unknown image encoder 'resnet'"):
        build_encoder("resnet")
