"""MusicState: the musical situation after each token, which every logit filter reads.

It follows the stream through :class:`engine.music.events.StreamingDecoder`, so the filters know
the current time, the sounding notes and the recent onsets; its ``feed`` returns those events,
which the generator hands on (``last_events``).
"""
from __future__ import annotations

from collections import deque

import numpy as np

from engine.music.events import NOTE_ON, Event, StreamingDecoder
from engine.music.tokenizer import Tokenizer

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
        self.sounding: list[tuple[float, float, int]] = []  # (onset, offset, pitch) of notes not yet over
        self.onsets: list[float] = []  # onset beats, newest last (pruned to the density window)
        self.recent: deque = deque(maxlen=256)  # onset beats, newest last (never pruned by a mask)
        self.recent_pitches: deque = deque(maxlen=64)  # their pitches
        self.chord_beat: float | None = None  # onset beat of the notes in ``chord``
        self.chord: set[int] = set()  # pitches already started at ``chord_beat``
        self.notes = 0  # notes completed since reset
        self.last_velocity = 0  # of the last note completed
        self.memory: dict = {}  # filters' running state that outlives a change of controls (cleared here)

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
        self.sounding = [n for n in self.sounding if n[1] > now]
        return sum(1 for n in self.sounding if n[0] <= now)

    def sounding_pitches(self) -> list[int]:
        """Pitches sounding at the current time (those struck at it included)."""
        now = self.now
        return [p for on, off, p in self.sounding if on <= now < off]

    @property
    def pending_pitch(self) -> int | None:
        """The pitch of the note being written (its Pitch token seen, not yet its Duration)."""
        return self.decoder.pending_pitch

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
                self.sounding.append((e.beat, e.beat + float(e.value), e.pitch))
                self.last_velocity = e.velocity
                self.onsets.append(e.beat)
                self.recent.append(e.beat)
                self.recent_pitches.append(e.pitch)
                if e.beat != self.chord_beat:
                    self.chord_beat, self.chord = e.beat, set()
                self.chord.add(e.pitch)
        return events
