"""The ONNX export computes what the torch model computes (docs/bundle.md graphs).

A small random-init model is exported to tmp_path; over 200 tokens with a steering change
(new condition) at token 100: full-sequence torch logits == cached torch step logits ==
ONNX Runtime cached step logits (max abs diff <= 1e-4, fp32), for the format-1 decoder (growing
past/present) and the format-2 decoder (fixed-capacity buffers + cache_len, new K/V out, rows of
different lengths in one batch). Then the SHIPPED bundle
(assets/models/default, when present) is checked against its manifest and run a few steps."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from engine.paths import DEFAULT_BUNDLE
from engine.music.tokenizer import Tokenizer
from training.export import export_parts, names, sha256
from training.model import ModelConfig, MusicModel

TOL = 1e-4
N, SWITCH = 200, 100


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cfg = ModelConfig(vocab_size=Tokenizer().vocab_size, d_model=64, n_layers=2, n_heads=2, d_ff=128,
                      max_context=256, reprime_keep=128, dropout=0.0, image_tokens=4, image_dim=48)
    torch.manual_seed(0)
    model = MusicModel(cfg).eval()
    folder = tmp_path_factory.mktemp("parts")
    export_parts(model, folder)
    return model, _session(folder / "condition.onnx"), _session(folder / "decoder_step.onnx")


@pytest.fixture(scope="module")
def exported2(exported, tmp_path_factory):
    """The same model's format-2 decoder (fixed-capacity cache)."""
    folder = tmp_path_factory.mktemp("parts2")
    export_parts(exported[0], folder, fmt=2)
    return _session(folder / "decoder_step.onnx")


def _conditions(cfg):
    g = torch.Generator().manual_seed(5)
    a = (torch.tensor([[2.0, 8.0]]), torch.ones(1, 1), torch.randn(1, cfg.image_tokens, cfg.image_dim, generator=g),
         torch.ones(1, 1))
    b = (torch.tensor([[8.5, 1.5]]), torch.ones(1, 1), torch.randn(1, cfg.image_tokens, cfg.image_dim, generator=g),
         torch.zeros(1, 1))  # steering to VA-only
    return a, b


def _ort_cross(sess, cond) -> list[np.ndarray]:
    feed = dict(zip(["va", "use_va", "image_tokens", "use_image"], (c.numpy() for c in cond)))
    return sess.run(None, feed)


def test_full_torch_cached_torch_and_ort_agree_over_200_steps_with_steering(exported):
    model, cond_sess, dec_sess = exported
    cfg = model.cfg
    L = cfg.n_layers
    ids = torch.randint(3, cfg.vocab_size, (1, N), generator=torch.Generator().manual_seed(6))
    ids[0, 0] = Tokenizer().groups.bos
    cond_a, cond_b = _conditions(cfg)

    with torch.no_grad():
        # reference: full sequence under A for the first 100 tokens; the rest as one chunk under B
        # on top of the cache the first 100 left (what steering means)
        ref_a = model(ids[:, :SWITCH], *cond_a)
        _, past_a = model.step(ids[:, :SWITCH], torch.arange(SWITCH)[None], model.empty_past(1),
                               model.cross_kv(*cond_a))
        ref_b, _ = model.step(ids[:, SWITCH:], torch.arange(SWITCH, N)[None], past_a, model.cross_kv(*cond_b))
        unsteered, _ = model.step(ids[:, SWITCH:], torch.arange(SWITCH, N)[None], past_a, model.cross_kv(*cond_a))
        reference = torch.cat([ref_a, ref_b], 1)[0].numpy()

        # cached torch, one token at a time
        torch_steps, past = [], model.empty_past(1)
        cross = model.cross_kv(*cond_a)
        for t in range(N):
            if t == SWITCH:
                cross = model.cross_kv(*cond_b)
            lg, past = model.step(ids[:, t:t + 1], torch.tensor([[t]]), past, cross)
            torch_steps.append(lg[0, 0].numpy())

    # ONNX Runtime, one token at a time, starting from an empty past (P = 0)
    ort_steps = []
    cache = {n: np.zeros((1, cfg.n_heads, 0, cfg.head_dim), np.float32) for n in names(L, "past")}
    cross = _ort_cross(cond_sess, cond_a)
    for t in range(N):
        if t == SWITCH:
            cross_new = _ort_cross(cond_sess, cond_b)
            with torch.no_grad():  # condition.onnx == torch cross K/V
                torch_cross = [x.numpy() for kv in model.cross_kv(*cond_b) for x in kv]
            assert max(np.abs(a - b).max() for a, b in zip(cross_new, torch_cross)) <= TOL
            cross = cross_new
        feed = {"input_ids": ids[:, t:t + 1].numpy(), "positions": np.array([[t]], np.int64), **cache,
                **dict(zip(names(L, "cross"), cross))}
        out = dec_sess.run(None, feed)
        ort_steps.append(out[0][0, 0])
        cache = dict(zip(names(L, "past"), out[1:]))
        assert out[1].shape == (1, cfg.n_heads, t + 1, cfg.head_dim)

    torch_steps, ort_steps = np.stack(torch_steps), np.stack(ort_steps)
    assert np.abs(torch_steps - reference).max() <= TOL
    assert np.abs(ort_steps - reference).max() <= TOL
    assert np.abs(ort_steps - torch_steps).max() <= TOL
    # and steering did change the logits (the test would be empty otherwise)
    assert np.abs(unsteered[0].numpy() - reference[SWITCH:]).max() > 1e-3


def test_ort_prefill_with_several_tokens_matches(exported):
    """T > 1 with P > 0 (what re-priming and prompts use) through ONNX Runtime."""
    model, cond_sess, dec_sess = exported
    cfg = model.cfg
    ids = torch.randint(3, cfg.vocab_size, (1, 40), generator=torch.Generator().manual_seed(7))
    cond_a, _ = _conditions(cfg)
    with torch.no_grad():
        ref = model(ids, *cond_a)[0].numpy()
    cross = dict(zip(names(cfg.n_layers, "cross"), _ort_cross(cond_sess, cond_a)))
    empty = {n: np.zeros((1, cfg.n_heads, 0, cfg.head_dim), np.float32) for n in names(cfg.n_layers, "past")}
    first = dec_sess.run(None, {"input_ids": ids[:, :25].numpy(), "positions": np.arange(25)[None], **empty, **cross})
    past = dict(zip(names(cfg.n_layers, "past"), first[1:]))
    second = dec_sess.run(None, {"input_ids": ids[:, 25:].numpy(), "positions": np.arange(25, 40)[None], **past, **cross})
    got = np.concatenate([first[0][0], second[0][0]])
    assert np.abs(got - ref).max() <= TOL


def _fixed_run(sess, cfg, ids, cache_len, positions, bufs, cross):
    out = sess.run(None, {"input_ids": ids, "positions": positions, "cache_len": cache_len, **bufs, **cross})
    for n, new in zip(names(cfg.n_layers, "past"), out[1:]):
        for b, p in enumerate(cache_len):
            bufs[n][b, :, p:p + ids.shape[1]] = new[b]
    return out[0]


def test_format2_matches_torch_over_200_steps_with_steering(exported, exported2):
    model, cond_sess, _ = exported
    cfg = model.cfg
    ids = torch.randint(3, cfg.vocab_size, (1, N), generator=torch.Generator().manual_seed(6))
    cond_a, cond_b = _conditions(cfg)
    with torch.no_grad():
        ref_a = model(ids[:, :SWITCH], *cond_a)
        _, past_a = model.step(ids[:, :SWITCH], torch.arange(SWITCH)[None], model.empty_past(1), model.cross_kv(*cond_a))
        ref_b, _ = model.step(ids[:, SWITCH:], torch.arange(SWITCH, N)[None], past_a, model.cross_kv(*cond_b))
    reference = torch.cat([ref_a, ref_b], 1)[0].numpy()
    bufs = {n: np.zeros((1, cfg.n_heads, N + 3, cfg.head_dim), np.float32) for n in names(cfg.n_layers, "past")}
    cross = dict(zip(names(cfg.n_layers, "cross"), _ort_cross(cond_sess, cond_a)))
    got = [_fixed_run(exported2, cfg, ids[:, :25].numpy(), np.array([0]), np.arange(25)[None], bufs, cross)[0]]
    for t in range(25, N):  # a prefill of 25, then one token at a time, steering at SWITCH
        if t == SWITCH:
            cross = dict(zip(names(cfg.n_layers, "cross"), _ort_cross(cond_sess, cond_b)))
        got.append(_fixed_run(exported2, cfg, ids[:, t:t + 1].numpy(), np.array([t]), np.array([[t]]), bufs, cross)[0])
    assert np.abs(np.concatenate(got) - reference).max() <= TOL
    assert not bufs["past_key_0"][:, :, N:].any()  # nothing written past the valid length


def test_format2_rows_with_different_lengths_match_torch(exported, exported2):
    model, cond_sess, _ = exported
    cfg = model.cfg
    g = torch.Generator().manual_seed(8)
    seqs = [torch.randint(3, cfg.vocab_size, (1, n), generator=g) for n in (7, 12)]
    cond_a, _ = _conditions(cfg)
    with torch.no_grad():
        refs = [model(s, *cond_a)[0, -1].numpy() for s in seqs]
    cross = dict(zip(names(cfg.n_layers, "cross"), _ort_cross(cond_sess, cond_a)))
    bufs = {n: np.zeros((2, cfg.n_heads, 16, cfg.head_dim), np.float32) for n in names(cfg.n_layers, "past")}
    for b, s in enumerate(seqs):  # each row prefilled alone (a batch-1 view), then one step together
        view = {n: a[b:b + 1] for n, a in bufs.items()}
        _fixed_run(exported2, cfg, s[:, :-1].numpy(), np.array([0]), np.arange(s.shape[1] - 1)[None], view, cross)
    last = np.array([[s[0, -1].item()] for s in seqs])
    lens = np.array([6, 11])
    out = _fixed_run(exported2, cfg, last, lens, lens[:, None], bufs, cross)
    for b in range(2):
        assert np.abs(out[b, 0] - refs[b]).max() <= TOL


# -- the shipped bundle ---------------------------------------------------------------------------
shipped = pytest.mark.skipif(not (DEFAULT_BUNDLE / "manifest.json").is_file(),
                             reason=f"no shipped bundle at {DEFAULT_BUNDLE}")


@shipped
def test_shipped_bundle_matches_its_manifest_and_size_limit():
    manifest = json.loads((DEFAULT_BUNDLE / "manifest.json").read_text())
    assert manifest["format"] == "moodroll-manifest/1"
    files = {p.name for p in DEFAULT_BUNDLE.iterdir() if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == files
    for name, digest in manifest["files"].items():
        assert sha256(DEFAULT_BUNDLE / name) == digest, name
    total = sum((DEFAULT_BUNDLE / n).stat().st_size for n in files)
    assert total <= 40e6
    cfg = json.loads((DEFAULT_BUNDLE / "config.json").read_text())
    assert cfg["format"] == "moodroll-bundle/2" and cfg["decoder"]["cache"] == "fixed"  # the product decodes in place
    assert cfg["decoder"]["vocab_size"] == Tokenizer.load(DEFAULT_BUNDLE / "tokenizer.json").vocab_size


@shipped
def test_shipped_bundle_runs_a_picture_to_tokens(data_dir):
    """Picture -> image tokens (== the torch encoder) + VA -> cross K/V -> 16 greedy steps."""
    from engine.picture.image import load_image, preprocess
    from training.encoders import build_encoder

    cfg = json.loads((DEFAULT_BUNDLE / "config.json").read_text())
    ie, dec = cfg["image_encoder"], cfg["decoder"]
    rgb = load_image(data_dir / "oasis" / "images" / "I2.jpg")
    x = preprocess(rgb, ie["size"], ie["mean"], ie["std"])[None]
    tokens, va = _session(DEFAULT_BUNDLE / ie["file"]).run(None, {"image": x})
    assert tokens.shape == (1, ie["image_tokens"], ie["dim"])
    assert va.shape == (1, 2) and np.all((va >= 1) & (va <= 9))
    enc = build_encoder(ie["encoder"], pretrained=True)
    with torch.no_grad():
        assert np.abs(enc(torch.from_numpy(x)).numpy() - tokens).max() <= 1e-3

    cross = _session(DEFAULT_BUNDLE / cfg["condition"]["file"]).run(
        None, {"va": va, "use_va": np.ones((1, 1), np.float32), "image_tokens": tokens,
               "use_image": np.ones((1, 1), np.float32)})
    L, H, Dh = dec["n_layers"], dec["n_heads"], dec["head_dim"]
    sess = _session(DEFAULT_BUNDLE / dec["file"])
    cache = {n: np.zeros((1, H, 16, Dh), np.float32) for n in names(L, "past")}  # format 2: fixed capacity 16
    tok, out_ids = cfg["special_tokens"]["bos"], []
    for t in range(16):
        out = sess.run(None, {"input_ids": np.array([[tok]], np.int64), "positions": np.array([[t]], np.int64),
                              "cache_len": np.array([t], np.int64), **cache, **dict(zip(names(L, "cross"), cross))})
        logits = out[0][0, -1]
        assert logits.shape == (dec["vocab_size"],) and np.isfinite(logits).all()
        for name, new in zip(names(L, "past"), out[1:]):  # the new entry goes in at slot t
            cache[name][:, :, t:t + 1] = new
        tok = int(np.argmax(logits))
        out_ids.append(tok)
    assert Tokenizer().groups.bar in out_ids  # a trained model opens with a bar
