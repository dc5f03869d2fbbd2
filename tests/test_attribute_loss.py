"""training.attribute_loss: the attributes read off a token histogram are the music's (mode,
density, velocity, register, length), the fitted targets follow a known VA relation, and a few
steps on the loss move the model's expected music the way the target asks (and the loss plugs
into training.train.loss_fn beside the cross-entropy)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from engine.music.tokenizer import Tokenizer
from training.attribute_loss import ATTRIBUTES, AttributeTargets, TokenAttributes
from training.model import MusicModel
from training.train import Item, TrainConfig, Windows, loss_fn

TOK = Tokenizer()
G = TOK.groups
PITCH = {p: i for i, p in G.pitch.items()}
VEL = {v: i for i, v in G.velocity.items()}
DUR = {d: i for i, d in G.duration.items()}


def _clip(pitches, velocity=64, beats=1.0, notes_per_bar=4) -> list[int]:
    out = []
    for k, p in enumerate(pitches):
        if k % notes_per_bar == 0:
            out.append(G.bar)
        vel = min(VEL, key=lambda v: abs(v - velocity))
        dur = min(DUR, key=lambda d: abs(d - beats))
        out += [PITCH[p], VEL[vel], DUR[dur]]
    return out


def _attrs(seq) -> dict:
    h = torch.bincount(torch.tensor(seq), minlength=TOK.vocab_size).float()[None]
    return dict(zip(ATTRIBUTES, TokenAttributes(G, TOK.vocab_size)(h / h.sum())[0].tolist()))


C_MAJOR = [60, 64, 67, 72, 62, 65, 69, 71, 60, 64, 67, 60]
C_MINOR = [60, 63, 67, 72, 62, 65, 68, 70, 60, 63, 67, 60]


def test_attributes_read_the_music():
    major, minor = _attrs(_clip(C_MAJOR)), _attrs(_clip(C_MINOR))
    assert major["mode"] > 0.1 > -0.1 > minor["mode"]
    dense = _attrs(_clip(C_MAJOR, notes_per_bar=6))
    assert np.isclose(np.exp(dense["density"]), 6, rtol=0.01) and np.isclose(np.exp(major["density"]), 4, rtol=0.01)
    loud = _attrs(_clip(C_MAJOR, velocity=100))
    assert loud["velocity"] > major["velocity"] + 20
    assert np.isclose(major["register"], np.mean(C_MAJOR), atol=0.1)
    assert _attrs(_clip(C_MAJOR, beats=2.0))["length"] > major["length"] + 0.5


def _labelled():
    """Happy clips are major and dense, sad ones minor and sparse (a known relation)."""
    seqs, vas = [], []
    for k in range(12):
        v = 2.0 + 6.0 * k / 11
        happy = v > 5
        seqs.append(_clip(C_MAJOR if happy else C_MINOR, notes_per_bar=6 if happy else 3, velocity=40 + 6 * k))
        vas.append((v, 5.0))
    return seqs, vas


def test_targets_follow_the_labels():
    t = AttributeTargets.fit(*_labelled(), G, TOK.vocab_size)
    assert t.r["mode_valence"] > 0.8 and t.r["density_valence"] > 0.8 and t.r["velocity_valence"] > 0.95
    hi, lo = t.target(torch.tensor([[8.0, 5.0], [2.0, 5.0]]))
    assert hi[0] > lo[0] and hi[1] > lo[1] and hi[2] > lo[2]


def test_loss_moves_the_expected_music_towards_the_target():
    t = AttributeTargets.fit(*_labelled(), G, TOK.vocab_size)
    cfg = TrainConfig.from_json("training/configs/tiny.json")
    mcfg = replace(cfg.model_config, vocab_size=TOK.vocab_size)
    win = Windows(cfg, mcfg, TOK)
    items = [Item(ids=np.array(_clip(C_MINOR, notes_per_bar=3) * 2), bars=np.array([0]), va=(8.5, 5.0))
             for _ in range(4)]
    rng = np.random.default_rng(0)
    x = torch.from_numpy(np.stack([win.window(it, rng, start=0, augment=False) for it in items]))
    cond, labels = win.condition(items, None), Windows.labels(items)
    torch.manual_seed(0)
    model = MusicModel(mcfg)
    off = loss_fn(model, x, cond, G.pad, labels)
    assert off["attr"] is None
    on = loss_fn(model, x, cond, G.pad, labels, attributes=t, attr_weight=0.5)
    assert torch.allclose(on["loss"], on["ce"] + 0.5 * on["attr"])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(15):
        attr = loss_fn(model, x, cond, G.pad, labels, attributes=t, attr_weight=1.0)["attr"]
        first = attr.item() if first is None else first
        opt.zero_grad()
        attr.backward()
        opt.step()
    assert attr.item() < 0.7 * first
