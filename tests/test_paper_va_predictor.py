"""The music VA predictor (training/va_predictor.py): committed weights, API, gradients."""
import numpy as np
import pytest
import torch

from engine.music.tokenizer import Tokenizer
from training.va_head import pearson
from training.va_predictor import DEFAULT_WEIGHTS, expected_histogram, load_music_va_predictor


@pytest.fixture(scope="module")
def pred():
    return load_music_va_predictor()


def test_committed_weights_load_and_predict_in_range(pred):
    assert DEFAULT_WEIGHTS.is_file()
    tok = Tokenizer()
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, tok.vocab_size, 300) for _ in range(3)] + [np.array([], np.int64)]
    out = pred.predict(seqs)
    assert out.shape == (4, 2) and np.isfinite(out).all()
    assert (out >= 1).all() and (out <= 9).all()
    assert pred.predict([]).shape == (0, 2)


def test_bad_token_ids_give_one_clear_error(pred):
    with pytest.raises(ValueError, match="token ids"):
        pred.predict([np.array([0, 1, 10_000])])


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load_music_va_predictor(tmp_path / "nope.safetensors")


def test_differentiable_path_matches_hard_path_and_has_gradients(pred):
    tok = Tokenizer()
    rng = np.random.default_rng(1)
    ids = rng.integers(3, tok.vocab_size, 200)
    onehot = torch.nn.functional.one_hot(torch.from_numpy(ids), tok.vocab_size).float()[None]
    soft = expected_histogram(onehot)  # one-hot "probabilities" = the hard histogram
    assert np.allclose(pred.forward_histogram(soft).numpy(), pred.predict([ids]), atol=1e-4)
    logits = torch.randn(2, 50, tok.vocab_size, requires_grad=True)
    va = pred.forward_histogram(expected_histogram(logits.softmax(-1)))
    va.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_predicts_eimg_arousal(pred, data_dir):
    """On 60 held-out EIMG clips (split_eimg test split) arousal must correlate clearly."""
    from training import data
    s = data.split_eimg(data.load_eimg(data_dir), seed=0)
    seqs, rep = data.read_tokens(s.test[:60], Tokenizer())
    va = np.array([[r.valence, r.arousal] for r in rep.kept])
    out = pred.predict(seqs)
    assert pearson(out[:, 1], va[:, 1]) > 0.6
    assert pearson(out[:, 0], va[:, 0]) > 0.3
