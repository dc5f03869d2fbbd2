"""A Qt-free tap on the decoder thread: what the decoder wrote ahead, for the piano roll.

:class:`LookaheadTee` wraps the token source of a :class:`engine.live.decoder.LiveStream` (normally a
:class:`engine.model.generator.MusicGenerator`). On the decoder thread, after every token, it copies
the note events that token completed (``gen.last_events``) into a bounded deque, and logs which
condition the token was sampled under. The UI thread drains the deque with a timer: the piano
roll's decoded look-ahead. Nothing here touches Qt, takes a lock the playback thread waits
for, or blocks: ``deque.append`` / ``popleft`` are atomic under the GIL.
"""
from __future__ import annotations

from collections import deque


class LookaheadTee:
    """A token source that passes ``source.next_token()`` through and records what it decoded.

    ``notes``: ``(onset beat, pitch, velocity, duration beats)`` per decoded note-on, in order.
    ``bars``: beat of every decoded bar line. ``log``: ``(token, condition VA)`` per token, the
    VA the token was sampled under (None = unconditioned): how tests see steering take effect.
    """

    def __init__(self, source, keep: int = 4096):
        from engine.music.events import BAR, NOTE_ON  # here, not at import: the window shows before the engine loads

        self._bar, self._note_on = BAR, NOTE_ON
        self.source = source
        self.notes: deque = deque(maxlen=keep)
        self.bars: deque = deque(maxlen=keep)
        self.log: deque = deque(maxlen=keep)

    def next_token(self) -> int:
        src = self.source
        condition = getattr(src, "condition", None)
        va = condition.va if condition is not None else None
        tok = src.next_token()
        self.log.append((tok, va))
        for ev in getattr(src, "last_events", ()):
            if ev.kind == self._note_on:
                self.notes.append((float(ev.beat), int(ev.pitch), int(ev.velocity), float(ev.value or 0.0)))
            elif ev.kind == self._bar:
                self.bars.append(float(ev.beat))
        return tok

    def drain(self) -> tuple[list, list]:
        """Everything recorded since the last drain: (notes, bar beats). Called by the UI thread."""
        notes, bars = [], []
        for q, out in ((self.notes, notes), (self.bars, bars)):
            while True:
                try:
                    out.append(q.popleft())
                except IndexError:
                    break
        return notes, bars

    # The stream steers through these (LiveStream checks hasattr on its source).
    def __getattr__(self, name):
        if name in ("set_condition", "set_controls", "set_sampling", "analyze_image", "condition",
                    "controls", "sampling", "tokenizer", "state", "last_events"):
            return getattr(self.source, name)
        raise AttributeError(name)
