"""Attribute loss: teach the condition to move *measurable* music attributes the way EIMG does.

Replaces the differentiable VA loss (which trained against ``training.va_predictor`` and taught
the decoder to please that predictor: valence r 0.00 by an independent judge). Here there is no
learned predictor to game. Five attributes are read off a token histogram with fixed formulas:

* ``mode``      Krumhansl-Schmuckler major-minus-minor score of the pitch-class profile
                (soft maximum over the 12 tonics, so it is differentiable);
* ``density``   log notes per bar (Pitch tokens / Bar tokens);
* ``velocity``  mean MIDI velocity of the Velocity tokens;
* ``register``  mean MIDI pitch;
* ``length``    log mean note duration in beats.

:class:`AttributeTargets` fits, on EIMG's *train* clips (their real tokens, hard histograms),
ordinary least squares ``attribute ~ 1 + (valence - 5) + (arousal - 5)`` and each attribute's
residual spread. :meth:`AttributeTargets.loss` then takes the model's expected histogram of a
window under its softmax (teacher forced; gradient reaches every logit) and returns the mean
squared error, in residual-spread units, between its attributes and where human-labelled clips
with the window's VA label lie. A model can lower it only by changing the notes' mode, density,
velocity, register and length. Selection uses ``engine.emotion.judge`` (a ridge on note
features in seconds, fit separately), never this loss.
"""
from __future__ import annotations

import numpy as np
import torch

from engine.music.theory import KK_MAJOR, KK_MINOR
from engine.music.tokenizer import TokenGroups
from engine.emotion.va import VA_MID

ATTRIBUTES = ("mode", "density", "velocity", "register", "length")
SOFTMAX_SHARPNESS = 20.0  # soft maximum over tonics: logsumexp(s * r) / s
EPS = 1e-4


def _profiles() -> torch.Tensor:
    """[2, 12, 12] rotated, standardised key profiles (major, minor) x tonic x pitch class."""
    out = []
    for base in (KK_MAJOR, KK_MINOR):
        rows = np.stack([np.roll(base, t) for t in range(12)])
        rows = (rows - rows.mean(1, keepdims=True)) / rows.std(1, keepdims=True)
        out.append(rows)
    return torch.tensor(np.stack(out), dtype=torch.float32)


class TokenAttributes(torch.nn.Module):
    """(B, V) token histograms (any positive weights) -> (B, 5) attributes (:data:`ATTRIBUTES`)."""

    def __init__(self, groups: TokenGroups, vocab_size: int):
        super().__init__()

        def table(d: dict) -> tuple[torch.Tensor, torch.Tensor]:
            ids = torch.tensor(sorted(d), dtype=torch.long)
            return ids, torch.tensor([float(d[int(i)]) for i in ids])

        self.pitch_ids, pitch = table(groups.pitch)
        self.vel_ids, self.vel = table(groups.velocity)
        self.dur_ids, self.dur = table(groups.duration)
        self.bar = groups.bar
        self.pitch = pitch
        onehot = torch.zeros(len(pitch), 12)
        onehot[torch.arange(len(pitch)), pitch.long() % 12] = 1.0
        self.pc = onehot
        self.profiles = _profiles()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        hp = h[:, self.pitch_ids]
        hv, hd = h[:, self.vel_ids], h[:, self.dur_ids]
        n_pitch = hp.sum(1)
        pc = hp @ self.pc.to(h)  # (B, 12)
        pcs = (pc - pc.mean(1, keepdim=True)) / (pc.std(1, keepdim=True) + EPS)
        r = torch.einsum("bp,mtp->bmt", pcs, self.profiles.to(h)) / 11.0  # Pearson r (ddof 1), [B, 2, 12]
        best = torch.logsumexp(SOFTMAX_SHARPNESS * r, dim=2) / SOFTMAX_SHARPNESS
        mode = best[:, 0] - best[:, 1]
        density = torch.log((n_pitch + EPS) / (h[:, self.bar] + EPS))
        velocity = (hv @ self.vel.to(h)) / (hv.sum(1) + EPS)
        register = (hp @ self.pitch.to(h)) / (n_pitch + EPS)
        length = torch.log((hd @ self.dur.to(h)) / (hd.sum(1) + EPS) + EPS)
        return torch.stack([mode, density, velocity, register, length], dim=1)


class AttributeTargets:
    """Where labelled music lies: attribute = coef @ [1, v - 5, a - 5], residual spread per attribute."""

    def __init__(self, attributes: TokenAttributes, coef: np.ndarray, spread: np.ndarray, r: dict):
        self.attributes, self.coef, self.spread, self.r = attributes, coef, spread, r

    @classmethod
    def fit(cls, sequences, vas, groups: TokenGroups, vocab_size: int) -> "AttributeTargets":
        """OLS of every attribute on (v - 5, a - 5) over labelled token sequences (hard histograms)."""
        attrs = TokenAttributes(groups, vocab_size)
        hist = torch.stack([torch.bincount(torch.as_tensor(np.asarray(s, np.int64)), minlength=vocab_size).float()
                            for s in sequences])
        with torch.no_grad():
            y = attrs(hist / hist.sum(1, keepdim=True)).numpy().astype(np.float64)
        va = np.asarray(vas, np.float64) - VA_MID
        x = np.column_stack([np.ones(len(va)), va])
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)  # [3, 5]
        spread = (y - x @ coef).std(0) + 1e-6
        with np.errstate(invalid="ignore", divide="ignore"):  # a constant column has no r (nan)
            r = {f"{name}_{axis}": float(np.corrcoef(y[:, k], va[:, j])[0, 1])
                 for k, name in enumerate(ATTRIBUTES) for j, axis in enumerate(("valence", "arousal"))}
        return cls(attrs, coef.T.astype(np.float32), spread.astype(np.float32), r)

    def target(self, va: torch.Tensor) -> torch.Tensor:
        """(B, 2) VA on 1-9 -> (B, 5) expected attributes."""
        x = torch.cat([torch.ones(len(va), 1, device=va.device), va - VA_MID], dim=1)
        return x @ torch.from_numpy(self.coef).to(va).T

    def loss(self, logits: torch.Tensor, mask: torch.Tensor, va: torch.Tensor) -> torch.Tensor:
        """Mean squared attribute error (residual-spread units) of the expected histogram of
        ``softmax(logits)`` over ``mask``ed positions (B, T) against the targets for ``va``."""
        m = mask.to(logits.dtype)[..., None]
        h = (logits.float().softmax(-1) * m).sum(1) / m.sum(1).clamp(min=1.0)
        err = (self.attributes(h) - self.target(va)) / torch.from_numpy(self.spread).to(h)
        return (err ** 2).mean()
