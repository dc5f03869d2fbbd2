"""The REMI grammar and the musical controls as logit masks: key/scale lock, pitch range, polyphony, note density, tempo.

Every control only ever *removes* choices from the model, by setting logits to ``-inf``
before sampling, so a masked pitch can never be emitted:

* key / scale lock and pitch range: a fixed mask over the ``Pitch`` tokens
  (``"C minor"``, ``"D dorian"``, ``"F# major"``, ``"A harmonic minor"``, ``"Bb blues"``...);
* maximum polyphony: no new ``Pitch`` while ``max_polyphony`` notes sound at the current time;
* note density: at most ``density`` note onsets per beat (see :class:`DensityMask`);
* tempo (``bpm``): ``Tempo`` tokens are locked to the vocabulary's bin nearest ``bpm``;
* metre (``time_signature``): every bar in that metre.

:class:`MusicState` follows the stream (via :class:`engine.music.events.StreamingDecoder`) so the
masks know the current time, the sounding notes and the recent onsets. :class:`RemiGrammar`
keeps the stream well-formed, which is what makes the masks exact: ``Pitch`` is always
followed by ``Velocity`` then ``Duration``, ``Position`` only moves forward inside a bar and
stays inside it, ``TimeSig`` only follows ``Bar``, ``Tempo`` only follows ``Position``. ``Bar``
is never masked once the first note has sounded, so some token is always allowed (silence is
always possible). A fresh stream (after ``reset``) opens with a note on its first downbeat
(``Bar [TimeSig] Position_0 [Tempo] Pitch``), so a live stream sounds at once instead of
waiting through a rest the model might begin with.
"""
from __future__ import annotations

import math

import numpy as np

from engine.model.filters.state import BAR, BOS, PITCH, POSITION, TEMPO, TIMESIG, VELOCITY, MusicState
from engine.model.sampling import NEG_INF, LogitFilter
from engine.music.theory import Scale
from engine.music.tokenizer import Tokenizer

class StateFilter(LogitFilter):
    """A logit filter that reads the musical state."""

    def apply(self, logits: np.ndarray, state: MusicState | None = None) -> None:  # noqa: D102
        raise NotImplementedError


class RemiGrammar(StateFilter):
    """Keep the stream well-formed REMI (see the module docstring); never masks ``Bar``."""

    def __init__(self, tokenizer: Tokenizer):
        g = tokenizer.groups
        v = tokenizer.vocab_size
        ids = lambda d: np.asarray(sorted(d), np.int64)  # noqa: E731
        self.pitch, self.velocity, self.duration = ids(g.pitch), ids(g.velocity), ids(g.duration)
        self.tempo, self.timesig = ids(g.tempo), ids(g.time_signature)
        self.position_ids = ids(g.position)
        self.position_values = np.asarray([g.position[i] for i in self.position_ids])
        self.bar = g.bar
        self.always_off = np.ones(v, bool)  # only these kinds can ever be emitted
        for a in (self.pitch, self.velocity, self.duration, self.tempo, self.timesig, self.position_ids):
            self.always_off[a] = False
        self.always_off[g.bar] = False  # PAD/BOS/EOS and drum pitches stay off

    def _only(self, logits, *groups) -> None:
        keep = np.zeros(logits.size, bool)
        for grp in groups:
            keep[grp] = True
        logits[~keep] = NEG_INF

    def apply(self, logits: np.ndarray, state: MusicState | None = None) -> None:
        logits[self.always_off] = NEG_INF
        last = state.last
        if last == PITCH:
            return self._only(logits, self.velocity)
        if last == VELOCITY:
            return self._only(logits, self.duration)
        # the next Position must lie after the current one and inside the bar
        first = 0 if state.position is None else state.position + 1
        ok = (self.position_values >= first) & (self.position_values < state.bar_positions)
        positions = self.position_ids[ok]
        bar = np.asarray([self.bar])
        if last == BOS:
            return self._only(logits, bar)
        if state.notes == 0:  # prompt start: the first note sounds on the first downbeat
            if last == BAR:
                return self._only(logits, self.timesig, self.position_ids[self.position_values == 0])
            if last == TIMESIG:
                return self._only(logits, self.position_ids[self.position_values == 0])
            if last == POSITION:
                return self._only(logits, self.tempo, self.pitch)
            if last == TEMPO:
                return self._only(logits, self.pitch)
        if last == BAR:
            return self._only(logits, bar, self.timesig, positions)
        if last == TIMESIG:
            return self._only(logits, bar, positions)
        if last == POSITION:
            return self._only(logits, bar, positions, self.tempo, self.pitch)
        return self._only(logits, bar, positions, self.pitch)  # after Tempo or Duration


class PitchMask(StateFilter):
    """Key/scale lock and pitch range: a fixed mask over the Pitch tokens."""

    def __init__(self, tokenizer: Tokenizer, scale: Scale | None, pitch_range: tuple[int, int]):
        lo, hi = pitch_range
        self.off = np.asarray(sorted(i for i, p in tokenizer.groups.pitch.items()
                                     if not (lo <= p <= hi) or (scale is not None and not scale.contains(p))), np.int64)
        if len(self.off) == len(tokenizer.groups.pitch):
            what = f"{scale.label} " if scale else ""
            raise ValueError(f"no {what}pitch lies in the pitch range {lo}..{hi}")

    def apply(self, logits: np.ndarray, state: MusicState | None = None) -> None:
        logits[self.off] = NEG_INF


class PolyphonyMask(StateFilter):
    """No new note while ``max_polyphony`` notes sound at the current time."""

    def __init__(self, tokenizer: Tokenizer, max_polyphony: int):
        self.max = int(max_polyphony)
        self.pitch = np.asarray(sorted(tokenizer.groups.pitch), np.int64)

    def apply(self, logits: np.ndarray, state: MusicState | None = None) -> None:
        if state.active_notes() >= self.max:
            logits[self.pitch] = NEG_INF


class DensityMask(StateFilter):
    """At most ``density`` note onsets per beat.

    Time is cut into windows of ``w`` beats from the stream's start, ``w = 1`` for
    ``density >= 1`` and ``w = round(1 / density)`` below; a window holds at most
    ``max(1, floor(density * w))`` onsets (2.5 -> 2 per beat, 0.5 -> 1 per 2 beats)."""

    def __init__(self, tokenizer: Tokenizer, density: float):
        self.window = 1.0 if density >= 1 else float(max(1, round(1.0 / density)))
        self.cap = max(1, math.floor(density * self.window + 1e-9))
        self.pitch = np.asarray(sorted(tokenizer.groups.pitch), np.int64)

    def apply(self, logits: np.ndarray, state: MusicState | None = None) -> None:
        start = math.floor(state.now / self.window) * self.window
        state.onsets = [t for t in state.onsets if t >= start]
        if len(state.onsets) >= self.cap:
            logits[self.pitch] = NEG_INF


class TempoLock(StateFilter):
    """Only the Tempo token nearest ``bpm`` (on the vocabulary's log-spaced bins)."""

    def __init__(self, tokenizer: Tokenizer, bpm: float):
        tempi = tokenizer.groups.tempo
        best = min(tempi, key=lambda i: abs(math.log(tempi[i] / bpm)))
        self.off = np.asarray(sorted(i for i in tempi if i != best), np.int64)
        self.token, self.token_bpm = best, tempi[best]

    def apply(self, logits: np.ndarray, state: MusicState | None = None) -> None:
        if state is not None and state.last == POSITION and state.decoder.tempo != self.token_bpm:
            keep = logits[self.token]  # the stream is not at this tempo yet: say it now
            logits[:] = NEG_INF
            logits[self.token] = keep if np.isfinite(keep) else 0.0
            return
        logits[self.off] = NEG_INF


class TimeSignatureLock(StateFilter):
    """Only one metre: right after a ``Bar`` in another metre its ``TimeSig`` is the only choice."""

    def __init__(self, tokenizer: Tokenizer, time_signature: tuple[int, int]):
        sigs = tokenizer.groups.time_signature
        match = [i for i, ts in sigs.items() if tuple(ts) == tuple(time_signature)]
        if not match:
            known = ", ".join(f"{n}/{d}" for n, d in sigs.values())
            raise ValueError(f"time signature {time_signature[0]}/{time_signature[1]} is not in the vocabulary "
                             f"(known: {known})")
        self.token, self.ts = match[0], tuple(time_signature)
        self.off = np.asarray(sorted(i for i in sigs if i != self.token), np.int64)

    def apply(self, logits: np.ndarray, state: MusicState | None = None) -> None:
        if state.last == BAR and state.decoder.time_signature != self.ts:
            keep = logits[self.token]
            logits[:] = NEG_INF
            logits[self.token] = keep
        else:
            logits[self.off] = NEG_INF
