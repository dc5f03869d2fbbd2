"""int8 dynamic quantisation of a bundle's decoder, and the checks that decide whether to keep it.

    python -m engine.model.quantize --bundle DIR --out DIR_INT8          # write the int8 bundle
    python -m engine.model.quantize --bundle DIR --out DIR_INT8 --check  # + logits and music checks

:func:`quantize_bundle` copies a bundle and replaces ``decoder_step.onnx`` with ONNX Runtime's
dynamic int8 quantisation of its MatMul weights (``onnxruntime.quantization.quantize_dynamic``:
weights int8 per output channel, activations quantised per step); the image encoder and the
condition graph stay float32. ``config.json`` says ``decoder.quantization = "int8-dynamic"``.

:func:`logit_error` measures the largest |float - int8| logit difference over a seeded stream,
and :func:`music_check` generates the same seeded pieces with both decoders and compares
the paper's Music_Quality_Loss (engine.music.metrics) and notes per second: the int8 decoder is only
worth shipping when both hold (docs/performance.md has the measured numbers). Needs the
``onnx`` package (the training extra) to write; loading the result needs only ONNX Runtime.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from engine.model.bundle import load_bundle, write_manifest

QUANTIZATION = "int8-dynamic"


def quantize_bundle(src, out, per_channel: bool = True) -> Path:
    """Write ``out``: the bundle ``src`` with an int8 dynamically quantised decoder."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    bundle = load_bundle(src)
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(bundle.path, out)
    dec = out / bundle.decoder.file
    root, level = logging.getLogger(), logging.getLogger().level
    with tempfile.TemporaryDirectory() as tmp:
        q = Path(tmp) / "q.onnx"
        root.setLevel(logging.ERROR)  # quantize_dynamic warns about optional pre-processing on the root logger
        try:
            quantize_dynamic(str(dec), str(q), weight_type=QuantType.QInt8, per_channel=per_channel,
                             op_types_to_quantize=["MatMul"])
        finally:
            root.setLevel(level)
        shutil.copyfile(q, dec)
    cfg = json.loads((out / "config.json").read_text())
    cfg["decoder"]["quantization"] = QUANTIZATION
    cfg["name"] = f"{cfg.get('name', bundle.name)}-int8"
    (out / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    write_manifest(out)
    return out


def logit_error(rt_float, rt_int8, n: int = 200, seed: int = 0) -> dict:
    """max and mean |logit difference| over ``n`` cached steps of a seeded float32 stream (both
    decoders fed the same tokens), and how often the two argmax tokens agree."""
    from engine.model.generator import Condition, MusicGenerator
    from engine.model.sampling import SamplingOptions

    gen = MusicGenerator(rt_float.bundle, SamplingOptions(seed=seed), condition=Condition(6.5, 3.5), runtime=rt_float)
    ids = [rt_float.bundle.bos] + gen.generate(n - 1)
    cf, cq = rt_float.cross_kv((6.5, 3.5), None), rt_int8.cross_kv((6.5, 3.5), None)
    a = rt_float.decode(ids, rt_float.empty_cache(), cf)
    b = rt_int8.decode(ids, rt_int8.empty_cache(), cq)
    d = np.abs(a - b)
    return {"max_abs": round(float(d.max()), 5), "mean_abs": round(float(d.mean()), 5),
            "logit_range": round(float(a.max() - a.min()), 3),
            "argmax_agree": round(float(np.mean(a.argmax(-1) == b.argmax(-1))), 4), "steps": n}


def music_check(rt, pieces: int = 8, bars: int = 8, seed: int = 0, guidance: float = 2.0) -> dict:
    """Mean Music_Quality_Loss and notes/s of ``pieces`` seeded pieces over a grid of VA points."""
    from engine.model.controls import MusicalControls
    from engine.model.batch import generate_variations
    from engine.model.generator import Condition
    from engine.music.metrics import analyze
    from engine.music.notes import notes_from_tokens
    from engine.model.sampling import SamplingOptions

    tok = rt.bundle.tokenizer
    mql, nps = [], []
    grid = [(v, a) for v in (2.5, 7.5) for a in (2.5, 7.5)]
    per = max(1, pieces // len(grid))
    for i, (v, a) in enumerate(grid):
        for ids in generate_variations(rt, Condition(v, a), MusicalControls(), SamplingOptions(
                seed=seed + 100 * i, guidance=guidance), n=per, bars=bars):
            m = analyze(notes_from_tokens(ids, tok))
            if m.get("music_quality_loss") is not None and np.isfinite(m["music_quality_loss"]):
                mql.append(m["music_quality_loss"])
            if m.get("note_density") is not None:
                nps.append(m["note_density"])
    return {"pieces": len(grid) * per, "bars": bars, "music_quality_loss": round(float(np.mean(mql)), 4),
            "music_quality_loss_sd": round(float(np.std(mql)), 4), "notes_per_second": round(float(np.mean(nps)), 3)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="int8 dynamic quantisation of a bundle's decoder")
    ap.add_argument("--bundle", default=None, help="source bundle (default: the shipped one)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--check", action="store_true", help="measure logit error and music quality, float vs int8")
    ap.add_argument("--pieces", type=int, default=16)
    args = ap.parse_args(argv)
    out = quantize_bundle(args.bundle, args.out)
    print(f"wrote {out}")
    if args.check:
        from engine.model.runtime import Runtime

        rf = Runtime(load_bundle(args.bundle), device="cpu", threads=1)
        rq = Runtime(load_bundle(out), device="cpu", threads=1)
        print(json.dumps({"logits": logit_error(rf, rq), "float32": music_check(rf, args.pieces),
                          "int8": music_check(rq, args.pieces)}))


if __name__ == "__main__":
    main()
