"""training.from_bundle rebuilds the torch model from a bundle's ONNX graphs exactly:
full-sequence torch logits == ONNX Runtime cached-step logits (max |diff| <= 1e-4) over 130
steps, with a picture + VA condition and a VA-only one, for the shipped default bundle and for
a random bundle written by the exporter; the rebuilt checkpoint loads in training.train."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.model.bundle import load_bundle
from engine.paths import DEFAULT_BUNDLE
from engine.model.runtime import Runtime
from training.from_bundle import main as from_bundle_main
from training.from_bundle import model_from_bundle

TOL = 1e-4
STEPS = 130


def _max_diff(folder) -> float:
    torch.set_num_threads(1)
    model = model_from_bundle(folder)
    bundle = load_bundle(folder)
    rt = Runtime(bundle, device="cpu", threads=1)
    rng = np.random.default_rng(0)
    c = bundle.image_encoder
    img = rng.standard_normal((c.image_tokens, c.dim)).astype(np.float32)
    ids = rng.integers(3, bundle.decoder.vocab_size, STEPS)
    ids[0] = bundle.bos
    worst = 0.0
    for va, image in (((2.0, 8.0), img), ((7.0, 3.0), None)):
        cross, cache = rt.cross_kv(va, image), rt.empty_cache()
        use_img = torch.ones(1, 1) if image is not None else torch.zeros(1, 1)
        with torch.no_grad():
            ref = model(torch.from_numpy(ids)[None], torch.tensor([va]), torch.ones(1, 1),
                        torch.from_numpy(img)[None], use_img)[0].numpy()
        for t in range(STEPS):
            worst = max(worst, float(np.abs(rt.decode([ids[t]], cache, cross)[0] - ref[t]).max()))
    return worst


def test_random_bundle_round_trips(random_bundle):
    assert _max_diff(random_bundle) <= TOL


@pytest.mark.skipif(not (DEFAULT_BUNDLE / "manifest.json").is_file(), reason="no shipped bundle")
def test_shipped_bundle_round_trips():
    assert _max_diff(DEFAULT_BUNDLE) <= TOL


def test_checkpoint_loads_in_training(random_bundle, tmp_path):
    from training.train import load_checkpoint
    out = tmp_path / "ck" / "model.safetensors"
    from_bundle_main(["--bundle", str(random_bundle), "--out", str(out)])
    model, meta = load_checkpoint(out)
    ref = model_from_bundle(random_bundle)
    assert meta["step"] == 0 and meta["model_config"]["d_model"] == ref.cfg.d_model
    for (k, a), (_, b) in zip(model.state_dict().items(), ref.state_dict().items()):
        assert torch.equal(a, b), k
