"""Rebuild the torch :class:`~training.model.MusicModel` from a bundle's ONNX graphs.

The shipped bundle has no training checkpoint beside it, only ``condition.onnx`` and
``decoder_step.onnx``. Their initializers are the model's weights, in two forms:

* tensors the exporter kept under their torch names (or passed through an ``Identity`` node
  when two parameters were equal, e.g. untrained LayerNorms) (``model.<param>``: LayerNorms, biases,
  embeddings, the Gemm weights of the VA MLP) are copied as they are;
* ``nn.Linear`` weights the exporter turned into ``MatMul`` right operands, renamed
  ``onnx::MatMul_N`` and stored transposed ([in, out]). They are identified by the name of the
  ``MatMul`` node that consumes them (``/blocks.2/cross/q/MatMul``, ``/kv_3/MatMul`` = layer 3's
  cross K/V projection, ``/head/MatMul``) and transposed back.

Every parameter must be found exactly once, with its torch shape; the tied output head must
equal the embedding. Attention scaling is not folded into any weight (the export multiplies q
by 1/sqrt(Dh) at run time), which the logits parity check confirms:
``tests/test_from_bundle.py`` runs 120+ cached steps in torch and ONNX Runtime (max |diff| <= 1e-4).

    python -m training.from_bundle --bundle assets/models/default --out runs/from_bundle/model.safetensors

writes a ``moodroll-checkpoint/1`` file that ``training.train`` can start from (``init_from``)
and ``training.export --checkpoint`` can re-export.
"""
from __future__ import annotations

import argparse
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from engine.model.bundle import load_bundle
from training.model import ModelConfig, MusicModel

_DECODER_MATMUL = re.compile(r"^/blocks\.(\d+)/(attn/qkv|attn/out|cross/q|cross/out|ff/ff\.0|ff/ff\.2)/MatMul$")
_CROSS_KV = re.compile(r"^/kv(?:_(\d+))?/MatMul$")


class FromBundleError(ValueError):
    """A bundle graph whose weights cannot be mapped onto the torch model (one line)."""


def _graph_weights(path: Path) -> dict[str, np.ndarray]:
    """{torch parameter name: array in torch layout} of one exported graph."""
    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:  # the exporter shares equal tensors (e.g. fresh LayerNorms) through Identity
        if node.op_type == "Identity" and node.input[0] in inits:
            inits[node.output[0]] = inits[node.input[0]]
    out: dict[str, np.ndarray] = {}

    def put(name: str, value: np.ndarray) -> None:
        if name in out:
            raise FromBundleError(f"{path.name}: parameter {name} found twice")
        out[name] = value

    for name, value in inits.items():
        if name.startswith("model."):
            put(name[len("model."):], value)
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        w = next((x for x in node.input if x in inits and not x.startswith("model.")), None)
        if w is None:
            continue
        if m := _DECODER_MATMUL.match(node.name):
            part = m.group(2).replace("ff/ff.", "ff.").replace("/", ".")  # scope ff/ff.0 = module ff.0
            put(f"blocks.{m.group(1)}.{part}.weight", inits[w].T)
        elif m := _CROSS_KV.match(node.name):
            put(f"blocks.{int(m.group(1) or 0)}.cross.kv.weight", inits[w].T)
        elif node.name == "/condition/img_proj/MatMul":
            put("condition.img_proj.weight", inits[w].T)
        elif node.name == "/head/MatMul":
            put("head.weight", inits[w].T)
        else:
            raise FromBundleError(f"{path.name}: weight {w} feeds MatMul {node.name!r}, which maps to no parameter")
    return out


def model_config(bundle) -> ModelConfig:
    """The ModelConfig a bundle's config.json describes (d_ff is read from the weights)."""
    d, img = bundle.decoder, bundle.image_encoder
    return ModelConfig(vocab_size=d.vocab_size, d_model=d.d_model, n_layers=d.n_layers, n_heads=d.n_heads,
                       max_context=d.max_context, reprime_keep=d.reprime_keep, rope_base=d.rope_base,
                       image_tokens=img.image_tokens, image_dim=img.dim)


def model_from_bundle(path: str | Path | None = None, dropout: float = 0.0) -> MusicModel:
    """A bundle folder (verified against its manifest) -> MusicModel with its weights, eval mode."""
    bundle = load_bundle(path)
    weights = _graph_weights(bundle.file(bundle.condition.file))
    for k, v in _graph_weights(bundle.file(bundle.decoder.file)).items():
        if k in weights:
            raise FromBundleError(f"parameter {k} is in both {bundle.condition.file} and {bundle.decoder.file}")
        weights[k] = v
    d_ff = weights.get("blocks.0.ff.0.weight", np.zeros((0,))).shape[0]
    cfg = replace(model_config(bundle), d_ff=int(d_ff), dropout=dropout)
    model = MusicModel(cfg)
    head = weights.pop("head.weight", None)
    if head is not None and not np.array_equal(head, weights.get("embed.weight")):
        raise FromBundleError("the output head differs from the embedding (the model ties them)")
    sd = model.state_dict()
    sd.pop("head.weight")  # tied to embed.weight
    missing, extra = sorted(set(sd) - set(weights)), sorted(set(weights) - set(sd))
    if missing or extra:
        raise FromBundleError(f"bundle {bundle.path}: missing {missing[:3]}, unexpected {extra[:3]}")
    for k, v in sd.items():
        if tuple(v.shape) != weights[k].shape:
            raise FromBundleError(f"bundle {bundle.path}: {k} has shape {weights[k].shape}, model expects {tuple(v.shape)}")
    model.load_state_dict({k: torch.from_numpy(np.array(v, np.float32)) for k, v in weights.items()}, strict=False)
    return model.eval()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="rebuild a training checkpoint from a bundle's ONNX graphs")
    ap.add_argument("--bundle", default=None, help="bundle folder (default: the shipped default)")
    ap.add_argument("--out", required=True, help="checkpoint file to write (model.safetensors)")
    ap.add_argument("--dropout", type=float, default=0.1, help="dropout recorded for fine-tuning from it")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from training.train import TrainConfig, save_checkpoint
    bundle = load_bundle(args.bundle)
    model = model_from_bundle(bundle.path, dropout=args.dropout)
    out = Path(args.out)
    cfg = TrainConfig(name=bundle.name, stage="finetune", out_dir=str(out.parent), model=model.cfg.to_dict(),
                      encoder=bundle.image_encoder.encoder)
    save_checkpoint(model, None, 0, cfg, {"train": [], "val": {}}, out.parent,
                    extra={"from_bundle": str(bundle.path)})
    if out.name != "model.safetensors":
        (out.parent / "model.safetensors").replace(out)
    print(json.dumps({"checkpoint": str(out), "params": model.num_params(), "config": model.cfg.to_dict()}))


if __name__ == "__main__":
    main()
