"""The paper reproduction (training/paper/): models, losses, resumable training, the smoke run."""
import json
import math

import numpy as np
import pytest
import torch

from engine.paths import EXAMPLES
from engine.music.tokenizer import Tokenizer
from training.paper.baseline import BaselineConfig, ShowAndListen
from training.paper.loop import Example, PaperData, RunConfig, train_run
from training.paper.losses import paper_va_loss, soft_va_loss
from training.paper.models import PaperModel, PaperModelConfig, prefix_mean
from training.va_predictor import load_music_va_predictor


@pytest.fixture(scope="module")
def tok():
    return Tokenizer()


@pytest.fixture(scope="module")
def predictor():
    return load_music_va_predictor()


def _tiny_models(V):
    torch.manual_seed(0)
    return [PaperModel(PaperModelConfig(V, 7, d_model=32, d_ff=64, max_len=64)),
            PaperModel(PaperModelConfig(V, 7, n_enc=4, n_dec=0, d_model=32, d_ff=64, max_len=64)),
            ShowAndListen(BaselineConfig(V, 7, embed=16, lstm1=8, lstm2=16, dense=16, max_len=64))]


@pytest.mark.parametrize("which", [0, 1, 2])
def test_incremental_step_equals_full_forward(which):
    m = _tiny_models(50)[which].eval()
    ids, img = torch.randint(1, 50, (3, 20)), torch.randn(3, 7)
    full = m(img, ids)
    state, steps = None, []
    for t in range(20):
        lg, state = m.step(img, ids[:, t], t, state)
        steps.append(lg)
    assert torch.allclose(torch.stack(steps, 1), full, atol=1e-5)


def test_prediction_at_t_ignores_later_tokens():
    m = _tiny_models(50)[0].eval()
    ids, img = torch.randint(1, 50, (1, 16)), torch.randn(1, 7)
    changed = ids.clone()
    changed[0, 10:] = (changed[0, 10:] + 1) % 49 + 1
    assert torch.allclose(m(img, ids)[:, :10], m(img, changed)[:, :10], atol=1e-6)


def test_prefix_mean_is_the_global_average_of_each_prefix():
    x = torch.randn(2, 5, 3)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    out = prefix_mean(x, mask)
    assert torch.allclose(out[0, 3], x[0, :4].mean(0))
    assert torch.allclose(out[1, 4], x[1, :3].mean(0))


def test_too_long_sequence_is_one_clear_error():
    m = _tiny_models(50)[0]
    with pytest.raises(ValueError, match="max_len"):
        m(torch.randn(1, 7), torch.randint(1, 50, (1, 65)))


def test_paper_va_loss_is_finite_and_has_no_gradient_soft_loss_has(tok, predictor):
    V = tok.vocab_size
    clip = np.array([tok.groups.bos] + tok.encode(EXAMPLES / "example.mid")[:60])
    ids = torch.from_numpy(clip)[None]
    logits = torch.randn(1, ids.shape[1], V, requires_grad=True)
    target = torch.tensor([[6.0, 4.0]])
    hard = paper_va_loss(logits, ids, target, predictor, tok, tok.groups.pad)
    assert torch.isfinite(hard) and not hard.requires_grad
    soft = soft_va_loss(logits, ids, target, predictor, tok.groups.pad)
    soft.backward()
    assert logits.grad.abs().sum() > 0


def _synthetic_data(tok, n=6, T=24, seed=0):
    rng = np.random.default_rng(seed)
    feats, exs = {}, []
    for i in range(n):
        feats[f"img{i}"] = torch.from_numpy(rng.normal(size=5).astype(np.float32))
        ids = np.concatenate([[tok.groups.bos], rng.integers(3, tok.vocab_size, T - 1)])
        exs.append(Example(ids.astype(np.int64), f"img{i}", rng.uniform(1, 9, 2).astype(np.float32),
                           rng.uniform(1, 9, 2).astype(np.float32)))
    return PaperData(exs[:4], exs[4:], []), feats


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_paper_va_loss_leaves_training_bit_identical(tok, predictor, tmp_path):
    """The arg-max VA loss passes no gradient: same seed -> the very same weights."""
    data, feats = _synthetic_data(tok)
    kw = dict(epochs=1, batch_size=2, max_len=32, d_model=16, lr=1e-3)
    a, ha = train_run(RunConfig("none", **kw), data, feats, tmp_path / "a", tok, predictor, log=lambda m: None,
                      progress=False)
    b, hb = train_run(RunConfig("paper", va_loss="paper", **kw), data, feats, tmp_path / "b", tok, predictor,
                      log=lambda m: None, progress=False)
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert hb[0]["train_va"] is not None and hb[0]["train_loss"] != ha[0]["train_loss"]
    c, _ = train_run(RunConfig("soft", va_loss="soft", lambda_va=1.0, **kw), data, feats, tmp_path / "c", tok,
                     predictor, log=lambda m: None, progress=False)
    assert any(not torch.equal(wa[k], v) for k, v in _weights(c).items())


def test_resume_reproduces_the_uninterrupted_run(tok, tmp_path):
    data, feats = _synthetic_data(tok)
    kw = dict(batch_size=2, max_len=32, d_model=16, lr=1e-3)
    full, _ = train_run(RunConfig("r", epochs=2, **kw), data, feats, tmp_path / "full", tok, log=lambda m: None,
                        progress=False)
    train_run(RunConfig("r", epochs=1, **kw), data, feats, tmp_path / "part", tok, log=lambda m: None,
              progress=False)
    resumed, hist = train_run(RunConfig("r", epochs=2, **kw), data, feats, tmp_path / "part", tok,
                              log=lambda m: None, progress=False)
    assert [h["epoch"] for h in hist] == [1, 2]
    wf, wr = _weights(full), _weights(resumed)
    assert all(torch.allclose(wf[k], wr[k]) for k in wf)


def test_smoke_reproduction_writes_the_report(data_dir, tmp_path):
    from training.paper.reproduce import main

    report = tmp_path / "docs" / "reproduction.md"
    assert main(["--smoke", "--out", str(tmp_path / "runs"), "--report", str(report),
                 "--data", str(data_dir)]) == 0
    text = report.read_text()
    for heading in ("Table 1", "Table 2", "Figure 3", "VA predictor", "Emotional alignment", "Cost of the VA loss"):
        assert heading in text
    assert (tmp_path / "docs" / "figures" / "fig3_loss.png").stat().st_size > 1000
    rows = sorted((tmp_path / "runs").glob("*/result.json"))
    assert len(rows) == 14
    for f in rows:
        r = json.loads(f.read_text())
        for h in r["history"]:
            assert math.isfinite(h["train_loss"]) and math.isfinite(h["test_cc"])
        al = r["sampled"]["alignment"]
        assert math.isfinite(al["valence_mae"]) and math.isfinite(al["arousal_mae"])
        assert r["encoder"]["name"] in ("efficientnet_lite0", "vgg16_paperhead", "inception_v3")
        assert 0.0 <= r["sampled"]["grammar"]["pitch_token_share"] <= 1.0
