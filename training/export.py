"""Write a model bundle (docs/bundle.md, format ``moodroll-bundle/1`` or ``/2``) for the engine.

    python -m training.export --checkpoint runs/default_finetune/model.safetensors --out assets/models/default
    python -m training.export --random --out /tmp/bundle      # tiny random weights (tests, engine dev)
    python -m training.export --from-bundle assets/models/default --format 2 --out /tmp/default2  # re-export

Files: ``image_encoder.onnx`` (frozen CNN + image->VA head), ``condition.onnx`` (VA and/or image
tokens -> cross-attention K/V of every layer), ``decoder_step.onnx`` (tokens + past self-attention
K/V + cross K/V -> logits + present K/V), ``tokenizer.json``, ``config.json``, ``model_card.md``
and ``manifest.json`` (SHA-256 of every other file). Graphs are float32 with dynamic batch B,
new-token count T and past length P (P = 0 works: an empty past).

``--format 2`` writes the fixed-capacity cache decoder instead (:class:`FixedCacheDecoderGraph`):
it reads the engine's pre-allocated K/V buffers [B, H, C, Dh] up to each row's ``cache_len``
and outputs only the new keys/values [B, H, T, Dh], so a step copies no past entries.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from engine.model.bundle import sha256_file as sha256, write_manifest  # one definition
from engine.music.tokenizer import Tokenizer
from training.encoders import ImageEncoder, build_encoder
from training.model import ModelConfig, MusicModel, causal_bias, rope_tables, rotate
from training.va_head import DEFAULT_DIR as VA_HEAD_DIR
from training.va_head import VAHead, load_va_head

BUNDLE_FORMATS = {1: "moodroll-bundle/1", 2: "moodroll-bundle/2"}
BUNDLE_FORMAT = BUNDLE_FORMATS[1]

OPSET = 18

# the --random bundle: a tiny decoder, the real encoder architecture with random weights
TINY = ModelConfig(d_model=64, n_layers=2, n_heads=2, d_ff=128, max_context=128, reprime_keep=64, dropout=0.0)


# -- the three exported graphs ------------------------------------------------------------------
class ImageGraph(nn.Module):
    def __init__(self, encoder: ImageEncoder, head: VAHead):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, image):
        tokens = self.encoder(image)
        return tokens, self.head(tokens.mean(dim=1))


class ConditionGraph(nn.Module):
    def __init__(self, model: MusicModel):
        super().__init__()
        self.model = model

    def forward(self, va, use_va, image_tokens, use_image):
        out = []
        for k, v in self.model.cross_kv(va, use_va, image_tokens, use_image):
            out += [k, v]
        return tuple(out)


class DecoderGraph(nn.Module):
    """Flat inputs: input_ids, positions, past_key_0, past_value_0, ..., cross_key_0, cross_value_0, ..."""

    def __init__(self, model: MusicModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids, positions, *kv):
        L = self.model.cfg.n_layers
        past = [(kv[2 * i], kv[2 * i + 1]) for i in range(L)]
        cross = [(kv[2 * L + 2 * i], kv[2 * L + 2 * i + 1]) for i in range(L)]
        logits, present = self.model.step(input_ids, positions, past, cross)
        return (logits, *[t for kv_ in present for t in kv_])


class _FixedSelfAttention(nn.Module):
    """Self-attention over the fixed buffers (shares ``attn.qkv``/``attn.out`` with the model)."""

    def __init__(self, attn: nn.Module, n_heads: int, head_dim: int):
        super().__init__()
        self.qkv, self.out = attn.qkv, attn.out
        self.n_heads, self.head_dim = n_heads, head_dim

    def forward(self, x, B, T, cap, cos, sin, rot, past_k, past_v, past_bias, new_bias):
        H, Dh = self.n_heads, self.head_dim
        qkv = self.qkv(x).reshape(B, T, 3 * H, Dh).transpose(1, 2)  # [B, 3H, T, Dh]
        qk = qkv[:, :2 * H]
        qk = qk * cos + torch.matmul(qk, rot) * sin
        q, k, v = qk[:, :H] * (1.0 / math.sqrt(Dh)), qk[:, H:], qkv[:, 2 * H:]
        scores = torch.cat([torch.matmul(q, past_k.transpose(-2, -1)) + past_bias,
                            torch.matmul(q, k.transpose(-2, -1)) + new_bias], dim=-1).softmax(dim=-1)
        y = torch.matmul(scores[..., :cap], past_v) + torch.matmul(scores[..., cap:], v)
        return self.out(y.transpose(1, 2).reshape(B, T, H * Dh)), k, v


class _FixedCrossAttention(nn.Module):
    """Cross-attention to the condition's K/V (shares ``cross.q``/``cross.out`` with the model)."""

    def __init__(self, cross: nn.Module, n_heads: int, head_dim: int):
        super().__init__()
        self.q, self.out = cross.q, cross.out
        self.n_heads, self.head_dim = n_heads, head_dim

    def forward(self, x, B, T, k, v):
        q = self.q(x).reshape(B, T, self.n_heads, self.head_dim).transpose(1, 2) * (1.0 / math.sqrt(self.head_dim))
        y = torch.matmul(torch.matmul(q, k.transpose(-2, -1)).softmax(dim=-1), v)
        return self.out(y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))


class _FixedBlock(nn.Module):
    """One decoder layer of the format-2 graph; its submodules carry the model's names
    (ln1, attn.qkv, cross.q, ff.0, ...), so the exported nodes and weights are named as in format 1."""

    def __init__(self, blk: nn.Module, n_heads: int, head_dim: int):
        super().__init__()
        self.ln1, self.ln2, self.ln3, self.ff = blk.ln1, blk.ln2, blk.ln3, blk.ff
        self.attn = _FixedSelfAttention(blk.attn, n_heads, head_dim)
        self.cross = _FixedCrossAttention(blk.cross, n_heads, head_dim)

    def forward(self, x, B, T, cap, cos, sin, rot, past_k, past_v, past_bias, new_bias, cross_k, cross_v):
        a, k, v = self.attn(self.ln1(x), B, T, cap, cos, sin, rot, past_k, past_v, past_bias, new_bias)
        x = x + a
        x = x + self.cross(self.ln2(x), B, T, cross_k, cross_v)
        return x + self.ff(self.ln3(x)), k, v


class _FixedModel(nn.Module):
    """The model's embedding, layers, final norm and head, as the format-2 graph uses them."""

    def __init__(self, model: MusicModel):
        super().__init__()
        c = model.cfg
        self.cfg = c
        self.embed, self.ln_f, self.head = model.embed, model.ln_f, model.head
        self.blocks = nn.ModuleList(_FixedBlock(b, c.n_heads, c.head_dim) for b in model.blocks)


class FixedCacheDecoderGraph(nn.Module):
    """Format 2. Flat inputs: input_ids, positions [B, T], cache_len [B] (valid past entries per
    row), past_key_0, past_value_0, ... [B, H, C, Dh] (fixed capacity C; entries >= cache_len are
    masked out), cross_key_0, cross_value_0, ...  Outputs: logits [B, T, V], new_key_0,
    new_value_0, ... [B, H, T, Dh] (rotated), which the engine writes into its buffers at
    cache_len.. in place. Attention is split into a past part and a new part that share one
    softmax, so neither the past nor the new keys are ever concatenated: the same math as
    :meth:`MusicModel.step` (parity: tests/test_export_parity.py).

    Written for a small graph (219 nodes after ONNX Runtime's fusions for the shipped shapes,
    format 1 has 273): every reshape uses the input's B and T; q and k of all heads are rotated
    together, the half-split RoPE as ``x cos + (x R) sin`` with a constant [Dh, Dh] matrix R (one
    MatMul instead of slices and a concat per layer). The layers are modules named like the
    model's (``blocks.{l}.attn.qkv``, ...), so ``training/from_bundle.py`` reads both formats alike."""

    def __init__(self, model: MusicModel):
        super().__init__()
        self.model = _FixedModel(model)
        dh, h = model.cfg.head_dim, model.cfg.head_dim // 2
        rot = torch.zeros(dh, dh)
        rot[h:, :h], rot[:h, h:] = -torch.eye(h), torch.eye(h)  # x @ rot = cat(-x2, x1)
        self.register_buffer("rot", rot, persistent=False)

    def forward(self, input_ids, positions, cache_len, *kv):
        m, c = self.model, self.model.cfg
        L, Dh = c.n_layers, c.head_dim
        B, T = input_ids.shape  # read once: every reshape of every layer uses them
        x = m.embed(input_ids)
        cos, sin = rope_tables(positions, Dh, c.rope_base)  # [B, 1, T, Dh/2]
        cos, sin = torch.cat([cos, cos], -1), torch.cat([sin, sin], -1)
        cap = kv[0].shape[2]
        invalid = torch.arange(cap, device=input_ids.device)[None, :] >= cache_len[:, None]  # [B, C]
        past_bias = torch.zeros(invalid.shape, device=input_ids.device).masked_fill(invalid, float("-inf"))
        past_bias = past_bias[:, None, None, :]  # [B, 1, 1, C]
        new_bias = causal_bias(T, 0, input_ids.device)  # [T, T]
        new_kv = []
        for i, blk in enumerate(m.blocks):
            x, k, v = blk(x, B, T, cap, cos, sin, self.rot, kv[2 * i], kv[2 * i + 1], past_bias, new_bias,
                          kv[2 * L + 2 * i], kv[2 * L + 2 * i + 1])
            new_kv += [k, v]
        return (m.head(m.ln_f(x)), *new_kv)


def names(n_layers: int, kind: str) -> list[str]:
    return [f"{kind}_{w}_{i}" for i in range(n_layers) for w in ("key", "value")]


def _export(module, args, path: Path, input_names, output_names, dynamic: dict) -> None:
    """torch.onnx.export with named dynamic axes (dynamic = {input or output name: {axis: name}}).

    The TorchScript exporter (``dynamo=False``) is used: it traces these small graphs in about
    2 s where the dynamo exporter takes a minute, and its graphs match torch to ~1e-7
    (tests/test_export_parity.py); an empty past (P = 0) works.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False, do_constant_folding=True)


def export_image_encoder(encoder: ImageEncoder, head: VAHead, path: Path) -> None:
    x = torch.randn(2, 3, encoder.size, encoder.size)
    _export(ImageGraph(encoder, head).eval(), (x,), path, ["image"], ["image_tokens", "va"],
            {"image": {0: "batch"}, "image_tokens": {0: "batch"}, "va": {0: "batch"}})


def export_condition(model: MusicModel, path: Path) -> None:
    c = model.cfg
    args = (torch.full((2, 2), 5.0), torch.ones(2, 1), torch.randn(2, c.image_tokens, c.image_dim), torch.ones(2, 1))
    ins, outs = ["va", "use_va", "image_tokens", "use_image"], names(c.n_layers, "cross")
    _export(ConditionGraph(model).eval(), args, path, ins, outs, {n: {0: "batch"} for n in ins + outs})


def export_decoder(model: MusicModel, path: Path) -> None:
    c = model.cfg
    b, t, p = 2, 3, 5  # sample sizes >= 2 so no axis is frozen
    kv = [torch.randn(b, c.n_heads, p, c.head_dim) for _ in range(2 * c.n_layers)]
    kv += [torch.randn(b, c.n_heads, c.memory_len, c.head_dim) for _ in range(2 * c.n_layers)]
    args = (torch.randint(0, c.vocab_size, (b, t)), torch.arange(p, p + t).repeat(b, 1), *kv)
    ins = ["input_ids", "positions", *names(c.n_layers, "past"), *names(c.n_layers, "cross")]
    outs = ["logits", *names(c.n_layers, "present")]
    dyn = {"input_ids": {0: "batch", 1: "T"}, "positions": {0: "batch", 1: "T"}, "logits": {0: "batch", 1: "T"}}
    dyn.update({n: {0: "batch", 2: "P"} for n in names(c.n_layers, "past")})
    dyn.update({n: {0: "batch", 2: "P_plus_T"} for n in names(c.n_layers, "present")})
    dyn.update({n: {0: "batch", 2: "M"} for n in names(c.n_layers, "cross")})
    _export(DecoderGraph(model).eval(), args, path, ins, outs, dyn)


def export_fixed_decoder(model: MusicModel, path: Path) -> None:
    """Format 2's decoder_step.onnx (:class:`FixedCacheDecoderGraph`)."""
    c = model.cfg
    b, t, cap = 2, 3, 7  # sample sizes >= 2 so no axis is frozen
    kv = [torch.randn(b, c.n_heads, cap, c.head_dim) for _ in range(2 * c.n_layers)]
    kv += [torch.randn(b, c.n_heads, c.memory_len, c.head_dim) for _ in range(2 * c.n_layers)]
    lens = torch.tensor([4, 2])
    args = (torch.randint(0, c.vocab_size, (b, t)), lens[:, None] + torch.arange(t), lens, *kv)
    ins = ["input_ids", "positions", "cache_len", *names(c.n_layers, "past"), *names(c.n_layers, "cross")]
    outs = ["logits", *names(c.n_layers, "new")]
    dyn = {"input_ids": {0: "batch", 1: "T"}, "positions": {0: "batch", 1: "T"}, "logits": {0: "batch", 1: "T"},
           "cache_len": {0: "batch"}}
    dyn.update({n: {0: "batch", 2: "C"} for n in names(c.n_layers, "past")})
    dyn.update({n: {0: "batch", 2: "T"} for n in names(c.n_layers, "new")})
    dyn.update({n: {0: "batch", 2: "M"} for n in names(c.n_layers, "cross")})
    _export(FixedCacheDecoderGraph(model).eval(), args, path, ins, outs, dyn)


def export_parts(model: MusicModel, folder: Path, fmt: int = 1) -> None:
    """Only condition.onnx and decoder_step.onnx (fast; the parity test uses this)."""
    export_condition(model, folder / "condition.onnx")
    (export_fixed_decoder if fmt == 2 else export_decoder)(model, folder / "decoder_step.onnx")


# -- the bundle ---------------------------------------------------------------------------------
def bundle_config(model: MusicModel, encoder: ImageEncoder, tok: Tokenizer, name: str, fmt: int = 1) -> dict:
    c = model.cfg
    decoder = {"file": "decoder_step.onnx", "n_layers": c.n_layers, "n_heads": c.n_heads,
               "head_dim": c.head_dim, "d_model": c.d_model, "vocab_size": c.vocab_size,
               "max_context": c.max_context, "reprime_keep": c.reprime_keep, "rope_base": c.rope_base}
    if fmt == 2:
        decoder.update(cache="fixed", d_ff=c.d_ff)
    return {
        "format": BUNDLE_FORMATS[fmt],
        "name": name,
        "tokenizer": "tokenizer.json",
        "image_encoder": {"file": "image_encoder.onnx", **{k: v for k, v in encoder.describe().items()}},
        "condition": {"file": "condition.onnx", "memory_len": c.memory_len},
        "decoder": decoder,
        "special_tokens": {"bos": tok.groups.bos, "eos": tok.groups.eos, "pad": tok.groups.pad},
        "va_scale": [1.0, 9.0],
    }


def export_bundle(model: MusicModel, encoder: ImageEncoder | None, head: VAHead | None, out: str | Path,
                  name: str = "default", model_card: str = "", extra_files: dict | None = None,
                  fmt: int = 1, image_encoder: Path | None = None) -> Path:
    """Write every bundle file into ``out`` (replacing what is there); returns the folder.
    ``image_encoder``: an existing image_encoder.onnx to copy instead of exporting ``encoder``
    (then ``encoder`` may be None: its config.json section is read beside that file)."""
    out = Path(out)
    tok = Tokenizer()
    if tok.vocab_size != model.cfg.vocab_size:
        raise ValueError(f"model vocabulary {model.cfg.vocab_size} != tokenizer's {tok.vocab_size}")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model = model.eval()
    if image_encoder is None:
        export_image_encoder(encoder, head.eval(), tmp / "image_encoder.onnx")
    else:
        shutil.copyfile(image_encoder, tmp / "image_encoder.onnx")
    export_parts(model, tmp, fmt)
    tok.save(tmp / "tokenizer.json")
    cfg = bundle_config(model, encoder, tok, name, fmt) if encoder is not None else None
    if cfg is None:  # re-export: the image encoder section comes from the source bundle
        src = json.loads((Path(image_encoder).parent / "config.json").read_text())
        cfg = bundle_config(model, _Described(src["image_encoder"]), tok, name, fmt)
    (tmp / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    (tmp / "model_card.md").write_text(model_card or f"# {name}\n\nNo model card given.\n")
    for fname, src in (extra_files or {}).items():
        shutil.copyfile(src, tmp / fname)
    write_manifest(tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


class _Described:
    """Stands in for an ImageEncoder whose graph is copied from another bundle (only describe())."""

    def __init__(self, section: dict):
        self.section = {k: v for k, v in section.items() if k != "file"}

    def describe(self) -> dict:
        return self.section


def reexport_bundle(src: str | Path, out: str | Path, fmt: int = 2) -> Path:
    """The bundle ``src`` re-exported in format ``fmt`` with the same weights: the decoder and
    condition graphs are rebuilt from its ONNX initializers (training/from_bundle.py) and
    re-exported; the image encoder graph, model card and any extra files are copied."""
    from engine.model.bundle import load_bundle
    from training.from_bundle import model_from_bundle

    b = load_bundle(src)
    model = model_from_bundle(b.path)
    keep = {"config.json", "manifest.json", "tokenizer.json", "condition.onnx", "decoder_step.onnx",
            b.image_encoder.file, "model_card.md"}
    extra = {p.name: p for p in b.path.iterdir() if p.is_file() and p.name not in keep}
    card = b.file("model_card.md").read_text() if b.file("model_card.md").is_file() else ""
    return export_bundle(model, None, None, out, name=b.name, model_card=card, extra_files=extra, fmt=fmt,
                         image_encoder=b.file(b.image_encoder.file))


RANDOM_CARD = """# random (untrained) bundle

Random weights (seed {seed}) for tests and engine development: the decoder is tiny
({params} parameters: {cfg}); the image encoder is EfficientNet-Lite0 with random weights and the
image->VA head predicts the middle of the scale. Its music is noise. Written by
`python -m training.export --random --out DIR`.
"""


def random_bundle(out: str | Path, seed: int = 0, cfg: ModelConfig = TINY, fmt: int = 1,
                  image_encoder_from: str | Path | None = None) -> Path:
    """A bundle with tiny (or ``cfg``-sized) random weights (no data, no pretrained files needed).
    The decoder weights depend only on ``seed`` and ``cfg``, so formats 1 and 2 of one seed hold the
    same model. ``image_encoder_from``: copy that bundle's image encoder graph (fast) instead of
    exporting a random EfficientNet."""
    torch.manual_seed(seed)
    tok = Tokenizer()
    from dataclasses import replace
    cfg = replace(cfg, vocab_size=tok.vocab_size)
    model = MusicModel(cfg).eval()
    if image_encoder_from is not None:
        card = RANDOM_CARD.format(seed=seed, params=f"{model.num_params():,}", cfg=cfg)
        return export_bundle(model, None, None, out, name="random", model_card=card, fmt=fmt,
                             image_encoder=Path(image_encoder_from) / "image_encoder.onnx")
    encoder = build_encoder("efficientnet_lite0", pretrained=False)
    head = VAHead(encoder.dim)
    card = RANDOM_CARD.format(seed=seed, params=f"{model.num_params():,}", cfg=cfg)
    return export_bundle(model, encoder, head, out, name="random", model_card=card, fmt=fmt)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="write a Moodroll model bundle (docs/bundle.md)")
    ap.add_argument("--out", required=True, help="the bundle folder to (re)write")
    ap.add_argument("--checkpoint", help="a training checkpoint (model.safetensors)")
    ap.add_argument("--random", action="store_true", help="tiny random weights instead of a checkpoint")
    ap.add_argument("--va-head", default=None, help="image->VA head (default runs/va_head/<encoder>.safetensors)")
    ap.add_argument("--model-card", default=None, help="a Markdown file to ship as model_card.md")
    ap.add_argument("--name", default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--format", type=int, choices=sorted(BUNDLE_FORMATS), default=1,
                    help="bundle format: 1 = growing past/present cache, 2 = fixed-capacity in-place cache")
    ap.add_argument("--from-bundle", default=None, help="re-export this bundle's weights in --format")
    ap.add_argument("--threads", type=int, default=2, help="torch threads while exporting")
    ap.add_argument("--image-encoder-from", default=None, help="--random only: copy this bundle's image encoder")
    for k in ("d_model", "n_layers", "n_heads", "d_ff", "max_context", "reprime_keep"):
        ap.add_argument(f"--{k.replace('_', '-')}", type=int, default=None, help=f"--random only: {k}")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.random:
        from dataclasses import replace
        dims = {k: getattr(args, k) for k in ("d_model", "n_layers", "n_heads", "d_ff", "max_context", "reprime_keep")
                if getattr(args, k) is not None}
        out = random_bundle(args.out, seed=args.seed, cfg=replace(TINY, **dims), fmt=args.format,
                            image_encoder_from=args.image_encoder_from)
    elif args.from_bundle:
        out = reexport_bundle(args.from_bundle, args.out, fmt=args.format)
    elif args.checkpoint:
        from training.train import load_checkpoint
        model, meta = load_checkpoint(args.checkpoint)
        enc_name = meta["train_config"].get("encoder", "efficientnet_lite0")
        encoder = build_encoder(enc_name, pretrained=True)
        head_path = Path(args.va_head) if args.va_head else VA_HEAD_DIR / f"{enc_name}.safetensors"
        if not head_path.is_file():
            from training.va_head import train_va_head
            train_va_head(enc_name, out=head_path)
        head, _ = load_va_head(head_path)
        card = Path(args.model_card).read_text() if args.model_card else ""
        out = export_bundle(model, encoder, head, args.out, name=args.name, model_card=card, fmt=args.format)
    else:
        ap.error("give --checkpoint PATH, --from-bundle DIR or --random")
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} ({total / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
