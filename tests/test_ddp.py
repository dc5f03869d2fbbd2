"""Several processes: torchrun with 2 CPU processes (gloo) trains a tiny model a few steps."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from training.train import checkpoint_metadata

ROOT = Path(__file__).resolve().parent.parent


def test_torchrun_two_processes_gloo(data_dir, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "training.train", "--config", "training/configs/tiny.json",
           "--set", f"out_dir={out}", "max_steps=3", "eval_every=3", "ckpt_every=3", "max_files=3"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "world size 2" in r.stdout
    assert checkpoint_metadata(out / "model.safetensors")["step"] == "3"
