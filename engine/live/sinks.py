"""Where a live stream's MIDI goes: one base class for every sink, and a fan-out to several.

:class:`Sink` is mido-style: a subclass defines ``send(bytes) -> bool`` (never raising: False
when the receiver refused or is gone) and inherits the note bookkeeping (``note_on``,
``note_off``, ``sounding``, ``all_notes_off``), so every sink ends every note it started the same
way. The sinks: :class:`engine.live.ports.MidiOutput` (a real port), the app's preview synth
(:class:`desktop.preview.PreviewSynth`), the in-memory port of the tests and the soak
(:class:`tools.virtual_midi.MemoryOutput`) and :class:`FanOut`.
"""
from __future__ import annotations

from typing import Sequence

ALL_NOTES_OFF = 123  # CC number


class Sink:
    """Note bookkeeping on top of ``send``: which notes are sounding, so :meth:`all_notes_off`
    can end every one. Subclasses call :meth:`_init_notes` in ``__init__``."""

    def _init_notes(self) -> None:
        self.sounding: dict[tuple[int, int], int] = {}  # (channel, pitch) -> velocity
        self.channels_used: set[int] = {0}

    def send(self, message: Sequence[int]) -> bool:  # pragma: no cover - every sink defines it
        raise NotImplementedError

    def note_on(self, pitch: int, velocity: int, channel: int = 0) -> bool:
        self.sounding[(channel, pitch)] = velocity
        self.channels_used.add(channel)
        return self.send((0x90 | channel, pitch, velocity))

    def note_off(self, pitch: int, channel: int = 0) -> bool:
        self.sounding.pop((channel, pitch), None)
        return self.send((0x80 | channel, pitch, 0))

    def all_notes_off(self) -> None:
        """A note-off for every sounding note, then CC 123 (all notes off) on every channel used."""
        for channel, pitch in list(self.sounding):
            self.note_off(pitch, channel)
        self.sounding.clear()
        for channel in sorted(self.channels_used):
            self.send((0xB0 | channel, ALL_NOTES_OFF, 0))


class FanOut(Sink):
    """One sink that forwards to every sink in ``sinks`` (the DAW's port, the preview synth).

    Each sink keeps its own bookkeeping; a call is True when any sink took it, and a sink that
    raises never stops the others. ``sinks`` is swapped in one assignment, so the playback thread
    sees the old list or the new one, and a port can be changed while playing."""

    def __init__(self, *sinks):
        self.sinks = [s for s in sinks if s is not None]

    @property
    def status(self) -> str:
        return "; ".join(getattr(s, "status", "") for s in self.sinks)

    @property
    def connected(self) -> bool:
        return any(getattr(s, "connected", True) for s in self.sinks)

    def _each(self, method: str, *args) -> bool:
        ok = False
        for s in list(self.sinks):
            try:
                ok = bool(getattr(s, method)(*args)) or ok
            except Exception:  # one broken sink must not silence (or leave sounding) another
                pass
        return ok

    def send(self, message) -> bool:
        return self._each("send", message)

    def note_on(self, pitch: int, velocity: int, channel: int = 0) -> bool:
        return self._each("note_on", pitch, velocity, channel)

    def note_off(self, pitch: int, channel: int = 0) -> bool:
        return self._each("note_off", pitch, channel)

    def all_notes_off(self) -> None:
        self._each("all_notes_off")

    def close(self) -> None:
        self._each("close")
