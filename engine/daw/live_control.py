"""The CLI's live session as a :class:`engine.daw.protocol.Controllable` (``moodroll live --osc``).

A thin adapter: each method turns one control message into what the
:class:`engine.live.performance.Performance` and its stream already do — steering queued for the
next bar, ``pause``/``resume``, ``capture`` — so the playback thread never waits for it. The
desktop app implements the same interface itself.

``/moodroll/stop`` and ``/moodroll/pause`` both silence at once and hold the stream (a
live stream cannot rewind its music); ``play`` then goes on from the next bar. They differ in
the state that ``status`` reports, so a controller can show which was pressed.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from engine.daw.protocol import Status

UNLOCK = ("", "free", "none", "off")


class LiveControl:
    """Steers a :class:`engine.live.performance.Performance` (its stream started) from control messages:
    a new mood retargets the automatic attributes (key, tempo, density...), and a key from
    ``/moodroll/key`` becomes the user's lock, so the planner's later tempo steps keep it."""

    def __init__(self, performance, port_name: str):
        self.performance, self.port_name = performance, port_name
        self._held: str | None = None  # "paused" / "stopped" while held by a message

    @property
    def stream(self):
        return self.performance.stream

    def set_va(self, valence: float, arousal: float) -> None:
        self.performance.set_target((valence, arousal))

    def set_image(self, path: str) -> tuple[float, float]:
        from engine.picture.image import load_image

        rgb = load_image(Path(path).expanduser())  # ImageReadError (a ValueError): not a picture
        self.performance.target_va = None  # a new picture is followed again
        return self.performance.open_picture(rgb)

    def play(self) -> None:
        self._held = None
        self.stream.resume()

    def pause(self) -> None:
        self._held = "paused"
        self.stream.pause()

    def stop(self) -> None:
        self._held = "stopped"
        self.stream.pause()

    def set_key(self, key: str | None) -> None:
        from engine.music.theory import parse_key

        key = None if key is None or key.strip().lower() in UNLOCK else key.strip()
        if key is not None:
            parse_key(key)  # ValueError names the bad key
        self.performance.set_key(key)  # None: the mood picks the key again

    def set_strength(self, strength: float) -> None:
        p = self.performance
        p.set_sampling(dataclasses.replace(p.sampling, guidance=float(strength)))

    def capture(self, bars: int, path: str) -> str:
        p = Path(path).expanduser()
        if not p.parent.is_dir():
            raise ValueError(f"cannot write {path}: its folder does not exist")
        return str(self.stream.capture(p, bars))

    def status(self) -> Status:
        s = self.stream
        if not s.running:
            state = "ended"
        elif self._held:
            state = self._held
        elif s.status.startswith("playing"):
            state = "playing"
        else:
            state = "waiting"
        bars = list(s.played_bars)
        bar = bars[-1][0] + 1 if bars else 0
        v, a = self.performance.va() or (None, None)
        return Status(state, bar, s.bpm, v, a, self.port_name, s.status)
