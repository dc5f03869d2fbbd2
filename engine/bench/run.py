"""``moodroll bench``: decoding speed, latencies and timing on this machine, as one JSON object.

* ``tokens_per_s``: decoder tokens per second at a context of 256 and 1024 tokens for
  - ``ort_kv``: ONNX Runtime with the KV cache (what the engine runs; :mod:`engine.runtime`),
  - ``torch_kv``: PyTorch eager with a KV cache, and
  - ``torch_rerun``: PyTorch re-running the whole prefix for every token (the paper's way).
  The torch numbers come from ``training/bench_torch.py`` run as a subprocess, only when torch
  is installed (the engine never imports it); all three use the same architecture, size and
  thread count. ``ratios`` divides numbers measured in this one run.
* ``generator_tokens_per_s``: the full :meth:`MusicGenerator.next_token` (decode + masks +
  sampling + musical state, re-primes included) over a long stream, and the time of one
  re-prime prefill (``1 + reprime_keep`` tokens: the longest single step of a stream).
* ``first_note_event_ms``: picture -> the generator's first note-on event, no port (the
  engine's share of ``first_note_ms``).
* ``first_note_ms``, ``frame_to_va_ms``, ``timing_error_ms``: from :mod:`engine.bench.realtime`
  (a real receiving MIDI port); null with a reason when no MIDI backend is usable.
* ``decode_flops_fraction_of_peak``: FLOP/s of cached decoding at context 1024 (FLOPs counted
  from the bundle's shapes) over the best float32 matmul FLOP/s measured here (numpy, and
  ONNX Runtime when the ``onnx`` package is installed).

Timings on a shared machine are noisy: compare ratios from one run only. ``ort_kv`` is the mean
of two rounds taken before and after the torch subprocess (``ort_kv_rounds``), so a change of
load during the run affects both sides of a ratio alike.
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from engine.bundle import Bundle, load_bundle
from engine.paths import EXAMPLES, REPO_ROOT
from engine.runtime import KVCache, Runtime

CONTEXTS = (256, 1024)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} cores"


def decode_rate(rt: Runtime, context: int, steps: int, repeats: int = 3, rows: int = 1,
                guided: bool = False) -> float:
    """Tokens/s of single-token cached steps after ``context`` cached tokens (best of ``repeats``).

    ``rows`` streams step together (tokens/s counts every row's token); ``guided``: each stream
    is a conditioned + null pair (2 rows per stream, one token per pair), as guidance runs.
    Format 2 caches get a capacity of ``context + 1``: every step writes the same slot."""
    cross = rt.cross_kv((5.0, 5.0), None)
    b = 2 * rows if guided else rows
    if guided:
        cross = rt.stack_cross([cross] * rows + [rt.cross_kv(None, None)] * rows)
    rng = np.random.default_rng(0)
    cache = rt.empty_cache(b, capacity=context + 1) if rt.fixed else rt.empty_cache(b)
    for start in range(0, context, 256):  # prefill in chunks (bounded attention matrices)
        n = min(256, context - start)
        rt.decode(np.tile(rng.integers(4, rt.vocab_size, n), (b, 1)), cache, cross)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        for i in range(steps):
            if rt.fixed:
                cache.length = context  # context stays at `context` (the slot is overwritten)
                step = cache
            else:
                step = KVCache(dict(cache.past), cache.length)
            rt.decode(np.full((b, 1), 4 + i % 64), step, cross)
        best = max(best, rows * steps / (time.perf_counter() - t))
    return best


def generator_rate(bundle: Bundle, device: str, threads: int, tokens: int) -> dict:
    """MusicGenerator end to end, unguided (w = 1) and guided (w = 2, one batch-2 step per token)."""
    from engine.generator import Condition, MusicGenerator
    from engine.sampling import DEFAULT_GUIDANCE, SamplingOptions

    out = {}
    for key, w in (("tokens_per_s", 1.0), ("guided_tokens_per_s", DEFAULT_GUIDANCE)):
        gen = MusicGenerator(bundle, SamplingOptions(seed=0, guidance=w), condition=Condition(6.0, 6.0),
                             device=device, threads=threads)
        gen.generate(32)  # warm up
        t = time.perf_counter()
        gen.generate(tokens)
        out[key] = round(tokens / (time.perf_counter() - t), 1)
        if w == 1.0:
            out.update(tokens=tokens, reprimes=gen.n_reprimes)
            ids = gen.context[:1 + bundle.decoder.reprime_keep]
            ids += [4] * (1 + bundle.decoder.reprime_keep - len(ids))
            prefill = min(_timed(lambda: gen.runtime.decode(ids, gen.runtime.empty_cache(), gen._cross))
                          for _ in range(3))
            out["reprime_prefill_ms"] = round(prefill * 1000.0, 1)
    out["guided_over_unguided"] = round(out["guided_tokens_per_s"] / out["tokens_per_s"], 3)
    out["guidance"] = DEFAULT_GUIDANCE
    return out


def first_note_event_ms(bundle: Bundle, device: str, threads: int, repeats: int = 5) -> dict:
    """Picture -> the generator's first note_on event (encoder + condition + decoding), no port:
    the engine's share of ``first_note_ms`` (the rest is the stream's pre-roll and MIDI transport)."""
    from engine.generator import Condition, MusicGenerator
    from engine.sampling import SamplingOptions
    from engine.streaming import NOTE_ON

    gen = MusicGenerator(bundle, SamplingOptions(seed=0), device=device, threads=threads)
    rgb = (np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8)
    gen.analyze_image(rgb)  # the encoder session is open before the drop, as in a live session
    runs = []
    for i in range(repeats):
        gen.set_sampling(SamplingOptions(seed=i))
        gen.reset()
        t = time.perf_counter()
        tokens, (v, a) = gen.analyze_image(rgb)
        gen.set_condition(Condition(v, a, tokens))
        while not any(e.kind == NOTE_ON for e in gen.last_events):
            gen.next_token()
        runs.append((time.perf_counter() - t) * 1000.0)
    return {"median": round(float(np.median(runs)), 1), "runs": [round(r, 1) for r in runs]}


def decode_flops_per_token(bundle: Bundle, context: int, d_ff: int | None = None) -> float:
    """Multiply-adds x 2 of one cached decoder step with ``context`` past tokens. ``d_ff``: the
    feed-forward width (config.json's ``d_ff``, else what bench_torch read from the graph, else 4 d)."""
    d = bundle.decoder
    dm, L, V, M = d.d_model, d.n_layers, d.vocab_size, bundle.condition.memory_len
    d_ff = int(bundle.config.get("decoder", {}).get("d_ff") or d_ff or 4 * dm)
    per_layer = (3 * dm * dm + dm * dm  # self-attention qkv + out
                 + 2 * (context + 1) * dm  # scores and weighted sum over past + self
                 + dm * dm + dm * dm + 2 * M * dm  # cross-attention q, out, over M memory entries
                 + 2 * dm * d_ff)  # feed-forward
    return 2.0 * (L * per_layer + dm * V)


def matmul_peak_flops(n: int = 1024, repeats: int = 5) -> dict:
    """Best float32 GEMM FLOP/s measured with numpy (and ONNX Runtime when onnx is installed)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    out = {"numpy": 2.0 * n ** 3 / best}
    if importlib.util.find_spec("onnx") is not None:
        from onnx import TensorProto, helper

        g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        sess.run(None, {"a": a, "b": b})
        best = min(_timed(lambda: sess.run(None, {"a": a, "b": b})) for _ in range(repeats))
        out["onnxruntime"] = 2.0 * n ** 3 / best
    return out


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def torch_rates(bundle: Bundle, steps: int, threads: int) -> dict:
    """Run training/bench_torch.py in a subprocess (torch stays out of this process)."""
    if importlib.util.find_spec("torch") is None:
        return {"error": "torch is not installed (pip install moodroll[training])"}
    cmd = [sys.executable, "-m", "training.bench_torch", "--bundle", str(bundle.path), "--steps", str(steps),
           "--threads", str(threads), "--contexts", *map(str, CONTEXTS)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=1800)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"training.bench_torch failed: {tail}"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def _realtime(name: str, fn) -> dict | None:
    try:
        return fn()
    except Exception as e:  # no ALSA/JACK, no port: report, don't fail the whole bench
        return {"error": f"{name}: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"}


def realtime_numbers(bundle: Bundle, device: str, threads: int, quick: bool) -> dict:
    try:
        import engine.bench.realtime as br
    except ImportError as e:
        reason = {"error": f"engine.bench.realtime unavailable: {e}"}
        return {"first_note_ms": reason, "frame_to_va_ms": reason, "timing_error_ms": reason}
    from engine.generator import MusicGenerator
    from engine.image import load_image
    from engine.sampling import SamplingOptions

    gen = MusicGenerator(bundle, SamplingOptions(seed=0), device=device, threads=threads)
    pictures = sorted(p for p in EXAMPLES.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    rgb = load_image(pictures[0]) if pictures else (np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8)
    gen.analyze_image(rgb)  # opens the image encoder: a live session has it loaded before the drop
    rng = np.random.default_rng(0)
    frames = [(rng.random((480, 640, 3)) * 255).astype(np.uint8) for _ in range(20 if quick else 200)]
    return {
        "first_note_ms": _realtime("first_note_ms", lambda: br.first_note_ms(gen, rgb, repeats=2 if quick else 5)),
        "frame_to_va_ms": _realtime("frame_to_va_ms", lambda: br.frame_to_va_ms(gen, frames)),
        "timing_error_ms": _realtime("timing_error_ms", lambda: br.timing_error_ms(n_notes=200 if quick else 2000)),
    }


def _decoding_numbers(result: dict, bundle: Bundle, rt: Runtime, tmp: Path, steps: int, skip, device: str,
                      threads: int, quick: bool) -> None:
    """Every decoding number of :func:`run_bench` into ``result``."""
    from engine.bench import extra as bx

    rt_fixed = rt if rt.fixed else None
    if not rt.fixed and not {"batched", "torch"} <= set(skip):  # the format-2 twin, exported before any timing
        twin = bx.fixed_twin(bundle, tmp, None)
        if isinstance(twin, Bundle):
            rt_fixed = Runtime(twin, device=device, threads=threads)
        else:
            result["tokens_per_s"]["ort_fixed"] = twin
    rates = {"ort_kv": rt} | ({"ort_fixed": rt_fixed} if rt_fixed is not None and rt_fixed is not rt else {})
    before = {k: {str(c): decode_rate(r, c, steps) for c in CONTEXTS} for k, r in rates.items()}
    tr: dict = {}
    if "torch" not in skip:
        tr = torch_rates(bundle, steps=steps, threads=threads)
        for k in ("torch_kv", "torch_rerun"):
            result["tokens_per_s"][k] = tr.get(k) or {"error": tr.get("error", "missing")}
        if "torch" in tr:
            result["torch_version"] = tr["torch"]
    # ORT again after torch: the machine's load drifts, so its number is the mean of two rounds
    # that bracket the torch run in time (both rounds are reported)
    after = {k: {str(c): decode_rate(r, c, steps) for c in CONTEXTS} for k, r in rates.items()} if tr else before
    result["ort_kv_rounds"] = {c: [round(before["ort_kv"][c], 1), round(after["ort_kv"][c], 1)] for c in before["ort_kv"]}
    mean = {k: {c: round((before[k][c] + after[k][c]) / 2, 1) for c in before[k]} for k in rates}
    if "ort_fixed" in rates:
        result["ort_fixed_rounds"] = {c: [round(before["ort_fixed"][c], 1), round(after["ort_fixed"][c], 1)]
                                      for c in before["ort_fixed"]}
    elif rt.fixed:
        mean["ort_fixed"] = mean["ort_kv"]  # the bundle itself is format 2
    result["tokens_per_s"] = {**mean, **{k: v for k, v in result["tokens_per_s"].items() if k not in mean}}
    tps = result["tokens_per_s"]
    ratios = {}
    for mine in ("ort_kv", "ort_fixed"):
        for other in ("torch_kv", "torch_rerun"):
            for c in map(str, CONTEXTS):
                o, m = tps.get(other, {}), tps.get(mine, {})
                if isinstance(o, dict) and isinstance(o.get(c), (int, float)) and o[c] > 0 and isinstance(m.get(c), float):
                    ratios[f"{mine}/{other}@{c}"] = round(m[c] / o[c], 2)
    result["ratios"] = ratios
    result["first_note_event_ms"] = first_note_event_ms(bundle, device, threads)
    result["generator_tokens_per_s"] = generator_rate(bundle, device, threads, 300 if quick else 3000)
    ratios["guided/unguided"] = result["generator_tokens_per_s"]["guided_over_unguided"]
    peak = matmul_peak_flops() if "flops" not in skip else None
    if peak:
        flops = decode_flops_per_token(bundle, 1024, tr.get("d_ff")) * tps["ort_kv"]["1024"]
        result["decode_gflops"] = round(flops / 1e9, 3)
        result["matmul_peak_gflops"] = {k: round(v / 1e9, 2) for k, v in peak.items()}
        result["decode_flops_fraction_of_peak"] = round(flops / max(peak.values()), 5)
    if "batched" not in skip:
        result["batched_tokens_per_s"] = (
            bx.batched_numbers(rt_fixed, 16, 256, steps, max(peak.values()) if peak else None,
                               lambda b, c: decode_flops_per_token(b, c, tr.get("d_ff")), quick)
            if rt_fixed is not None else {"error": "no format-2 bundle (needs torch to export the twin)"})
    if "int8" not in skip:
        result["int8"] = bx.int8_numbers(rt, tmp / "int8", steps) if not quick else {"skipped": "--quick"}
    if "larger" not in skip:  # a 22 M-parameter export: not in a smoke run
        result["larger_model"] = (bx.larger_model(tmp, bundle.path, max(20, steps // 2), threads, device)
                                  if not quick else {"skipped": "--quick"})
    if rt.provider != "CPUExecutionProvider":
        result["cuda"] = bx.cuda_report(bundle, steps)


def run_bench(bundle=None, quick: bool = False, skip: set = frozenset(), device: str = "auto",
              threads: int | None = None) -> dict:
    """Everything above; ``quick`` = few steps (a smoke run, not for the record). ``threads``:
    intra-op threads of ONNX Runtime and torch alike (default: half the cores, as the engine)."""
    t = time.perf_counter()
    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    rt = Runtime(bundle, device=device, threads=threads)
    threads = rt.threads
    load_ms = (time.perf_counter() - t) * 1000.0
    steps = 20 if quick else 200
    result: dict = {
        "device": f"{machine()}; ONNX Runtime {ort.__version__} {rt.provider}, {threads} intra-op threads",
        "provider": rt.provider,
        "bundle": {"name": bundle.name, "path": str(bundle.path), "d_model": bundle.decoder.d_model,
                   "n_layers": bundle.decoder.n_layers, "max_context": bundle.decoder.max_context},
        "load_ms": round(load_ms, 1),
        "tokens_per_s": {},
    }
    with tempfile.TemporaryDirectory(prefix="moodroll-bench-") as tmp:
        _decoding_numbers(result, bundle, rt, Path(tmp), steps, skip, device, threads, quick)
    if "realtime" not in skip:
        result.update(realtime_numbers(bundle, device, threads, quick))
    result["bench_s"] = round(time.perf_counter() - t, 1)
    return result
