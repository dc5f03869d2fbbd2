"""Musical controls as logit masks: key/scale lock, pitch range, polyphony, note density, tempo.

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
import re
from collections import deque
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from engine.model.sampling import NEG_INF, LogitFilter
from engine.music.events import NOTE_ON, Event, StreamingDecoder
from engine.music.tokenizer import Tokenizer

# -- keys and scales ---------------------------------------------------------------------------
PITCH_CLASSES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
    "melodic minor": (0, 2, 3, 5, 7, 9, 11),
    "major pentatonic": (0, 2, 4, 7, 9),
    "minor pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "chromatic": tuple(range(12)),
}
SCALE_ALIASES = {
    "": "major", "maj": "major", "ionian": "major", "m": "minor", "min": "minor",
    "aeolian": "minor", "natural minor": "minor", "pentatonic": "major pentatonic",
    "harmonic": "harmonic minor", "melodic": "melodic minor",
}
# Semitones from a mode's tonic down to the tonic of the major key sharing its signature.
MODE_OFFSET = {"major": 0, "dorian": 2, "phrygian": 4, "lydian": 5, "mixolydian": 7, "minor": 9, "locrian": 11,
               "major pentatonic": 0}
MINOR_SIGNATURE = {"minor", "harmonic minor", "melodic minor", "minor pentatonic", "blues"}
MAJOR_NAMES = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
MINOR_NAMES = ["Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm"]
VALID_MAJOR = set(MAJOR_NAMES) | {"C#", "Gb", "Cb"}
VALID_MINOR = set(MINOR_NAMES) | {"D#m", "A#m", "Abm"}


@dataclass(frozen=True)
class Scale:
    tonic: int  # pitch class 0..11
    name: str  # canonical scale name, a key of SCALES
    label: str  # as written back to the user, e.g. "F# major"
    key_signature: str | None  # a MIDI key signature (mido spelling: "Eb", "C#m"), None for chromatic

    @property
    def pitch_classes(self) -> frozenset[int]:
        return frozenset((self.tonic + i) % 12 for i in SCALES[self.name])

    def contains(self, pitch: int) -> bool:
        return pitch % 12 in self.pitch_classes


def parse_time_signature(text: str | None) -> tuple[int, int] | None:
    """'4/4' -> (4, 4); 'free' (or None) -> None, i.e. the model chooses the metre bar by bar."""
    if text is None or str(text).strip().lower() in ("free", "any", "model"):
        return None
    try:
        num, den = (int(x) for x in str(text).strip().split("/"))
    except ValueError:
        raise ValueError(f"time signature must look like 4/4 or 6/8 (or 'free'), got {text!r}") from None
    return num, den


def parse_key(text: str) -> Scale:
    """``"C minor"``, ``"D dorian"``, ``"F# major"``, ``"A harmonic minor"``, ``"Bbm"``, ``"E♭"``...

    Raises ValueError with a message that says what is accepted."""
    s = " ".join(str(text).replace("♯", "#").replace("♭", "b").replace("-", " ").replace("_", " ").split())
    m = re.fullmatch(r"([A-Ga-g])([#b]?)(?:\s*(.*))?", s)
    scale = None
    if m:
        rest = (m.group(3) or "").lower()
        scale = SCALE_ALIASES.get(rest, rest if rest in SCALES else None)
    if not m or scale is None:
        raise ValueError(f"unknown key {text!r}: write a tonic A-G (with # or b) and a scale, e.g. 'C minor', "
                         f"'F# major', 'D dorian'; scales: {', '.join(SCALES)}")
    letter, acc = m.group(1).upper(), m.group(2)
    tonic = (PITCH_CLASSES[letter.lower()] + {"#": 1, "b": -1, "": 0}[acc]) % 12
    spelled = letter + acc
    if scale == "chromatic":
        sig = None
    elif scale in MINOR_SIGNATURE:
        sig = spelled + "m" if spelled + "m" in VALID_MINOR else MINOR_NAMES[tonic]
    elif scale == "major" or scale == "major pentatonic":
        sig = spelled if spelled in VALID_MAJOR else MAJOR_NAMES[tonic]
    else:  # church modes share the signature of their relative major
        sig = MAJOR_NAMES[(tonic - MODE_OFFSET[scale]) % 12]
    return Scale(tonic, scale, f"{spelled} {scale}", sig)


# -- the controls ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MusicalControls:
    key: str | None = None  # key/scale lock, e.g. "C minor"; None = every pitch
    pitch_range: tuple[int, int] = (21, 108)  # lowest and highest MIDI pitch, inclusive
    max_polyphony: int | None = None  # most notes sounding at once
    density: float | None = None  # most note onsets per beat (quarter note)
    bpm: float | None = None  # lock Tempo tokens to the bin nearest this tempo
    time_signature: tuple[int, int] | None = None  # lock the metre, e.g. (4, 4)
    # soft targets (engine.emotion.attributes fills them from valence/arousal): logit biases, not locks
    target_density: float | None = None  # note onsets per beat the stream is nudged towards
    target_velocity: float | None = None  # mean velocity (1-127)
    target_register: float | None = None  # mean MIDI pitch
    target_note_beats: float | None = None  # typical note length in beats
    tonal_bias: float = 0.0  # weight of the key's Krumhansl-Kessler profile on the pitches (needs ``key``)
    bias_strength: float = 1.0  # scales every soft bias (0 = targets off)
    sanity: bool = True  # the sanity rules (SanityFilter): off only for tests of the bare model

    def __post_init__(self):
        if self.key is not None:
            parse_key(self.key)
        try:
            lo, hi = (int(x) for x in self.pitch_range)
        except (TypeError, ValueError):
            raise ValueError(f"pitch_range must be two MIDI pitches (low, high), got {self.pitch_range!r}") from None
        if not (0 <= lo <= hi <= 127):
            raise ValueError(f"pitch_range must satisfy 0 <= low <= high <= 127, got {self.pitch_range!r}")
        object.__setattr__(self, "pitch_range", (lo, hi))
        if self.max_polyphony is not None and (int(self.max_polyphony) != self.max_polyphony or self.max_polyphony < 1):
            raise ValueError(f"max_polyphony must be a whole number >= 1, got {self.max_polyphony!r}")
        if self.density is not None and not (0 < self.density < math.inf):
            raise ValueError(f"density must be a positive number of notes per beat, got {self.density!r}")
        if self.bpm is not None and not (0 < self.bpm < math.inf):
            raise ValueError(f"bpm must be a positive number, got {self.bpm!r}")
        if self.time_signature is not None:
            try:
                num, den = (int(x) for x in self.time_signature)
            except (TypeError, ValueError):
                raise ValueError(f"time_signature must be (numerator, denominator), got {self.time_signature!r}") from None
            object.__setattr__(self, "time_signature", (num, den))
        for name in ("target_density", "target_velocity", "target_register", "target_note_beats"):
            x = getattr(self, name)
            if x is not None and not (0 < x < math.inf):
                raise ValueError(f"{name} must be a positive number, got {x!r}")
        if not (0 <= self.tonal_bias < math.inf) or not (0 <= self.bias_strength < math.inf):
            raise ValueError("tonal_bias and bias_strength must be numbers >= 0")

    @property
    def scale(self) -> Scale | None:
        return None if self.key is None else parse_key(self.key)


# -- what the masks look at --------------------------------------------------------------------
BOS, BAR, TIMESIG, POSITION, TEMPO, PITCH, VELOCITY, DURATION, OTHER = range(9)


class MusicState:
    """The musical situation after each token: kind of the last token, current position and
    time, sounding notes, recent onsets. ``feed`` returns the :class:`StreamingDecoder` events."""

    def __init__(self, tokenizer: Tokenizer):
        g = tokenizer.groups
        self.positions_per_beat = tokenizer.positions_per_beat  # per REMI beat (the metre's denominator)
        kind = np.full(tokenizer.vocab_size, OTHER, np.int8)
        for ids, k in ((g.pitch, PITCH), (g.velocity, VELOCITY), (g.duration, DURATION), (g.position, POSITION),
                       (g.tempo, TEMPO), (g.time_signature, TIMESIG)):
            kind[list(ids)] = k
        kind[g.bar] = BAR
        self.kind_of = kind
        self.position_of = g.position
        self.decoder = StreamingDecoder(tokenizer, time_signature=(4, 4))
        self.reset()

    def reset(self) -> None:
        self.decoder.reset(time_signature=(4, 4))
        self.last = BOS
        self.position: int | None = None  # last Position in the current bar, None right after Bar
        self.sounding: list[tuple[float, float]] = []  # (onset, offset) beats of notes not yet over
        self.onsets: list[float] = []  # onset beats, newest last (pruned to the density window)
        self.recent: deque = deque(maxlen=256)  # onset beats, newest last (never pruned by a mask)
        self.recent_pitches: deque = deque(maxlen=64)  # their pitches
        self.chord_beat: float | None = None  # onset beat of the notes in ``chord``
        self.chord: set[int] = set()  # pitches already started at ``chord_beat``
        self.notes = 0  # notes completed since reset

    @property
    def now(self) -> float:
        """Where a note chosen now would start, in beats."""
        return self.decoder.beat

    @property
    def bar_positions(self) -> int:
        """Positions in a bar of the current metre."""
        return self.decoder.time_signature[0] * self.positions_per_beat

    def active_notes(self) -> int:
        now = self.now
        self.sounding = [(on, off) for on, off in self.sounding if off > now]
        return sum(1 for on, _ in self.sounding if on <= now)

    def feed(self, token: int) -> list[Event]:
        k = int(self.kind_of[token]) if 0 <= token < len(self.kind_of) else OTHER
        if k == BAR:
            self.position = None
        elif k == POSITION:
            self.position = self.position_of[token]
        if k != OTHER:
            self.last = k
        events = self.decoder.feed(token)
        for e in events:
            if e.kind == NOTE_ON:
                self.notes += 1
                self.sounding.append((e.beat, e.beat + float(e.value)))
                self.onsets.append(e.beat)
                self.recent.append(e.beat)
                self.recent_pitches.append(e.pitch)
                if e.beat != self.chord_beat:
                    self.chord_beat, self.chord = e.beat, set()
                self.chord.add(e.pitch)
        return events


# -- the masks ---------------------------------------------------------------------------------
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


def build_masks(tokenizer: Tokenizer, controls: MusicalControls) -> list[StateFilter]:
    """The grammar plus one filter per control that is switched on."""
    masks: list[StateFilter] = [RemiGrammar(tokenizer), PitchMask(tokenizer, controls.scale, controls.pitch_range)]
    if controls.max_polyphony is not None:
        masks.append(PolyphonyMask(tokenizer, controls.max_polyphony))
    if controls.density is not None:
        masks.append(DensityMask(tokenizer, controls.density))
    if controls.bpm is not None:
        masks.append(TempoLock(tokenizer, controls.bpm))
    if controls.time_signature is not None:
        masks.append(TimeSignatureLock(tokenizer, controls.time_signature))
    from engine.emotion.biases import EmotionBias
    from engine.emotion.sanity import SanityFilter

    if EmotionBias.wanted(controls):
        masks.insert(1, EmotionBias(tokenizer, controls))  # biases first, then every hard mask
    if controls.sanity:
        masks.append(SanityFilter(tokenizer, controls))
    return masks


def allowed_pitches(controls: MusicalControls, pitches: Sequence[int] = range(21, 109)) -> list[int]:
    """The pitches the key lock and range let through (for user interfaces and tests)."""
    scale, (lo, hi) = controls.scale, controls.pitch_range
    return [p for p in pitches if lo <= p <= hi and (scale is None or scale.contains(p))]
