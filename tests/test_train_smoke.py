"""training/train.py end to end on a tiny config and the real data: pre-train a few steps,
resume, fine-tune on image<->music pairs, and the checkpoint carries its configs."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import torch

from training.model import MusicModel
from training.train import Item, TrainConfig, Windows, checkpoint_metadata, load_checkpoint, loss_fn, train
from training.va_predictor import load_music_va_predictor

TINY = TrainConfig.from_json("training/configs/tiny.json")


def test_pretrain_resume_and_finetune(data_dir, tmp_path):
    pre = replace(TINY, out_dir=str(tmp_path / "pre"), max_steps=4, eval_every=4, ckpt_every=2)
    ckpt = train(pre)
    meta = checkpoint_metadata(ckpt)
    assert meta["step"] == "4"
    assert json.loads(meta["train_config"])["max_steps"] == 4
    assert (tmp_path / "pre" / "loss.png").stat().st_size > 1000
    hist = json.loads((tmp_path / "pre" / "log.json").read_text())
    assert [s for s, _ in hist["train"]] == [2, 4]
    assert set(hist["val"]) == {"pop909", "eimg"}
    first = load_checkpoint(ckpt)[0].state_dict()

    # resuming continues at step 4 (same command, more steps)
    train(replace(pre, max_steps=6))
    model, meta = load_checkpoint(ckpt)
    assert meta["step"] == 6
    assert [s for s, _ in json.loads((tmp_path / "pre" / "log.json").read_text())["train"]] == [2, 4, 6]
    assert any(not torch.equal(first[k], v) for k, v in model.state_dict().items())

    # fine-tune from it on EIMG clips paired with OASIS pictures (image tokens from the cache)
    ft = replace(TINY, stage="finetune", init_from=str(ckpt), out_dir=str(tmp_path / "ft"), max_steps=2,
                 max_files=3, eval_every=2, ckpt_every=2)
    model, meta = load_checkpoint(train(ft))
    assert meta["train_config"]["stage"] == "finetune" and meta["step"] == 2
    losses = json.loads((tmp_path / "ft" / "log.json").read_text())["val"]["eimg"]
    assert all(0 < v < 10 for _, v in losses)

    # ... and with the differentiable VA loss: its curve is logged beside the cross-entropy
    va = replace(ft, out_dir=str(tmp_path / "va"), va_loss_weight=0.5, finetune_pop909=0.0)
    model, meta = load_checkpoint(train(va))
    assert meta["train_config"]["va_loss_weight"] == 0.5
    hist = json.loads((tmp_path / "va" / "log.json").read_text())
    assert [s for s, _ in hist["train_va"]] == [2] and 0 < hist["train_va"][0][1] < 8


def test_stop_at_publish_and_resume_in_a_fresh_checkout(data_dir, tmp_path):
    """A long schedule runs in several resumed invocations: stop_at ends an invocation early, the published
    half-precision file carries step and history, and --resume continues from it with no runs/."""
    from safetensors.torch import load_file

    from training.publish import publish
    run = replace(TINY, out_dir=str(tmp_path / "run"), max_steps=8, stop_at=2, eval_every=2, ckpt_every=2)
    train(run)
    assert checkpoint_metadata(tmp_path / "run" / "model.safetensors")["step"] == "2"
    pub = publish(tmp_path / "run", tmp_path / "pub" / "w.safetensors")
    assert {v.dtype for v in load_file(str(pub)).values()} == {torch.float16}
    assert json.loads(checkpoint_metadata(pub)["history"])["train"][-1][0] == 2
    from training.size_curves import load_run, table
    assert "| a | " in table({"a": load_run(pub), "b": load_run(tmp_path / "run")})

    fresh = replace(run, out_dir=str(tmp_path / "fresh"), stop_at=4)
    model, meta = load_checkpoint(train(fresh, resume=pub))
    assert meta["step"] == 4
    assert [s for s, _ in json.loads((tmp_path / "fresh" / "log.json").read_text())["train"]] == [2, 4]


def test_bad_config_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "max_stepz": 3}))
    try:
        TrainConfig.from_json(bad)
    except ValueError as e:
        assert "max_stepz" in str(e)
    else:
        raise AssertionError("an unknown field must be refused")


def _va_batch(tok_items=6, target=(8.5, 8.5)):
    """Random windows labelled ``target``, conditioned on that VA (no dropout)."""
    mcfg = TINY.model_config
    mcfg = replace(mcfg, vocab_size=load_music_va_predictor().cfg.vocab_size)
    from engine.music.tokenizer import Tokenizer
    tok = Tokenizer()
    win = Windows(TINY, mcfg, tok)
    rng = np.random.default_rng(0)
    g = tok.groups
    body = [g.bar] + [i for p in list(g.pitch)[30:40] for i in (p, list(g.velocity)[5], list(g.duration)[3])]
    items = [Item(ids=np.array(body * 4), bars=np.array([0]), va=target) for _ in range(tok_items)]
    x = torch.from_numpy(np.stack([win.window(it, rng, start=0, augment=False) for it in items]))
    return mcfg, win, x, win.condition(items, None), Windows.labels(items)


def test_va_loss_is_off_by_default_and_skips_unconditioned_windows():
    mcfg, win, x, cond, labels = _va_batch()
    torch.manual_seed(0)
    model = MusicModel(mcfg)
    pred = load_music_va_predictor()
    off = loss_fn(model, x, cond, win.g.pad, labels, pred, 0.0)
    assert off["va"] is None and torch.equal(off["loss"], off["ce"])
    on = loss_fn(model, x, cond, win.g.pad, labels, pred, 0.5)
    assert on["va"] is not None and torch.allclose(on["loss"], on["ce"] + 0.5 * on["va"])
    va, use_va, img, use_img = cond
    dropped = (va, torch.zeros_like(use_va), img, torch.zeros_like(use_img))  # condition dropout took all
    assert loss_fn(model, x, dropped, win.g.pad, labels, pred, 0.5)["va"] is None


def test_va_loss_gradient_moves_the_music_towards_the_target():
    """A few steps on the VA loss alone move the predictor's reading of the model's expected
    music towards the labelled VA: the gradient reaches the logits through the histogram."""
    mcfg, win, x, cond, labels = _va_batch(target=(8.5, 8.5))
    torch.manual_seed(0)
    model = MusicModel(mcfg)
    pred = load_music_va_predictor()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(15):
        va = loss_fn(model, x, cond, win.g.pad, labels, pred, 1.0)["va"]
        first = va.item() if first is None else first
        opt.zero_grad()
        va.backward()
        opt.step()
    assert va.item() < 0.8 * first
