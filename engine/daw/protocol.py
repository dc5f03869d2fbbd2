"""Moodroll's OSC control protocol: the messages, and the ``Controllable`` interface behind them.

The server (:mod:`engine.daw.osc_server`) checks every message against :data:`MESSAGES`
(address, argument types, ranges) and then calls one method of a :class:`Controllable`:
the CLI's live session (:class:`engine.live.command.LiveControl`) and the desktop app implement it.
A method raises ``ValueError`` with one line when it cannot do what was asked; the server
sends that line to the sender on ``/moodroll/error``. docs/protocol.md documents all of it.

Threads: ``set_image`` and ``capture`` are slow (decoding a picture and running the image
encoder, writing a file) and are called on the server's worker thread; the others are
quick and are called on the server's receive thread. None of them is ever called on the
playback thread, and none may block for long: steering is queued for the next bar.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from engine.model.sampling import MAX_GUIDANCE
from engine.emotion.va import VA_MAX, VA_MIN

DEFAULT_PORT = 9000
PREFIX = "/moodroll"
ERROR = PREFIX + "/error"
MAX_CAPTURE_BARS = 64  # LiveStream keeps this many bars of history
MAX_PICTURE_BYTES = 64 << 20


@dataclass(frozen=True)
class Message:
    """One address the server accepts: its OSC argument types and what it does."""

    address: str
    types: str  # 'f' a number (int or float), 'i' a whole number, 's' a string
    method: str  # the Controllable method it calls
    slow: bool  # True: handled on the worker thread
    doc: str


MESSAGES: dict[str, Message] = {m.address: m for m in (
    Message("/moodroll/va", "ff", "set_va", False, "valence, arousal (1-9): steer to this mood from the next bar"),
    Message("/moodroll/image", "s", "set_image", True, "path of a picture: steer by it from the next bar; "
            "replies /moodroll/image s f f (path, its valence, arousal)"),
    Message("/moodroll/play", "", "play", False, "play (again): from the next bar"),
    Message("/moodroll/stop", "", "stop", False, "silence now (every note released) and hold"),
    Message("/moodroll/pause", "", "pause", False, "silence now and hold; play goes on where it paused"),
    Message("/moodroll/key", "s", "set_key", False, "lock a key from the next bar, e.g. 'C minor', "
            "'D dorian'; '' or 'free' unlocks"),
    Message("/moodroll/strength", "f", "set_strength", False, f"emotion strength (0-{MAX_GUIDANCE:g}, "
            "1 = off, 2 = default) from the next bar"),
    Message("/moodroll/capture", "is", "capture", True, f"bars (1-{MAX_CAPTURE_BARS}), path.mid: write "
            "the last bars played; replies /moodroll/capture i s"),
    Message("/moodroll/status", "", "status", False, "replies /moodroll/status s i f f f s s (state, bar, "
            "BPM, valence, arousal, MIDI port, status line)"),
)}


@dataclass(frozen=True)
class Status:
    """What ``/moodroll/status`` answers. ``bpm``/``valence``/``arousal`` are None when unknown."""

    state: str  # "playing", "paused", "stopped", "waiting" (for the DAW or the first bar), "ended"
    bar: int  # 1-based bar now playing (0 before the first)
    bpm: float | None
    valence: float | None
    arousal: float | None
    port: str  # the MIDI port the notes go to
    line: str = ""  # the stream's last status line

    def args(self) -> list:
        """The reply's OSC arguments (unknown numbers are sent as 0)."""
        return [self.state, int(self.bar), float(self.bpm or 0.0), float(self.valence or 0.0),
                float(self.arousal or 0.0), self.port, self.line]


@runtime_checkable
class Controllable(Protocol):
    """What the OSC server steers. Each method raises ValueError (one line) on a bad value."""

    def set_va(self, valence: float, arousal: float) -> None: ...

    def set_image(self, path: str) -> tuple[float, float]: ...  # the picture's (valence, arousal)

    def play(self) -> None: ...

    def stop(self) -> None: ...

    def pause(self) -> None: ...

    def set_key(self, key: str | None) -> None: ...  # None: no key lock

    def set_strength(self, strength: float) -> None: ...

    def capture(self, bars: int, path: str) -> str: ...  # the path written

    def status(self) -> Status: ...


def check_args(msg: Message, args: list) -> list:
    """Check count, types and ranges; returns the arguments converted (float/int/str).
    Raises ValueError with one line (without the address)."""
    if len(args) != len(msg.types):
        want = f"{len(msg.types)} argument{'s' * (len(msg.types) != 1)} ({msg.types})" if msg.types else "no arguments"
        raise ValueError(f"takes {want}, got {len(args)}")
    out = []
    for i, (kind, a) in enumerate(zip(msg.types, args), 1):
        if kind == "s":
            if not isinstance(a, str):
                raise ValueError(f"argument {i} must be a string, got {_osc_type(a)}")
            out.append(a)
            continue
        if isinstance(a, bool) or not isinstance(a, (int, float)):
            raise ValueError(f"argument {i} must be a number, got {_osc_type(a)}")
        if kind == "i":
            if a != a or a in (float("inf"), float("-inf")) or int(a) != a:
                raise ValueError(f"argument {i} must be a whole number, got {a!r}")
            out.append(int(a))
        else:
            out.append(float(a))
    m = msg.address
    if m == "/moodroll/va":
        for name, x in zip(("valence", "arousal"), out):
            if not (VA_MIN <= x <= VA_MAX):
                raise ValueError(f"{name} must be between {VA_MIN:g} and {VA_MAX:g}, got {x:g}")
    elif m == "/moodroll/strength":
        if not (0.0 < out[0] <= MAX_GUIDANCE):
            raise ValueError(f"strength must be above 0 and at most {MAX_GUIDANCE:g}, got {out[0]:g}")
    elif m == "/moodroll/capture":
        if not (1 <= out[0] <= MAX_CAPTURE_BARS):
            raise ValueError(f"bars must be 1-{MAX_CAPTURE_BARS}, got {out[0]}")
        if not out[1].lower().endswith((".mid", ".midi")):
            raise ValueError(f"the capture path must end in .mid, got {out[1]!r}")
    elif m == "/moodroll/image" and not out[0]:
        raise ValueError("the picture path is empty")
    return out


def _osc_type(a) -> str:
    if isinstance(a, bool):
        return "a true/false"
    if isinstance(a, (bytes, bytearray)):
        return "a blob"
    if isinstance(a, str):
        return "a string"
    if isinstance(a, (int, float)):
        return "a number"
    return type(a).__name__
