"""The paper's image-to-MIDI model, and its VGG16 image-feature head.

Kundu, Singh & Iwahori (2024), Sec. 3 / Fig. 2, and the authors' Keras code
(github.com/SourajaKundu/Emotion-Guided-Image-to-Music-Generation, ``trainTrans_VA_loss.py``):

    image features --Dropout(0.5)--Dense(d, ReLU)--------------------------+
                                                                            Add --> M decoder blocks
    MIDI prefix --Embedding(d)--Dropout(0.2)--N encoder blocks--GlobalAvgPool+        --> Dense(ReLU)
                                                                                      --> softmax(V)

The model predicts the next token from (image, prefix). The authors build one training
sample per prefix (``seq[:i] -> seq[i]``); here every prefix of a clip is computed in ONE
pass: causal self-attention, and the global average pooling of prefix ``seq[:i]`` is the
running mean of the encoder outputs up to position i (:func:`prefix_mean`). The result for
position i is what a per-prefix model with *causal* attention inside the prefix computes
(the authors' Keras attention is unmasked inside the prefix; with causal masks the whole
clip costs one forward pass instead of one per token).

Differences from the authors' code, on purpose: our blocks are standard pre-norm
Transformer blocks (attention + feed-forward, residual connections, learned positions);
the authors' Keras "blocks" are a MultiHeadAttention + LayerNorm without residual or
feed-forward, and no positional encoding. Their decoder "blocks" attend over a length-1
sequence (the merged vector), which is a per-position dense layer; ours attend causally over
the merged sequence. Widths are smaller (d_model 128 vs 256) for a 2-core CPU budget.

Configurations (the paper's ablations): ``enc3_dec3`` (VGG16 and InceptionV3 features),
``enc4`` (4 encoder blocks, no decoder blocks), ``enc2_dec2``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from training.encoders import VGG16


@dataclass(frozen=True)
class PaperModelConfig:
    vocab_size: int
    image_dim: int
    n_enc: int = 3  # Transformer encoder blocks over the MIDI prefix
    n_dec: int = 3  # Transformer decoder blocks after the merge (0 for "enc4")
    d_model: int = 128  # the authors used 256
    n_heads: int = 4
    d_ff: int = 256
    dense: int = 256  # the dense ReLU layer before the softmax (authors: 256)
    max_len: int = 512
    dropout: float = 0.2  # authors: 0.2 after embedding/attention
    image_dropout: float = 0.5  # authors: Dropout(0.5) on the image features
    pad_id: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


CONFIGS = {  # name -> (n_enc, n_dec)
    "enc3_dec3": (3, 3),
    "enc4": (4, 0),
    "enc2_dec2": (2, 2),
}


class Block(nn.Module):
    """Pre-norm Transformer block: causal multi-head self-attention + ReLU feed-forward."""

    def __init__(self, d: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, d_ff), nn.ReLU(), nn.Linear(d_ff, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.n_heads, D // self.n_heads).unbind(2)
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           is_causal=True, dropout_p=self.drop.p if self.training else 0.0)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(B, T, D)))
        return x + self.drop(self.ff(self.ln2(x)))

    def step(self, x: torch.Tensor, cache: tuple | None) -> tuple[torch.Tensor, tuple]:
        """One new position x [B, 1, D] attending to the cached keys/values (generation)."""
        B, _, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, 1, 3, self.n_heads, D // self.n_heads).unbind(2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if cache is not None:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        a = F.scaled_dot_product_attention(q, k, v)
        x = x + self.proj(a.transpose(1, 2).reshape(B, 1, D))
        return x + self.ff(self.ln2(x)), (k, v)


def prefix_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Global average pooling of every prefix: out[:, i] = mean of x[:, :i+1] over mask."""
    m = mask.to(x.dtype)[..., None]
    return torch.cumsum(x * m, dim=1) / torch.cumsum(m, dim=1).clamp(min=1.0)


class PaperModel(nn.Module):
    """Image features + MIDI prefix -> next-token logits at every position."""

    def __init__(self, cfg: PaperModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.image_in = nn.Sequential(nn.Dropout(cfg.image_dropout), nn.Linear(cfg.image_dim, d), nn.ReLU())
        self.tok_emb = nn.Embedding(cfg.vocab_size, d)
        self.pos_emb = nn.Embedding(cfg.max_len, d)
        self.drop = nn.Dropout(cfg.dropout)
        self.encoder = nn.ModuleList([Block(d, cfg.n_heads, cfg.d_ff, cfg.dropout) for _ in range(cfg.n_enc)])
        self.enc_ln = nn.LayerNorm(d)
        self.decoder = nn.ModuleList([Block(d, cfg.n_heads, cfg.d_ff, cfg.dropout) for _ in range(cfg.n_dec)])
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, cfg.dense), nn.ReLU(), nn.Dropout(cfg.dropout),
                                  nn.Linear(cfg.dense, cfg.vocab_size))

    def forward(self, image: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """image [B, image_dim], ids [B, T] (right-padded) -> logits [B, T, V]; logits[:, t]
        predicts ids[:, t + 1]."""
        B, T = ids.shape
        if T > self.cfg.max_len:
            raise ValueError(f"sequence of {T} tokens exceeds max_len {self.cfg.max_len}")
        x = self.drop(self.tok_emb(ids) + self.pos_emb(torch.arange(T, device=ids.device)))
        for blk in self.encoder:
            x = blk(x)
        pooled = prefix_mean(self.enc_ln(x), ids != self.cfg.pad_id)  # GlobalAveragePooling1D
        h = pooled + self.image_in(image)[:, None, :]  # Add() merge
        for blk in self.decoder:
            h = blk(h)
        return self.head(h)

    @torch.no_grad()
    def step(self, image: torch.Tensor, token: torch.Tensor, pos: int, state: dict | None) -> tuple[torch.Tensor, dict]:
        """Incremental decoding (eval mode): image [B, image_dim], token [B] at position
        ``pos`` -> logits [B, V] for the next token, and the updated cache. Same numbers as
        :meth:`forward` on the whole prefix (KV caches + a running pooled sum)."""
        state = state or {"enc": [None] * len(self.encoder), "dec": [None] * len(self.decoder),
                          "sum": 0.0, "n": 0.0, "img": self.image_in(image)[:, None, :]}
        x = self.tok_emb(token)[:, None, :] + self.pos_emb.weight[pos]
        for i, blk in enumerate(self.encoder):
            x, state["enc"][i] = blk.step(x, state["enc"][i])
        real = (token != self.cfg.pad_id).to(x.dtype)[:, None, None]
        state["sum"] = state["sum"] + self.enc_ln(x) * real
        state["n"] = state["n"] + real
        h = state["sum"] / torch.clamp(torch.as_tensor(state["n"]), min=1.0) + state["img"]
        for i, blk in enumerate(self.decoder):
            h, state["dec"][i] = blk.step(h, state["dec"][i])
        return self.head(h)[:, 0], state


# --------------------------------------------------------------------------------------
# The paper's VGG16 head on top of training.encoders.VGG16
# --------------------------------------------------------------------------------------
class VGG16PaperHead(VGG16):
    """VGG16 without its classifier (the paper removes the last two FC layers): the
    7x7x512 conv map is max-pooled with 3x3 windows (stride 3 -> 2x2x512) and averaged to
    one 512-vector. (The authors' code instead took the 4096-d fc2 output.) Returns
    [B, 1, 512] so it plugs into training.features.image_features like any encoder."""

    name = "vgg16_paperhead"

    def __init__(self, pretrained: bool = True):
        super().__init__(pretrained=pretrained, grid=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        fmap = self.feature_map(image)  # [B, 512, 7, 7]
        pooled = F.max_pool2d(fmap, kernel_size=3, stride=3)  # [B, 512, 2, 2]
        return pooled.mean(dim=(2, 3))[:, None, :]


def build_image_encoder(name: str, seed: int = 0):
    """A frozen encoder for the reproduction: efficientnet_lite0 / inception_v3 (one pooled
    vector, grid 1) or vgg16 (the paper's head). Random-init weights (no ImageNet file in
    the cache) are seeded so the features are the same on every run."""
    from training.encoders import build_encoder

    torch.manual_seed(seed)
    if name == "vgg16":
        return VGG16PaperHead(pretrained=True)
    return build_encoder(name, pretrained=True, grid=1)
