"""The CLI's live session as a :class:`engine.daw.protocol.Controllable` (``moodroll live --osc``).

A thin adapter: each method turns one control message into what
:class:`engine.live.decoder.LiveStream` already does — steering queued for the next bar
(``steer``/``set_controls``/``set_sampling``), ``pause``/``resume``, ``capture`` — so the
playback thread never waits for it. The desktop app implements the same interface itself.

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
    """Steers ``stream`` (a LiveStream) whose source is ``generator`` (a MusicGenerator).

    ``planner`` (an :class:`engine.emotion.planner.EmotionPlanner`, guarded by ``lock``, as
    ``run_live`` makes them): a new mood retargets the automatic attributes (key, tempo,
    density...), and a key from ``/moodroll/key`` becomes the user's lock inside the planner, so
    the planner's later tempo steps keep it."""

    def __init__(self, stream, generator, port_name: str, planner=None, lock=None):
        import threading

        self.stream, self.generator, self.port_name = stream, generator, port_name
        self.planner, self.lock = planner, lock or threading.Lock()
        self._held: str | None = None  # "paused" / "stopped" while held by a message
        va = getattr(getattr(generator, "condition", None), "va", None)
        self._va = va  # the mood asked for last (applied from the next bar)

    def _planned(self, key=..., va=None):
        """The controls the planner makes for ``va`` (default: the last mood) and, if given, a new key lock."""
        with self.lock:
            p = self.planner
            if key is not ...:
                p.user = dataclasses.replace(p.user, key=key)
            va = va or self._va
            return p.retarget(*va) if va else p.user

    def set_va(self, valence: float, arousal: float) -> None:
        self.stream.set_va(valence, arousal)
        self._va = (float(valence), float(arousal))
        if self.planner is not None:
            self.stream.set_controls(self._planned(va=self._va))

    def set_image(self, path: str) -> tuple[float, float]:
        import numpy as np

        from engine.model.generator import Condition
        from engine.picture.image import load_image

        rgb = load_image(Path(path).expanduser())  # ImageReadError (a ValueError): not a picture
        tokens, (v, a) = self.generator.analyze_image(rgb)
        v, a = float(np.clip(v, 1, 9)), float(np.clip(a, 1, 9))
        self._va = (v, a)
        controls = self._planned(va=self._va) if self.planner is not None else None
        self.stream.steer(condition=Condition(v, a, tokens), controls=controls)
        return v, a

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
        from engine.model.controls import parse_key

        key = None if key is None or key.strip().lower() in UNLOCK else key.strip()
        if key is not None:
            parse_key(key)  # ValueError names the bad key
        if self.planner is not None:  # None: the mood picks the key again
            self.stream.set_controls(self._planned(key=key))
        else:
            self.stream.set_controls(dataclasses.replace(self.generator.controls, key=key))

    def set_strength(self, strength: float) -> None:
        self.stream.set_sampling(dataclasses.replace(self.generator.sampling, guidance=float(strength)))

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
        v, a = self._va if self._va else (None, None)
        return Status(state, bar, s.bpm, v, a, self.port_name, s.status)
