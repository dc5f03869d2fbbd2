"""The baseline: "Show and Listen" (Mendis & Bandara), an image-captioning-style LSTM model.

As the paper's authors ran it (``create_Model_orig`` in their ``trainTrans_VA_loss.py``):

    image features --Dropout(0.5)--Dense(256, ReLU)---------------------------+
                                                                               Add --Dense(256, ReLU)--softmax(V)
    MIDI prefix --Embedding(256)--Dropout(0.2)--LSTM(128)--Dropout(0.2)--LSTM(256)+

The LSTMs run over the whole clip once; the hidden state after token i is the summary of
the prefix ``seq[:i+1]`` that the per-prefix Keras model computes, so every next-token
prediction of a clip comes out of one pass (the same trick as :mod:`training.paper.models`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class BaselineConfig:
    vocab_size: int
    image_dim: int
    embed: int = 256
    lstm1: int = 128
    lstm2: int = 256
    dense: int = 256
    dropout: float = 0.2
    image_dropout: float = 0.5
    max_len: int = 512
    pad_id: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class ShowAndListen(nn.Module):
    """Image features + MIDI prefix -> next-token logits at every position (2 LSTM layers)."""

    def __init__(self, cfg: BaselineConfig):
        super().__init__()
        self.cfg = cfg
        self.image_in = nn.Sequential(nn.Dropout(cfg.image_dropout), nn.Linear(cfg.image_dim, cfg.lstm2), nn.ReLU())
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.embed)
        self.drop = nn.Dropout(cfg.dropout)
        self.lstm1 = nn.LSTM(cfg.embed, cfg.lstm1, batch_first=True)
        self.lstm2 = nn.LSTM(cfg.lstm1, cfg.lstm2, batch_first=True)
        self.head = nn.Sequential(nn.Linear(cfg.lstm2, cfg.dense), nn.ReLU(), nn.Linear(cfg.dense, cfg.vocab_size))

    def forward(self, image: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """image [B, image_dim], ids [B, T] -> logits [B, T, V]; logits[:, t] predicts ids[:, t + 1]."""
        if ids.shape[1] > self.cfg.max_len:
            raise ValueError(f"sequence of {ids.shape[1]} tokens exceeds max_len {self.cfg.max_len}")
        x = self.drop(self.tok_emb(ids))
        x, _ = self.lstm1(x)
        x, _ = self.lstm2(self.drop(x))
        return self.head(x + self.image_in(image)[:, None, :])

    @torch.no_grad()
    def step(self, image: torch.Tensor, token: torch.Tensor, pos: int, state: dict | None) -> tuple[torch.Tensor, dict]:
        """Incremental decoding (eval mode): one token [B] -> next-token logits [B, V]."""
        state = state or {"h1": None, "h2": None, "img": self.image_in(image)[:, None, :]}
        x, state["h1"] = self.lstm1(self.tok_emb(token)[:, None, :], state["h1"])
        x, state["h2"] = self.lstm2(x, state["h2"])
        return self.head(x + state["img"])[:, 0], state
