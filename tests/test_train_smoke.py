"""training/train.py end to end on a tiny config and the real data: pre-train a few steps,
resume, fine-tune on image<->music pairs, and the checkpoint carries its configs."""
from __future__ import annotations

import json
from dataclasses import replace

import torch

from training.train import TrainConfig, checkpoint_metadata, load_checkpoint, train

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


def test_bad_config_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "max_stepz": 3}))
    try:
        TrainConfig.from_json(bad)
    except ValueError as e:
        assert "max_stepz" in str(e)
    else:
        raise AssertionError("an unknown field must be refused")
