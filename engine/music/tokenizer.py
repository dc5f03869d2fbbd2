"""Moodroll's one vocabulary: MidiTok REMI over a single merged piano track.

Why REMI (and not TSD)
----------------------
REMI writes time as ``Bar`` + ``Position`` tokens instead of TSD's relative ``TimeShift``.
That suits a live engine:

* every bar starts with an explicit ``Bar`` token, so "apply the new picture from the next
  bar" and "stay one bar ahead of playback" are decisions the stream can read straight off
  the token stream, and a capture of "the last N bars" is a slice between ``Bar`` tokens;
* a note's onset is absolute within its bar, so a note can be scheduled the moment its
  ``Pitch/Velocity/Duration`` triple is complete; one dropped or invalid token cannot shift
  every later note in time the way a lost ``TimeShift`` does;
* key, range and polyphony controls act on ``Pitch`` tokens only, whose ids are fixed.

TSD's sequences are ~10 % shorter on dense piano music; we trade that for robust timing.

The configuration (``DEFAULT_CONFIG``) is saved as ``tokenizer.json`` beside every model
that uses it (:meth:`Tokenizer.save` / :meth:`Tokenizer.load`), so a bundle always carries
its vocabulary.

Piano focus: all non-drum tracks are merged into one piano track (program 0); drums and
pedals are dropped; tempo and time-signature changes are kept as REMI tokens.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

from symusic import Score, Track

from engine.errors import first_line
from engine.music._miditok import miditok

PathLike = Union[str, Path]

# The MidiTok TokenizerConfig arguments of Moodroll's vocabulary.
DEFAULT_CONFIG: dict = {
    "pitch_range": [21, 108],  # the 88 piano keys
    # 8 positions per beat (32nd notes); durations at 1/8 beat up to 4 beats, 1/4 beat to 12.
    "beat_res": {"0_4": 8, "4_12": 4},
    "num_velocities": 16,
    "special_tokens": ["PAD", "BOS", "EOS"],
    "use_chords": False,
    "use_rests": False,
    "use_tempos": True,
    "num_tempos": 64,  # log-spaced: neighbouring bins 3 % apart
    "tempo_range": [40, 250],
    "log_tempos": True,
    "use_time_signatures": True,
    "time_signature_range": {"4": [1, 2, 3, 4, 5, 6], "8": [3, 6, 9, 12]},
    "use_sustain_pedals": False,
    "use_pitch_bends": False,
    "use_programs": False,
    # MidiTok adds 62 drum-pitch tokens by default; drums are dropped before encoding, so they
    # could never be produced by the data, yet MidiTok would decode them as piano notes.
    "use_pitchdrum_tokens": False,
    "remove_duplicated_notes": True,
}


class MidiReadError(ValueError):
    """A MIDI file that cannot be read or holds no piano notes."""


def _config_from_dict(d: dict):
    kw = dict(d)
    kw["beat_res"] = {tuple(int(x) for x in k.split("_")): int(v) for k, v in d["beat_res"].items()}
    kw["time_signature_range"] = {int(k): list(v) for k, v in d["time_signature_range"].items()}
    kw["pitch_range"] = tuple(d["pitch_range"])
    kw["tempo_range"] = tuple(d["tempo_range"])
    return miditok.TokenizerConfig(**kw)


def merge_to_piano(score: Score) -> Score:
    """One piano track holding the notes of every non-drum track; tempos and metre kept."""
    out = Score(score.ticks_per_quarter)
    out.tempos = score.tempos.copy()
    out.time_signatures = score.time_signatures.copy()
    out.key_signatures = score.key_signatures.copy()
    piano = Track(name="Piano", program=0, is_drum=False)
    for track in score.tracks:
        if not track.is_drum:
            piano.notes.extend(track.notes)
    piano.notes.sort()
    out.tracks.append(piano)
    return out


MAX_BEATS = 100_000  # about 14 hours at 120 BPM: longer is a corrupt file, not music


def load_score(source: PathLike | bytes) -> Score:
    """Read a MIDI file (path or bytes) and merge it to one piano track.

    Raises :class:`MidiReadError` naming the file when it is unreadable (corrupt, truncated,
    not MIDI) or holds no note outside drum tracks.
    """
    name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
    try:
        score = Score.from_midi(bytes(source)) if isinstance(source, (bytes, bytearray)) else Score(str(source))
    except Exception as e:  # symusic raises RuntimeError/ValueError/IOError on bad files
        raise MidiReadError(f"cannot read MIDI file {name}: {e}") from None
    piano = merge_to_piano(score)
    if len(piano.tracks[0].notes) == 0:
        raise MidiReadError(f"MIDI file {name} holds no piano notes (drum tracks are dropped)")
    beats = piano.end() / max(int(piano.ticks_per_quarter), 1)
    if beats > MAX_BEATS:  # a corrupt delta time can put a note years away: MidiTok would list every beat
        raise MidiReadError(f"MIDI file {name} is {beats:,.0f} beats long (more than {MAX_BEATS:,}): "
                            "a corrupt time value?")
    return piano


@dataclass(frozen=True)
class TokenGroups:
    """Token ids by type, for logit masks and the streaming decoder."""

    pad: int
    bos: int
    eos: int
    bar: int
    pitch: dict  # token id -> MIDI pitch
    velocity: dict  # token id -> velocity
    duration: dict  # token id -> duration in beats
    position: dict  # token id -> position index within the bar
    tempo: dict  # token id -> BPM
    time_signature: dict  # token id -> (numerator, denominator)


class Tokenizer:
    """Moodroll's vocabulary: a thin wrapper around a MidiTok REMI tokenizer."""

    def __init__(self, config: dict | None = None):
        self.config = dict(DEFAULT_CONFIG if config is None else config)
        self.remi = miditok.REMI(_config_from_dict(self.config))
        self.groups = self._groups()

    # -- persistence -------------------------------------------------------------------
    def save(self, path: PathLike) -> None:
        """Write ``tokenizer.json``: Moodroll's config plus MidiTok's own parameters."""
        data = {"format": "moodroll-tokenizer/1", "tokenization": "REMI",
                "config": self.config, "vocab_size": self.vocab_size,
                "vocab": {tok: i for tok, i in self.remi.vocab.items()}}
        Path(path).write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, path: PathLike) -> "Tokenizer":
        try:
            data = json.loads(Path(path).read_text())
            tok = cls(data["config"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"cannot load tokenizer config {path}: {e}") from None
        if tok.remi.vocab != data.get("vocab", tok.remi.vocab):
            raise ValueError(f"{path}: vocabulary does not match this MidiTok version's REMI")
        return tok

    # -- vocabulary --------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.remi)

    def id_to_token(self, i: int) -> str:
        return self.remi[int(i)]

    def token_to_id(self, token: str) -> int:
        return self.remi.vocab[token]

    def _groups(self) -> TokenGroups:
        v = self.remi.vocab

        def by_type(prefix: str, parse):
            return {i: parse(t.split("_", 1)[1]) for t, i in v.items() if t.split("_", 1)[0] == prefix}

        def dur_beats(s: str) -> float:
            beat, pos, r = (int(x) for x in s.split("."))
            return beat + pos / r

        def ts(s: str):
            n, d = s.split("/")
            return int(n), int(d)

        return TokenGroups(
            pad=v["PAD_None"], bos=v["BOS_None"], eos=v["EOS_None"], bar=v["Bar_None"],
            pitch=by_type("Pitch", int), velocity=by_type("Velocity", int),
            duration=by_type("Duration", dur_beats), position=by_type("Position", int),
            tempo=by_type("Tempo", float), time_signature=by_type("TimeSig", ts),
        )

    @property
    def positions_per_beat(self) -> int:
        return max(self.remi.config.beat_res.values())

    # -- encode / decode -----------------------------------------------------------------
    def encode(self, source: PathLike | bytes | Score) -> list[int]:
        """MIDI (path, bytes or Score) -> token ids of the merged piano track (no BOS/EOS)."""
        score = source if isinstance(source, Score) else load_score(source)
        if isinstance(source, Score):
            score = merge_to_piano(score)
        try:
            seqs = self.remi.encode(score)
        except (OverflowError, ValueError, RuntimeError) as e:  # symusic's resample past int32, ...
            raise MidiReadError(f"cannot tokenize MIDI file: {first_line(e)}") from None
        seq = seqs[0] if isinstance(seqs, list) else seqs
        return list(seq.ids)

    def decode(self, ids: Sequence[int]) -> Score:
        """Token ids -> a one-track piano Score (special tokens are ignored)."""
        specials = {self.groups.pad, self.groups.bos, self.groups.eos}
        ids = [int(i) for i in ids if int(i) not in specials]
        seq = miditok.TokSequence(ids=ids)
        self.remi.complete_sequence(seq)
        score = self.remi.decode([seq])
        for track in score.tracks:
            track.program, track.name = 0, "Piano"
        return score

    def write_midi(self, ids: Sequence[int], path: PathLike) -> None:
        self.decode(ids).dump_midi(str(path))

    def tokens(self, ids: Sequence[int]) -> list[str]:
        return [self.id_to_token(i) for i in ids]


def held_until_repeat(notes: Sequence[tuple]) -> list:
    """Durations for ``(pitch, onset, duration)`` notes (any time unit) with each note that is
    still held when its pitch starts again ended there: a key cannot sound twice."""
    out = [n[2] for n in notes]
    order = sorted(range(len(notes)), key=lambda i: (notes[i][0], notes[i][1]))
    for i, j in zip(order, order[1:]):
        (pa, ta, _), (pb, tb, _) = notes[i], notes[j]
        if pa == pb and ta < tb < ta + out[i]:
            out[i] = tb - ta
    return out


def release_before_repeat(score: Score) -> Score:
    """:func:`held_until_repeat` on every track of a symusic score (in place; returns it), for the
    files Moodroll writes; ``decode`` itself keeps every note as the tokens say (the round trip of
    real files must). Overlapping notes of one pitch make a MIDI file ambiguous: readers pair the
    note-offs differently (pretty_midi and symusic gave one note 1.125 and 2 beats), and a DAW may
    merge or drop them. The live stream already releases the key first."""
    for track in score.tracks:
        notes = list(track.notes)
        for n, d in zip(notes, held_until_repeat([(n.pitch, n.time, n.duration) for n in notes])):
            n.duration = d
    return score
