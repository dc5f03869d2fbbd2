"""Publish a run's current weights as one half-precision file:
``python -m training.publish runs/large_pretrain --out assets/models/checkpoints/large_pretrain.safetensors``.

The file is replaced each time (one file per run, so the repository stays small) and carries the
run's train and model configs, its step and its loss history as metadata. A later run, in a
checkout that has no ``runs/``, continues from it:
``python -m training.train --config training/configs/large_pretrain.json --resume FILE``.
Optimizer moments are not kept (they would triple the size): the resumed run re-warms its learning rate.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from safetensors.torch import save_file

from training.train import checkpoint_metadata


def publish(run_dir: str | Path, out: str | Path) -> Path:
    run_dir, out = Path(run_dir), Path(out)
    src = run_dir / "model.safetensors"
    meta = checkpoint_metadata(src)
    from safetensors.torch import load_file
    weights = {k: v.to(torch.float16).contiguous() for k, v in load_file(str(src)).items()}
    log = run_dir / "log.json"
    meta = dict(meta, history=log.read_text() if log.is_file() else json.dumps({"train": [], "val": {}}),
                precision="float16")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    save_file(weights, str(tmp), metadata=meta)
    os.replace(tmp, out)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", help="a training run's out_dir (holds model.safetensors)")
    ap.add_argument("--out", required=True, help="the published file (replaced)")
    args = ap.parse_args(argv)
    path = publish(args.run_dir, args.out)
    meta = checkpoint_metadata(path)
    print(f"{path}: step {meta['step']}, {path.stat().st_size / 1e6:.1f} MB (float16)")


if __name__ == "__main__":
    main()
