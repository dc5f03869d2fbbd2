"""``moodroll bench`` numbers for the fixed cache, batching, a larger decoder, int8 and CUDA.

Called by :func:`tools.bench.run.run_bench` (keys documented in docs/performance.md):

* ``twin``: the bundle in the other cache format, same shapes, random weights (speed does not
  depend on them), exported by ``training.export`` in a subprocess, so both cache layouts are
  timed in one run (``tokens_per_s.ort_fixed`` and ``ort_kv``);
* ``batched_numbers``: 16 streams as rows of one decoder call, raw decoder and
  :func:`engine.model.batch.generate_variations` end to end, with the FLOP fraction of peak;
* ``larger_model``: a random d_model 512 / 6 layer / 8 head decoder, guided tokens/s at context
  256, float32 and int8;
* ``cuda_report``: the prepared CUDA measurement (batch-1 tokens/s, 64 streams, parity with
  the CPU), run only when the CUDA provider really works.

Everything that needs torch (the exports) runs as a subprocess and reports ``{"error": ...}``
when torch is not installed, so the bench still runs on an engine-only install.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from engine.model.bundle import Bundle, load_bundle
from engine.paths import REPO_ROOT

LARGER = {"d_model": 512, "n_layers": 6, "n_heads": 8, "d_ff": 2048, "max_context": 512, "reprime_keep": 256}


def export_random(out: Path, dims: dict, image_encoder_from: Path, fmt: int = 2) -> Path | dict:
    """``python -m training.export --random`` with ``dims`` into ``out``; an error dict without torch."""
    if importlib.util.find_spec("torch") is None:
        return {"error": "torch is not installed (pip install moodroll[training]): no random bundle to export"}
    cmd = [sys.executable, "-m", "training.export", "--random", "--format", str(fmt), "--threads", "1",
           "--image-encoder-from", str(image_encoder_from), "--out", str(out)]
    for k, v in dims.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=1800)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"training.export failed: {tail}"}
    return out


def shape_of(bundle: Bundle, d_ff: int | None) -> dict:
    d = bundle.decoder
    return {"d_model": d.d_model, "n_layers": d.n_layers, "n_heads": d.n_heads,
            "d_ff": int(bundle.config["decoder"].get("d_ff") or d_ff or 4 * d.d_model),
            "max_context": d.max_context, "reprime_keep": d.reprime_keep}


def twin(bundle: Bundle, tmp: Path, fmt: int, d_ff: int | None = None) -> Bundle | dict:
    """The bundle itself when it is format ``fmt``, else a random bundle of its shapes in that
    format (so both cache layouts are timed in one run)."""
    if bundle.format == fmt:
        return bundle
    out = export_random(tmp / f"twin_format{fmt}", shape_of(bundle, d_ff), bundle.path, fmt=fmt)
    return load_bundle(out) if isinstance(out, Path) else out


def batched_numbers(rt, streams: int, context: int, steps: int, peak_flops: float | None, flops_per_token,
                    quick: bool) -> dict:
    """``streams`` rows in one call at ``context``, and generate_variations end to end."""
    from tools.bench.rates import decode_rate
    from engine.model.controls import MusicalControls
    from engine.model.batch import generate_variations
    from engine.model.generator import Condition
    from engine.model.sampling import SamplingOptions

    raw = decode_rate(rt, context, max(5, steps // 4), rows=streams)
    guided = decode_rate(rt, context, max(5, steps // 8), rows=streams, guided=True)
    n_tok = 64 if quick else 384
    t = time.perf_counter()
    generate_variations(rt, Condition(6.0, 4.0), MusicalControls(), SamplingOptions(seed=0, guidance=2.0),
                        n=streams, n_tokens=n_tok)
    e2e = streams * n_tok / (time.perf_counter() - t)
    out = {"streams": streams, "context": context, "decode_tokens_per_s": round(raw, 1),
           "guided_decode_tokens_per_s": round(guided, 1),
           "generate_variations_tokens_per_s": round(e2e, 1), "generate_variations_tokens": n_tok,
           "bundle_format": rt.bundle.format}
    if peak_flops:
        gflops = flops_per_token(rt.bundle, context) * raw
        out["decode_gflops"] = round(gflops / 1e9, 3)
        out["fraction_of_peak"] = round(gflops / peak_flops, 4)
    return out


def larger_model(tmp: Path, image_encoder_from: Path, steps: int, threads: int, device: str) -> dict:
    """A random d512 / 6 layers / 8 heads decoder: guided (batch-2) tokens/s at context 256,
    float32 and int8 (dynamic), plus the int8 logit error on a seeded stream."""
    from tools.bench.rates import decode_rate
    from engine.model.runtime import Runtime

    out = export_random(tmp / "larger", LARGER, image_encoder_from)
    if not isinstance(out, Path):
        return {**LARGER, **out}
    b = load_bundle(out)
    rt = Runtime(b, device=device, threads=threads)
    res = {**LARGER, "params_decoder_m": round(_decoder_params(b) / 1e6, 2),
           "guided_tokens_per_s@256": round(decode_rate(rt, 256, steps, guided=True), 1),
           "tokens_per_s@256": round(decode_rate(rt, 256, steps), 1)}
    res["int8"] = int8_numbers(rt, tmp / "larger_int8", steps, guided=True)
    return res


def int8_numbers(rt, out: Path, steps: int, guided: bool = False) -> dict:
    """The same decoder quantised to int8 (dynamic): tokens/s at 256 and the logit error."""
    if importlib.util.find_spec("onnx") is None:
        return {"error": "the onnx package is not installed (pip install moodroll[training])"}
    from tools.bench.rates import decode_rate
    from engine.model.quantize import logit_error, quantize_bundle
    from engine.model.runtime import Runtime

    q = Runtime(load_bundle(quantize_bundle(rt.bundle.path, out)), device="cpu", threads=rt.threads)
    key = "guided_tokens_per_s@256" if guided else "tokens_per_s@256"
    res = {key: round(decode_rate(q, 256, steps, guided=guided), 1)}
    res["float32_" + key] = round(decode_rate(rt, 256, steps, guided=guided), 1)  # same moment, same load
    res["logits"] = logit_error(rt, q, n=128)
    return res


def _decoder_params(bundle: Bundle) -> int:
    d = bundle.decoder
    dff = int(bundle.config["decoder"].get("d_ff") or 4 * d.d_model)
    return d.n_layers * (6 * d.d_model ** 2 + 2 * d.d_model * dff) + d.vocab_size * d.d_model


def cuda_report(bundle: Bundle, steps: int = 200) -> dict:
    """The CUDA provider with the cache on the device: batch-1 tokens/s at 256 and 1024, 64
    streams at 256, and parity of 64 greedy steps with the CPU. Error dict without CUDA."""
    from tools.bench.rates import decode_rate
    from engine.model.runtime import DeviceError, Runtime

    try:
        gpu = Runtime(bundle, device="cuda")
    except DeviceError as e:
        return {"error": str(e)}
    cpu = Runtime(bundle, device="cpu", threads=1)
    res = {"provider": gpu.provider, "bundle_format": bundle.format,
           "tokens_per_s": {str(c): round(decode_rate(gpu, c, steps), 1) for c in (256, 1024)},
           "guided_tokens_per_s@256": round(decode_rate(gpu, 256, steps, guided=True), 1),
           "streams_64_tokens_per_s@256": round(decode_rate(gpu, 256, max(10, steps // 4), rows=64), 1),
           "cpu_tokens_per_s@256": round(decode_rate(cpu, 256, steps), 1)}
    ids = np.random.default_rng(0).integers(4, bundle.decoder.vocab_size, 64)
    a = cpu.decode(ids, cpu.empty_cache(), cpu.cross_kv((6.0, 4.0), None))
    b = gpu.decode(ids, gpu.empty_cache(), gpu.cross_kv((6.0, 4.0), None))
    res["parity_max_abs_logit_diff"] = round(float(np.abs(a - b).max()), 6)
    res["parity_argmax_agree"] = float(np.mean(a.argmax(-1) == b.argmax(-1)))
    return res


def main(argv=None) -> None:
    """The prepared CUDA check: ``python -m tools.bench.extra cuda --bundle DIR``."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description="the CUDA measurement of docs/performance.md (one JSON line)")
    ap.add_argument("what", choices=["cuda"])
    ap.add_argument("--bundle", default=None, help="bundle folder (default: the shipped one)")
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args(argv)
    print(json.dumps(cuda_report(load_bundle(args.bundle), args.steps)))


if __name__ == "__main__":
    main()
