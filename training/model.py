"""Moodroll's music model: a small Transformer decoder over REMI tokens, conditioned on emotion.

Shapes follow docs/bundle.md (the contract with the engine):

* :class:`Condition` turns a VA point (1-9 scale) and/or image tokens from the frozen image
  encoder into a short *condition memory* of ``1 + image_tokens`` vectors. A part that is
  switched off (``use_va = 0`` / ``use_image = 0``) is replaced by a learned null embedding,
  so image-only, VA-only and unconditioned generation all use the same graph (the model is
  trained with condition dropout).
* :class:`Block` is pre-norm: causal self-attention with rotary positions (RoPE) and a KV
  cache, cross-attention to the condition memory, a feed-forward layer.
* :meth:`MusicModel.cross_kv` projects the memory to every layer's cross-attention keys and
  values once; steering (a new picture or VA point) recomputes only these, the self-attention
  cache continues. :meth:`MusicModel.step` is the cached decoder step the engine runs.

Self-attention keys are cached already rotated, so attention depends only on position
differences and a stream can re-prime (re-run a suffix at positions 0..n-1) without drift.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.emotion.va import VA_MAX, VA_MID, VA_MIN


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 404
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 1024
    max_context: int = 512  # training window (BOS included); streams re-prime beyond it
    reprime_keep: int = 256  # tokens kept (from a Bar) when a stream re-primes
    rope_base: float = 10000.0
    dropout: float = 0.1
    image_tokens: int = 4  # Ni: image tokens from the encoder
    image_dim: int = 1280  # Dc: their width

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def memory_len(self) -> int:
        return 1 + self.image_tokens

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# -- rotary positions and the attention mask (computed once per step, shared by every layer) --
def rope_tables(positions: torch.Tensor, dh: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [B, 1, T, Dh/2] of the rotary angles of ``positions`` [B, T]."""
    inv_freq = 1.0 / (base ** (torch.arange(0, dh, 2, dtype=torch.float32, device=positions.device) / dh))
    angles = positions.to(torch.float32)[:, None, :, None] * inv_freq
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Half-split RoPE (as in GPT-NeoX) of ``x`` [..., T, Dh] with tables from :func:`rope_tables`."""
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def rope(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """Rotate ``x`` [B, H, T, Dh] by its ``positions`` [B, T]."""
    return rotate(x, *rope_tables(positions, x.shape[-1], base))


def causal_bias(T: int, P: int, device=None) -> torch.Tensor:
    """Additive mask [T, P+T]: new token i sees every past entry and new tokens j <= i (0 / -inf)."""
    j = torch.arange(P + T, device=device)[None, :]
    i = torch.arange(T, device=device)[:, None] + P
    return torch.zeros(T, P + T, device=device).masked_fill(j > i, float("-inf"))


def attend(q, k, v, bias=None, dropout_p: float = 0.0):
    """softmax(q k^T / sqrt(Dh) + bias) v for q [B, H, T, Dh], k/v [B, H, S, Dh].

    Torch runs its fused ``scaled_dot_product_attention``; the ONNX export writes the plain
    matmuls instead, which ONNX Runtime fuses into FusedMatMul (k^T and the scale folded in,
    only q is scaled) rather than SDPA's exported form that transposes and scales the whole
    key cache in every layer. Both are the same math (parity: tests/test_export_parity.py).
    """
    if not torch.onnx.is_in_onnx_export():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p)
    scores = torch.matmul(q * (1.0 / math.sqrt(q.shape[-1])), k.transpose(-2, -1))
    if bias is not None:
        scores = scores + bias
    return torch.matmul(scores.softmax(dim=-1), v)


# -- layers ---------------------------------------------------------------------------------
class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, rope_cs, bias, past_k, past_v):
        """x [B, T, D]; rope_cs = :func:`rope_tables` of the positions; bias = :func:`causal_bias`;
        past_k/v [B, H, P, Dh] (rotated). Returns y and present k/v [B, H, P+T, Dh]."""
        H, Dh = self.cfg.n_heads, self.cfg.head_dim
        qkv = self.qkv(x).unflatten(-1, (3, H, Dh)).permute(2, 0, 3, 1, 4)  # [3, B, H, T, Dh]
        q, k = rotate(qkv[:2], *rope_cs).unbind(0)  # q and k rotated together
        k = torch.cat([past_k, k], dim=2)
        v = torch.cat([past_v, qkv[2]], dim=2)
        y = attend(q, k, v, bias, dropout_p=self.cfg.dropout if self.training else 0.0)
        return self.drop(self.out(y.transpose(1, 2).flatten(2))), k, v


class CrossAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.q = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.drop = nn.Dropout(cfg.dropout)

    def memory_kv(self, memory):
        """memory [B, M, D] -> k, v [B, H, M, Dh] (what condition.onnx outputs)."""
        B, M, _ = memory.shape
        k, v = self.kv(memory).view(B, M, 2, self.cfg.n_heads, self.cfg.head_dim).permute(2, 0, 3, 1, 4)
        return k, v

    def forward(self, x, k, v):
        q = self.q(x).unflatten(-1, (self.cfg.n_heads, self.cfg.head_dim)).transpose(1, 2)
        y = attend(q, k, v)
        return self.drop(self.out(y.transpose(1, 2).flatten(2)))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(cfg.d_model) for _ in range(3))
        self.attn = SelfAttention(cfg)
        self.cross = CrossAttention(cfg)
        self.ff = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model),
                                nn.Dropout(cfg.dropout))

    def forward(self, x, rope_cs, bias, past_k, past_v, cross_k, cross_v):
        a, k, v = self.attn(self.ln1(x), rope_cs, bias, past_k, past_v)
        x = x + a
        x = x + self.cross(self.ln2(x), cross_k, cross_v)
        x = x + self.ff(self.ln3(x))
        return x, k, v


class Condition(nn.Module):
    """VA point and image tokens -> condition memory [B, 1 + Ni, D], nulls where switched off."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.va_mlp = nn.Sequential(nn.Linear(2, cfg.d_model), nn.GELU(), nn.Linear(cfg.d_model, cfg.d_model))
        self.img_norm = nn.LayerNorm(cfg.image_dim)
        self.img_proj = nn.Linear(cfg.image_dim, cfg.d_model)
        self.img_pos = nn.Parameter(torch.randn(cfg.image_tokens, cfg.d_model) * 0.02)
        self.null_va = nn.Parameter(torch.randn(1, cfg.d_model) * 0.02)
        self.null_image = nn.Parameter(torch.randn(cfg.image_tokens, cfg.d_model) * 0.02)
        self.ln = nn.LayerNorm(cfg.d_model)

    def forward(self, va, use_va, image_tokens, use_image):
        """va [B, 2] on 1-9, use_va [B, 1], image_tokens [B, Ni, Dc], use_image [B, 1]."""
        unit = (va.clamp(VA_MIN, VA_MAX) - VA_MID) / (VA_MAX - VA_MID)  # engine.emotion.va's 'unit' scale
        va_emb = self.va_mlp(unit)[:, None, :]
        img = self.img_proj(self.img_norm(image_tokens)) + self.img_pos
        u_va, u_img = use_va[:, :, None], use_image[:, :, None]
        va_emb = u_va * va_emb + (1 - u_va) * self.null_va
        img = u_img * img + (1 - u_img) * self.null_image
        return self.ln(torch.cat([va_emb, img], dim=1))


class MusicModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.condition = Condition(cfg)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.embed.weight  # tied
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith("out.weight") or name.endswith("ff.2.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- the three pieces the bundle exports ----------------------------------------------
    def cross_kv(self, va, use_va, image_tokens, use_image) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Condition -> [(cross_k, cross_v)] per layer, each [B, H, M, Dh]."""
        memory = self.condition(va, use_va, image_tokens, use_image)
        return [blk.cross.memory_kv(memory) for blk in self.blocks]

    def step(self, input_ids, positions, past, cross):
        """Cached step: input_ids/positions [B, T]; past [(k, v)] per layer with [B, H, P, Dh];
        cross [(k, v)] per layer. Returns logits [B, T, V] and present [(k, v)] with P+T entries."""
        x = self.drop(self.embed(input_ids))
        rope_cs = rope_tables(positions, self.cfg.head_dim, self.cfg.rope_base)
        bias = causal_bias(input_ids.shape[1], past[0][0].shape[2], input_ids.device)
        present = []
        for blk, (pk, pv), (ck, cv) in zip(self.blocks, past, cross):
            x, k, v = blk(x, rope_cs, bias, pk, pv, ck, cv)
            present.append((k, v))
        return self.head(self.ln_f(x)), present

    def empty_past(self, batch: int = 1, device=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        shape = (batch, self.cfg.n_heads, 0, self.cfg.head_dim)
        return [(torch.zeros(shape, device=device), torch.zeros(shape, device=device)) for _ in self.blocks]

    # -- training -------------------------------------------------------------------------
    def forward(self, input_ids, va, use_va, image_tokens, use_image):
        """Full sequence (positions 0..T-1, no cache) -> logits [B, T, V]."""
        B, T = input_ids.shape
        positions = torch.arange(T, device=input_ids.device)[None].expand(B, T)
        cross = self.cross_kv(va, use_va, image_tokens, use_image)
        logits, _ = self.step(input_ids, positions, self.empty_past(B, input_ids.device), cross)
        return logits

    def null_condition(self, batch: int = 1, device=None):
        """Inputs for unconditioned generation: (va, use_va, image_tokens, use_image)."""
        c = self.cfg
        return (torch.full((batch, 2), VA_MID, device=device), torch.zeros(batch, 1, device=device),
                torch.zeros(batch, c.image_tokens, c.image_dim, device=device), torch.zeros(batch, 1, device=device))
