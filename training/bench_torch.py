"""PyTorch decoding baselines for ``moodroll bench`` (run as a subprocess by tools/bench/run.py).

Builds :class:`training.model.MusicModel` with the bundle's shapes (random weights: speed does
not depend on the values) and measures tokens per second after a context of C tokens:

* ``torch_kv``: eager :meth:`MusicModel.step` on one new token with a KV cache of C entries
  (best of 3 runs of ``--steps`` steps, like the ONNX Runtime number);
* ``torch_rerun``: the whole prefix of C + 1 tokens run again for every new token, the way the
  paper's generator (and any cache-less sampler) works.

Prints one JSON line: ``{"torch": version, "torch_kv": {"256": ...}, "torch_rerun": {...}}``.

    python -m training.bench_torch --bundle assets/models/default --contexts 256 1024

``--serve``: the interleaved bench's worker. It prints one JSON line of facts (version, threads,
d_ff, params), then answers every stdin line ``{"path": "torch_kv" | "torch_rerun", "context": C,
"steps": N}`` with ``{"tokens_per_s": x}`` from ONE timed block, so tools/bench/run.py can
alternate torch rounds with ONNX Runtime rounds (A B A B) in one process each.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from engine.model.bundle import load_bundle
from training.model import ModelConfig, MusicModel


def feed_forward_width(bundle) -> int:
    """d_ff: from config.json if given, else the first ``ff.0.bias`` in the decoder graph."""
    if "d_ff" in bundle.config["decoder"]:
        return int(bundle.config["decoder"]["d_ff"])
    import onnx

    graph = onnx.load(str(bundle.file(bundle.decoder.file)), load_external_data=False).graph
    for init in graph.initializer:
        if init.name.endswith("ff.0.bias"):
            return int(init.dims[0])
    return 4 * bundle.decoder.d_model


def model_for(bundle) -> MusicModel:
    d, c = bundle.decoder, bundle.image_encoder
    cfg = ModelConfig(vocab_size=d.vocab_size, d_model=d.d_model, n_layers=d.n_layers, n_heads=d.n_heads,
                      d_ff=feed_forward_width(bundle),
                      max_context=d.max_context, reprime_keep=d.reprime_keep, rope_base=d.rope_base,
                      dropout=0.0, image_tokens=c.image_tokens, image_dim=c.dim)
    return MusicModel(cfg).eval()


@torch.inference_mode()
def rates(model: MusicModel, context: int, steps: int) -> tuple[float, float]:
    cfg = model.cfg
    g = torch.Generator().manual_seed(0)
    cond = (torch.full((1, 2), 5.0), torch.ones(1, 1), torch.zeros(1, cfg.image_tokens, cfg.image_dim), torch.zeros(1, 1))
    cross = model.cross_kv(*cond)
    ids = torch.randint(4, cfg.vocab_size, (1, context + 1), generator=g)
    _, past = model.step(ids[:, :context], torch.arange(context)[None], model.empty_past(), cross)
    new, pos = ids[:, context:], torch.tensor([[context]])
    model.step(new, pos, past, cross)  # warm up
    kv = 0.0
    for _ in range(3):  # best of 3, as tools/bench/run.py does for ONNX Runtime
        t = time.perf_counter()
        for _ in range(steps):
            model.step(new, pos, past, cross)
        kv = max(kv, steps / (time.perf_counter() - t))
    model(ids, *cond)
    n = max(3, steps // 10)
    t = time.perf_counter()
    for _ in range(n):
        model(ids, *cond)  # every token: the whole prefix again
    rerun = n / (time.perf_counter() - t)
    return kv, rerun


class Rounds:
    """One timed block per call, for each (path, context); the prefix is prepared once per context."""

    def __init__(self, model: MusicModel):
        self.model, self._ready = model, {}

    @torch.inference_mode()
    def _prepare(self, context: int):
        if context not in self._ready:
            m, cfg = self.model, self.model.cfg
            g = torch.Generator().manual_seed(0)
            cond = (torch.full((1, 2), 5.0), torch.ones(1, 1), torch.zeros(1, cfg.image_tokens, cfg.image_dim),
                    torch.zeros(1, 1))
            cross = m.cross_kv(*cond)
            ids = torch.randint(4, cfg.vocab_size, (1, context + 1), generator=g)
            _, past = m.step(ids[:, :context], torch.arange(context)[None], m.empty_past(), cross)
            new, pos = ids[:, context:], torch.tensor([[context]])
            m.step(new, pos, past, cross)  # warm up both paths once
            m(ids, *cond)
            self._ready[context] = (cond, cross, ids, past, new, pos)
        return self._ready[context]

    @torch.inference_mode()
    def rate(self, path: str, context: int, steps: int) -> float:
        cond, cross, ids, past, new, pos = self._prepare(context)
        t = time.perf_counter()
        if path == "torch_kv":
            for _ in range(steps):
                self.model.step(new, pos, past, cross)
        elif path == "torch_rerun":
            for _ in range(steps):
                self.model(ids, *cond)
        else:
            raise ValueError(f"unknown path {path!r}")
        return steps / (time.perf_counter() - t)


def serve(model: MusicModel) -> None:
    """Answer {"path", "context", "steps"} lines on stdin with {"tokens_per_s"} lines until EOF."""
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "d_ff": model.cfg.d_ff,
                      "params": model.num_params()}), flush=True)
    rounds = Rounds(model)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            q = json.loads(line)
            answer = {"tokens_per_s": rounds.rate(q["path"], int(q["context"]), int(q["steps"]))}
        except (ValueError, KeyError, TypeError) as e:
            answer = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(answer), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", default=None)
    p.add_argument("--contexts", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--serve", action="store_true", help="answer timing requests on stdin (the interleaved bench)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = model_for(load_bundle(args.bundle))
    if args.serve:
        serve(model)
        return
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "d_ff": model.cfg.d_ff,
           "params": model.num_params(), "torch_kv": {}, "torch_rerun": {}}
    for c in args.contexts:
        kv, rerun = rates(model, c, args.steps)
        out["torch_kv"][str(c)] = round(kv, 1)
        out["torch_rerun"][str(c)] = round(rerun, 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
