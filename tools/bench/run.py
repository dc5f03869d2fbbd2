"""``moodroll bench``: decoding speed, latencies and timing on this machine, as one JSON object.

* ``shipped``: which decoding path ``moodroll live`` (and the app) runs, by name: the shipped
  bundle opened as :func:`engine.live.command.run_live` opens it (its format decides ``ort_fixed`` or
  ``ort_kv``; :attr:`engine.model.runtime.Runtime.decoding_path`), with its tokens/s.
* ``tokens_per_s``: decoder tokens per second at a context of 256 and 1024 tokens for
  - ``ort_fixed``: ONNX Runtime with bundle format 2's fixed cache written in place,
  - ``ort_kv``: ONNX Runtime with format 1's growing past/present cache,
  - ``torch_kv``: PyTorch eager with a KV cache, and
  - ``torch_rerun``: PyTorch re-running the whole prefix for every token (the paper's way).
  The format the bundle lacks is timed on a random-weight *twin* of its shapes (speed does not
  depend on the weights). The torch numbers come from ``training/bench_torch.py --serve``, a
  subprocess (the engine never imports torch), only when torch is installed; all use the same
  architecture, size and thread count.
* Interleaved rounds (:mod:`tools.bench.interleave`): at each context every path times one
  block per round, A B A B ..., at least 5 rounds; ``tokens_per_s`` is each path's median,
  ``rounds`` the per-round numbers, and each entry of ``ratios`` the median of the per-round
  quotients with its min-max, spread and ``noisy`` (spread > 20 %: the machine was too busy to
  tell). ``noisy`` lists the ratios so flagged.
* ``generator_tokens_per_s``: the full :meth:`MusicGenerator.next_token` (decode + masks +
  sampling + musical state, re-primes included), unguided and guided (w = 2) in alternating
  rounds of a long stream (``guided/unguided`` the same way), and the time of one re-prime
  prefill (``1 + reprime_keep`` tokens: the longest single step of a stream).
* ``first_note_event_ms``: picture -> the generator's first note-on event, no port (the
  engine's share of ``first_note_ms``).
* ``first_note_ms``, ``frame_to_va_ms``, ``timing_error_ms``: from :mod:`tools.bench.realtime`
  (a real receiving MIDI port); null with a reason when no MIDI backend is usable.
* ``decode_flops_fraction_of_peak``: FLOP/s of cached decoding at context 1024 (FLOPs counted
  from the bundle's shapes) over the best float32 matmul FLOP/s measured here (numpy, and
  ONNX Runtime when the ``onnx`` package is installed).
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

from tools.bench import interleave as bi
from tools.bench.rates import DecodeRounds
from engine.model.bundle import Bundle, load_bundle
from engine.paths import EXAMPLES, REPO_ROOT
from engine.model.runtime import Runtime

CONTEXTS = (256, 1024)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} cores"


class GeneratorRounds:
    """:meth:`MusicGenerator.next_token` end to end on one long stream; each call times one block
    of ``tokens`` tokens (re-primes included as they fall)."""

    def __init__(self, bundle: Bundle, runtime: Runtime, guidance: float, seed: int = 0):
        from engine.model.generator import Condition, MusicGenerator
        from engine.model.sampling import SamplingOptions

        self.gen = MusicGenerator(bundle, SamplingOptions(seed=seed, guidance=guidance),
                                  condition=Condition(6.0, 6.0), runtime=runtime)
        self.gen.generate(32)  # warm up

    def __call__(self, tokens: int) -> float:
        t = time.perf_counter()
        self.gen.generate(tokens)
        return tokens / (time.perf_counter() - t)


def generator_rate(bundle: Bundle, runtime: Runtime, tokens: int, rounds: int) -> dict:
    """Unguided (w = 1) and guided (w = 2, one batch-2 step per token) generators in alternating
    rounds of ``tokens`` tokens; medians, per-round numbers and the guided/unguided ratio."""
    from engine.model.sampling import DEFAULT_GUIDANCE

    paths = {"tokens_per_s": GeneratorRounds(bundle, runtime, 1.0),
             "guided_tokens_per_s": GeneratorRounds(bundle, runtime, DEFAULT_GUIDANCE)}
    samples = bi.interleave({k: (lambda g=g: g(tokens)) for k, g in paths.items()}, rounds)
    out = {k: bi.median_rate(v) for k, v in samples.items()}
    gen = paths["tokens_per_s"].gen
    out.update(tokens_per_round=tokens, rounds={k: [round(x, 1) for x in v] for k, v in samples.items()},
               reprimes=gen.n_reprimes)
    ids = gen.context[:1 + bundle.decoder.reprime_keep]
    ids += [4] * (1 + bundle.decoder.reprime_keep - len(ids))
    prefill = min(_timed(lambda: runtime.decode(ids, runtime.empty_cache(), gen._cross)) for _ in range(3))
    out["reprime_prefill_ms"] = round(prefill * 1000.0, 1)
    out["guided_over_unguided"] = bi.ratio_stats(samples["guided_tokens_per_s"], samples["tokens_per_s"])
    out["guidance"] = DEFAULT_GUIDANCE
    return out


def first_note_event_ms(bundle: Bundle, device: str, threads: int, repeats: int = 5) -> dict:
    """Picture -> the generator's first note_on event (encoder + condition + decoding), no port:
    the engine's share of ``first_note_ms`` (the rest is the stream's pre-roll and MIDI transport)."""
    from engine.model.generator import Condition, MusicGenerator
    from engine.model.sampling import SamplingOptions
    from engine.music.events import NOTE_ON

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


class TorchWorker:
    """``training.bench_torch --serve`` in a subprocess (torch stays out of this process): one
    timed block of ``torch_kv`` or ``torch_rerun`` per :meth:`rate` call."""

    def __init__(self, bundle: Bundle, threads: int):
        cmd = [sys.executable, "-m", "training.bench_torch", "--serve", "--bundle", str(bundle.path),
               "--threads", str(threads)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=REPO_ROOT)
        self.info = self._answer()

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            err = (self.proc.stderr.read().strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"training.bench_torch failed: {err}")
        out = json.loads(line)
        if "error" in out:
            raise RuntimeError(f"training.bench_torch: {out['error']}")
        return out

    def rate(self, path: str, context: int, steps: int) -> float:
        self.proc.stdin.write(json.dumps({"path": path, "context": context, "steps": steps}) + "\n")
        self.proc.stdin.flush()
        return float(self._answer()["tokens_per_s"])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def torch_worker(bundle: Bundle, threads: int) -> TorchWorker | dict:
    """A running :class:`TorchWorker`, or ``{"error": ...}`` (no torch, or it failed to start)."""
    if importlib.util.find_spec("torch") is None:
        return {"error": "torch is not installed (pip install moodroll[training])"}
    try:
        return TorchWorker(bundle, threads)
    except (RuntimeError, OSError, ValueError) as e:
        return {"error": str(e).splitlines()[0]}


def shipped_runtime(bundle: Bundle, rt: Runtime, device: str, threads: int) -> tuple[Runtime, dict]:
    """The runtime ``moodroll live`` would open (the shipped bundle, its default device and
    threads) and a description of its decoding path; ``rt`` itself when it is that one."""
    try:
        from engine.live.command import LiveOptions
        live = LiveOptions()
        live_bundle, live_device = live.bundle, live.device
    except ImportError:  # no MIDI library: the same defaults, read from nowhere else
        live_bundle, live_device = None, "auto"
    from engine.model.runtime import default_threads

    ship = load_bundle(live_bundle)
    same = (ship.path.resolve() == bundle.path.resolve() and device == live_device
            and threads == default_threads())
    srt = rt if same else Runtime(ship, device=live_device)
    desc = {"path": srt.decoding_path, "bundle": str(ship.path), "format": ship.format,
            "provider": srt.provider, "threads": srt.threads,
            "what": ("bundle format 2: fixed-capacity K/V buffers written in place (engine/model/cache.py)"
                     if srt.fixed else "bundle format 1: past/present K/V copied every step (engine/model/runtime.py)"),
            "same_as_bench_bundle": same}
    return srt, desc


def _realtime(name: str, fn) -> dict | None:
    try:
        return fn()
    except Exception as e:  # no ALSA/JACK, no port: report, don't fail the whole bench
        return {"error": f"{name}: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"}


def realtime_numbers(bundle: Bundle, device: str, threads: int, quick: bool) -> dict:
    try:
        import tools.bench.realtime as br
    except ImportError as e:
        reason = {"error": f"tools.bench.realtime unavailable: {e}"}
        return {"first_note_ms": reason, "frame_to_va_ms": reason, "timing_error_ms": reason}
    from engine.model.generator import MusicGenerator
    from engine.picture.image import load_image
    from engine.model.sampling import SamplingOptions

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


def _ratio_table(samples: dict, contexts) -> dict:
    """``{"a/b@c": ratio_stats}`` for every pair the aims and docs read."""
    pairs = [("shipped", "torch_kv"), ("ort_fixed", "torch_kv"), ("ort_kv", "torch_kv"), ("ort_fixed", "ort_kv"),
             ("shipped", "torch_rerun"), ("ort_fixed", "torch_rerun"), ("ort_kv", "torch_rerun")]
    out = {}
    for a, b in pairs:
        for c in map(str, contexts):
            s = samples.get(c, {})
            if a in s and b in s:
                out[f"{a}/{b}@{c}"] = bi.ratio_stats(s[a], s[b])
    return out


def _decoding_numbers(result: dict, bundle: Bundle, rt: Runtime, tmp: Path, steps: int, skip, device: str,
                      threads: int, quick: bool) -> None:
    """Every decoding number of :func:`run_bench` into ``result``."""
    from tools.bench import extra as bx

    rounds = 2 if quick else bi.MIN_ROUNDS  # a smoke run's ratios are flagged noisy (too few rounds)
    srt, result["shipped"] = shipped_runtime(bundle, rt, device, threads)
    by_path = {rt.decoding_path: rt}
    if not {"batched", "torch"} <= set(skip):  # the other cache format: a random twin, exported before any timing
        twin = bx.twin(bundle, tmp, 1 if rt.fixed else 2)
        if isinstance(twin, Bundle):
            t_rt = Runtime(twin, device=device, threads=threads)
            by_path[t_rt.decoding_path] = t_rt
        else:
            result["tokens_per_s"]["ort_kv" if rt.fixed else "ort_fixed"] = twin
    worker = torch_worker(bundle, threads) if "torch" not in skip else None
    if isinstance(worker, dict):
        result["tokens_per_s"]["torch_kv"] = result["tokens_per_s"]["torch_rerun"] = worker
        worker = None
    elif worker is not None:
        result["torch_version"] = worker.info["torch"]
    samples: dict = {}
    try:
        for c in CONTEXTS:
            paths = {name: (lambda r=DecodeRounds(r, c): r(steps)) for name, r in by_path.items()}
            if srt is not rt:  # live's runtime differs from the bench's (another --bundle/--threads/--device)
                paths["shipped"] = lambda r=DecodeRounds(srt, c): r(steps)
            if worker is not None:
                paths["torch_kv"] = lambda c=c: worker.rate("torch_kv", c, steps)
                paths["torch_rerun"] = lambda c=c: worker.rate("torch_rerun", c, max(2, steps // 20))
            samples[str(c)] = bi.interleave(paths, rounds)
            if srt is rt:
                samples[str(c)]["shipped"] = samples[str(c)][rt.decoding_path]  # the same measurement, named
    finally:
        if worker is not None:
            d_ff = worker.info.get("d_ff")
            worker.close()
        else:
            d_ff = None
    tps = result["tokens_per_s"]
    for c, per in samples.items():
        for name, v in per.items():
            tps.setdefault(name, {})[c] = bi.median_rate(v, 2 if name == "torch_rerun" else 1)
    result["shipped"]["tokens_per_s"] = tps.get("shipped")
    result["rounds"] = {c: {k: [round(x, 1) for x in v] for k, v in per.items()} for c, per in samples.items()}
    ratios = _ratio_table(samples, CONTEXTS)
    result["first_note_event_ms"] = first_note_event_ms(bundle, device, threads)
    gen = generator_rate(bundle, rt, 300 if quick else 640, rounds)
    result["generator_tokens_per_s"] = gen
    ratios["guided/unguided"] = gen["guided_over_unguided"]
    result["ratios"] = ratios
    result["noisy"] = bi.noisy_ratios(ratios)
    peak = matmul_peak_flops() if "flops" not in skip else None
    if peak and isinstance(tps.get(rt.decoding_path), dict):
        flops = decode_flops_per_token(bundle, 1024, d_ff) * tps[rt.decoding_path]["1024"]
        result["decode_gflops"] = round(flops / 1e9, 3)
        result["matmul_peak_gflops"] = {k: round(v / 1e9, 2) for k, v in peak.items()}
        result["decode_flops_fraction_of_peak"] = round(flops / max(peak.values()), 5)
    rt_fixed = by_path.get("ort_fixed")
    if "batched" not in skip:
        result["batched_tokens_per_s"] = (
            bx.batched_numbers(rt_fixed, 16, 256, steps, max(peak.values()) if peak else None,
                               lambda b, c: decode_flops_per_token(b, c, d_ff), quick)
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
