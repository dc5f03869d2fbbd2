"""Streaming REMI decoder: token ids in, one at a time; timed MIDI events out.

The live engine samples one token at a time. :class:`StreamingDecoder` turns each id into the
events it determines *at that moment*, so notes can be scheduled while the model is still
generating. Over a whole sequence its output equals MidiTok's batch decode
(:meth:`engine.music.tokenizer.Tokenizer.decode`) of the same ids: the same notes (onset, duration,
pitch, velocity), tempos and time signatures. It mirrors MidiTok 3.1's
``REMI._tokens_to_score`` line by line, odd orders included, and never raises.

Timing model
------------
* Times are **beats = quarter notes** from the start of the stream, as floats
  (``start_beat + ticks / tpq``, with MidiTok's decode resolution ``tpq`` = 16 ticks per
  quarter for the default vocabulary, so every time is an exact binary fraction). Tempo
  tokens are quarter-note BPM, as in MIDI files and DAWs. In x/8 metres REMI's own "beat" is
  an eighth note: a ``Position`` step is 1/8 of an eighth and ``Duration_1.0.8`` is one
  eighth; the decoder converts all of it to quarter notes.
* ``Bar`` starts a bar: the first ``Bar`` at beat 0 (``start_beat``), every later one exactly
  one bar (of the current time signature) after the previous bar start, whatever positions
  came in between. A ``Position`` before any ``Bar`` opens bar 0 at beat 0 implicitly.
* ``Position_p`` sets the current time to ``bar start + p`` position steps. It may exceed
  the bar or go backwards; MidiTok accepts both and so does this decoder.
* A note is ``Pitch`` immediately followed by ``Velocity`` and ``Duration`` (special tokens
  PAD/BOS/EOS are ignored everywhere, as :meth:`Tokenizer.decode` strips them). The note
  starts at the current time when its ``Pitch`` arrives; its ``note_on`` and ``note_off``
  are emitted together, the moment the ``Duration`` token arrives. A ``Pitch`` needs no
  ``Position`` before it (it sounds at the current time, the bar start after a ``Bar``),
  exactly as in MidiTok.
* ``Tempo`` is a tempo change at the current time. ``TimeSig`` that differs from the
  current one is a change at the current time (even mid-bar); it also changes the length of
  the current bar, i.e. the next ``Bar`` lands one *new* bar after the current bar start.
* The metre at beat 0 is the first ``TimeSig`` token that comes before any note token
  (``Pitch``/``Velocity``/``Duration``), else 4/4 (MidiTok's look-ahead). Until that is
  known the decoder holds back the few leading ``Bar``/``Position``/``Tempo`` tokens; a
  normal sequence starts ``Bar TimeSig_x/y``, so this delays nothing in practice.

Tokens that MidiTok's decode ignores are counted in :attr:`StreamingDecoder.skipped`: a
``Pitch`` not followed by ``Velocity`` + ``Duration``, a stray ``Velocity`` or ``Duration``,
a pitch outside the vocabulary's range, and ids outside the vocabulary (which MidiTok
cannot decode at all). Nothing else is skipped, so the output stays equal to the batch decode.

Events
------
``Event(kind, beat, pitch, velocity, value)`` with ``kind`` one of

* ``"note_on"``: ``pitch``, ``velocity``; ``value`` = duration in beats;
* ``"note_off"``: ``pitch``, ``velocity`` 0; ``value`` = the beat of its ``note_on``;
* ``"tempo"``: ``value`` = quarter-note BPM (float);
* ``"time_signature"``: ``value`` = ``(numerator, denominator)``; one at ``start_beat``
  opens every stream, then one per change;
* ``"bar"``: a bar starts at ``beat``; ``value`` = bar number (``start_bar`` + 0, 1, ...).

``feed`` returns events in the order they become known; a ``note_off`` lies in the future
of its ``note_on``. :func:`decode_events` decodes a whole id sequence into a time-sorted list.

Endless streams
---------------
The decoder does not depend on the model's context, so when the engine re-primes the model
(docs/bundle.md) it simply keeps feeding the same decoder. :meth:`StreamingDecoder.rebase`
starts a new token sequence seamlessly at the next bar (for a fresh context that begins with
``Bar``, keeping the metre); ``StreamingDecoder(start_beat=..., time_signature=...)`` and
:meth:`reset` start one at any beat.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from symusic import TimeSignature

from engine.music._miditok import miditok
from engine.music.tokenizer import Tokenizer

NOTE_ON, NOTE_OFF, TEMPO, TIME_SIGNATURE, BAR = "note_on", "note_off", "tempo", "time_signature", "bar"
# Order of simultaneous events in decode_events: a bar opens, then its metre and tempo,
# then notes end before new ones start (so a repeated key is released, then struck again).
KIND_ORDER = {BAR: 0, TIME_SIGNATURE: 1, TEMPO: 2, NOTE_OFF: 3, NOTE_ON: 4}
DEFAULT_TIME_SIGNATURE: tuple[int, int] = tuple(miditok.constants.TIME_SIGNATURE)  # (4, 4)


@dataclass(frozen=True, slots=True)
class Event:
    """A timed MIDI event; ``beat`` in quarter notes from the start of the stream."""

    kind: str
    beat: float
    pitch: int = 0
    velocity: int = 0
    value: float | int | tuple | None = None


# Token classes of the lookup table.
_SPECIAL, _BAR, _POSITION, _PITCH, _VELOCITY, _DURATION, _TEMPO, _TIMESIG, _INVALID = range(9)
_TYPES = {"PAD": _SPECIAL, "BOS": _SPECIAL, "EOS": _SPECIAL, "Bar": _BAR, "Position": _POSITION,
          "Pitch": _PITCH, "PitchDrum": _PITCH, "Velocity": _VELOCITY, "Duration": _DURATION,
          "Tempo": _TEMPO, "TimeSig": _TIMESIG}


class StreamingDecoder:
    """Feed REMI token ids one at a time; get the MIDI events each one determines."""

    def __init__(self, tokenizer: Tokenizer, start_beat: float = 0.0,
                 time_signature: tuple[int, int] | None = None, start_bar: int = 0):
        remi = tokenizer.remi
        unknown = {t.split("_", 1)[0] for t in remi.vocab} - set(_TYPES)
        unknown |= {t for t in remi.vocab if t.startswith("Bar_") and t != "Bar_None"}
        if not remi.config.use_velocities or 0 not in remi.config.use_note_duration_programs:
            unknown.add("notes without Velocity/Duration tokens")
        if unknown:
            raise ValueError(f"StreamingDecoder supports Moodroll's REMI vocabulary only; "
                             f"this one also has {sorted(unknown)}")
        self.tpq = remi.time_division  # ticks per quarter of MidiTok's decoded Score
        lo, hi = remi.config.pitch_range
        # Per token id: (class, value). Durations keep their MidiTok string key because their
        # length in ticks depends on the time signature's denominator.
        table: list[tuple[int, object]] = [(_INVALID, None)] * len(remi.vocab)
        for tok, i in remi.vocab.items():
            kind = _TYPES[tok.split("_", 1)[0]]
            val = tok.split("_", 1)[1]
            if kind == _POSITION:
                val = int(val)
            elif kind == _PITCH:
                val = int(val) if lo <= int(val) <= hi else None
            elif kind == _VELOCITY:
                val = int(val)
            elif kind == _TEMPO:
                val = float(val)
            elif kind == _TIMESIG:
                val = tuple(remi._parse_token_time_signature(val))
            table[i] = (kind, val)
        self._table = table
        # Per denominator: ticks per REMI beat, ticks per position, duration key -> ticks.
        self._tpb = dict(remi._tpb_per_ts)
        self._ticks_per_pos = {d: remi._compute_ticks_per_pos(tpb) for d, tpb in self._tpb.items()}
        self._dur_ticks = {d: remi._tpb_tokens_to_ticks[tpb] for d, tpb in self._tpb.items()}
        self.reset(start_beat, time_signature, start_bar)

    # -- state ---------------------------------------------------------------------------
    def reset(self, start_beat: float = 0.0, time_signature: tuple[int, int] | None = None,
              start_bar: int = 0) -> None:
        """Start a new token sequence whose beat 0 is ``start_beat``.

        ``time_signature=None`` decodes exactly like MidiTok (metre from the first ``TimeSig``
        before any note, else 4/4); a given metre is used from the start instead.
        """
        self.start_beat = float(start_beat)
        self.start_bar = int(start_bar)
        self.skipped = 0
        self._bar = -1  # MidiTok's current_bar
        self._tick = 0  # MidiTok's current_tick
        self._bar_tick = 0  # MidiTok's tick_at_current_bar
        self._pitch: int | None = None  # pending note: Pitch seen ...
        self._onset = 0
        self._velocity: int | None = None  # ... and its Velocity
        self._held: list[int] = []  # leading tokens held until the first metre is known
        self._set_time_signature(time_signature or DEFAULT_TIME_SIGNATURE)
        self._resolved = time_signature is not None
        self._announce = time_signature is not None  # emit the opening time_signature event
        self.tempo: float | None = None  # the last tempo token's BPM

    def rebase(self, start_beat: float | None = None) -> list[Event]:
        """Start a new token sequence at the next bar, keeping the metre and bar numbering.

        For after the engine re-primes the model: the fresh context starts with ``Bar``; its
        first bar lands at ``start_beat`` (default: where the next bar of this stream starts),
        numbered one after the current bar. Ends the old sequence like :meth:`finish` and
        returns what that releases (nearly always nothing); a note still missing its
        Velocity/Duration is dropped. Feeding ``A``, ``rebase()``, then ``B`` gives the events
        of ``A + B`` when ``B`` starts with ``Bar``.
        """
        out = self.finish()
        beat = self.next_bar_beat if start_beat is None else start_beat
        ts, bar, skipped, tempo = self.time_signature, self.current_bar + 1, self.skipped, self.tempo
        self.reset(beat, ts, bar)
        self.skipped, self.tempo, self._announce = skipped, tempo, False
        return out

    def _set_time_signature(self, ts: tuple[int, int]) -> None:
        num, den = ts
        self.time_signature = (num, den)
        self._ticks_per_bar = miditok.utils.compute_ticks_per_bar(TimeSignature(0, num, den), self.tpq)
        self._pos_ticks = self._ticks_per_pos[den]
        self._durations = self._dur_ticks[den]

    def _beat(self, tick: int) -> float:
        return self.start_beat + tick / self.tpq

    @property
    def pending_pitch(self) -> int | None:
        """The pitch of the note being read (Pitch seen, Duration not yet), else None."""
        return self._pitch

    @property
    def current_bar(self) -> int:
        """Number of the bar being decoded (``start_bar - 1`` before the first bar)."""
        return self.start_bar + self._bar

    @property
    def beat(self) -> float:
        """The current time (where a note would start now), in beats."""
        return self._beat(self._tick)

    @property
    def bar_beat(self) -> float:
        """Where the current bar started, in beats."""
        return self._beat(self._bar_tick)

    @property
    def next_bar_beat(self) -> float:
        """Where the next ``Bar`` token would start its bar, in beats."""
        return self._beat(self._bar_tick + (self._ticks_per_bar if self._bar >= 0 else 0))

    @property
    def beats_per_bar(self) -> float:
        """Length of a bar of the current time signature, in quarter notes."""
        return self._ticks_per_bar / self.tpq

    # -- decoding ------------------------------------------------------------------------
    def feed(self, token_id: int) -> list[Event]:
        """Decode one token id; returns the events it completes (often none)."""
        out: list[Event] = []
        try:
            i = int(token_id)
        except (TypeError, ValueError, OverflowError):
            i = -1
        kind, val = self._table[i] if 0 <= i < len(self._table) else (_INVALID, None)
        if kind == _SPECIAL:
            return out
        if not self._resolved:
            # MidiTok takes the metre at tick 0 from the first TimeSig before any note token.
            if kind == _TIMESIG:
                self._resolve(val, out)
            elif kind in (_PITCH, _VELOCITY, _DURATION):
                self._resolve(DEFAULT_TIME_SIGNATURE, out)
            else:
                self._held.append(i)
                return out
        self._step(kind, val, out)
        return out

    def finish(self) -> list[Event]:
        """End of the sequence: releases held tokens; an unfinished note is dropped."""
        out: list[Event] = []
        if not self._resolved:
            self._resolve(DEFAULT_TIME_SIGNATURE, out)
        if self._pitch is not None:
            self.skipped += 1 + (self._velocity is not None)
            self._pitch = self._velocity = None
        return out

    def _resolve(self, ts: tuple[int, int], out: list[Event]) -> None:
        self._set_time_signature(ts)
        self._resolved, self._announce = True, True
        held, self._held = self._held, []
        self._step(_SPECIAL, None, out)  # emits the opening time_signature event
        for i in held:
            self._step(*(self._table[i] if 0 <= i < len(self._table) else (_INVALID, None)), out)

    def _step(self, kind: int, val, out: list[Event]) -> None:
        if self._announce:
            self._announce = False
            out.append(Event(TIME_SIGNATURE, self.start_beat, value=self.time_signature))
        if kind == _SPECIAL:
            return
        # A note is Pitch, Velocity, Duration in a row: any other token drops a pending one.
        if self._pitch is not None:
            if self._velocity is None and kind == _VELOCITY:
                self._velocity = val
                return
            if self._velocity is not None and kind == _DURATION:
                dur = self._durations[val]
                on = self._beat(self._onset)
                out.append(Event(NOTE_ON, on, self._pitch, self._velocity, dur / self.tpq))
                out.append(Event(NOTE_OFF, self._beat(self._onset + dur), self._pitch, 0, on))
                self._pitch = self._velocity = None
                return
            self.skipped += 1 + (self._velocity is not None)
            self._pitch = self._velocity = None

        if kind == _BAR:
            self._bar += 1
            if self._bar > 0:
                self._tick = self._bar_tick + self._ticks_per_bar
            self._bar_tick = self._tick
            out.append(Event(BAR, self._beat(self._bar_tick), value=self.current_bar))
        elif kind == _POSITION:
            if self._bar == -1:  # a Position before any Bar opens bar 0
                self._bar = 0
                out.append(Event(BAR, self._beat(self._bar_tick), value=self.current_bar))
            self._tick = self._bar_tick + val * self._pos_ticks
        elif kind == _PITCH:
            if val is None:  # outside the pitch range: MidiTok ignores it
                self.skipped += 1
            else:
                self._pitch, self._onset = val, self._tick
        elif kind == _TEMPO:
            self.tempo = val
            out.append(Event(TEMPO, self._beat(self._tick), value=val))
        elif kind == _TIMESIG:
            if val != self.time_signature:
                self._set_time_signature(val)
                out.append(Event(TIME_SIGNATURE, self._beat(self._tick), value=val))
        else:  # stray Velocity / Duration, or an id outside the vocabulary
            self.skipped += 1


def sort_events(events: Iterable[Event]) -> list[Event]:
    """Events in playing order: by beat, then bar/metre/tempo/note-off/note-on, then arrival."""
    return sorted(events, key=lambda e: (e.beat, KIND_ORDER[e.kind]))


def decode_events(tokenizer: Tokenizer, ids: Iterable[int], start_beat: float = 0.0) -> list[Event]:
    """Decode a whole id sequence into a time-sorted event list (see :class:`StreamingDecoder`)."""
    dec = StreamingDecoder(tokenizer, start_beat)
    events: list[Event] = []
    for i in ids:
        events.extend(dec.feed(i))
    events.extend(dec.finish())
    return sort_events(events)
