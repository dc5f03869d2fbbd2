"""``--follow reaper``: follow Reaper's own OSC control surface (Preferences > Control/OSC/web).

Reaper's "Default" pattern config (Default.ReaperOSC) sends a device feedback for

    PLAY   t/play        ``/play 1`` while playing, ``/play 0`` when not
    STOP   t/stop        ``/stop 1`` when stopped
    PAUSE  t/pause       ``/pause 1`` when paused
    RECORD t/record      ``/record 1`` while recording (it plays)
    TEMPO  f/tempo/raw   ``/tempo/raw 120`` (BPM) whenever the tempo changes
    BEAT   s/beat/str    ``/beat/str "9.3.50"`` = measure 9, beat 3, 50/100 of a beat, while playing
    TIME   f/time        ``/time 16.25`` (seconds; used only when no ``/beat/str`` comes)

:class:`ReaperFollower` listens for them on a UDP port (Reaper's "Device port"; default
9001, on 127.0.0.1) and feeds an :class:`engine.daw.transport.OscTransport`, which playback
follows. Reaper counts beats in the time signature's beat (a quarter in 4/4, an eighth in
6/8): ``time_signature`` (``moodroll live --time-signature``, default 4/4) turns measure.beat
into quarter notes, assuming one metre from the project start. Everything else Reaper sends
(meters, track names, ...) is ignored. plugins/reaper/README.md gives the surface settings.
Reaper itself cannot run on the machines Moodroll is tested on: tests use a stand-in sender.
"""
from __future__ import annotations

import re

from engine.daw.oscio import LOOPBACK, OscSocket
from engine.daw.transport import OscTransport

DEFAULT_PORT = 9001  # Reaper's "Device port": where it sends its feedback
_BEAT = re.compile(r"^\s*(-?\d+)\.(\d+)\.(\d+)\s*$")


def parse_beat_string(text: str, time_signature: tuple[int, int] = (4, 4)) -> float | None:
    """Reaper's ``/beat/str`` ("measure.beat.hundredths", 1-based) -> quarter notes from the
    project start; None if it is not one."""
    m = _BEAT.match(text) if isinstance(text, str) else None
    if m is None:
        return None
    measure, beat, frac = int(m.group(1)), int(m.group(2)), m.group(3)
    num, den = time_signature
    if beat < 1 or beat > num:
        return None
    beats = (measure - 1) * num + (beat - 1) + int(frac) / 10 ** len(frac)
    return beats * 4.0 / den


def _number(args: list) -> float | None:
    if len(args) >= 1 and isinstance(args[0], (int, float)) and not isinstance(args[0], bool):
        return float(args[0])
    if len(args) >= 1 and isinstance(args[0], bool):
        return 1.0 if args[0] else 0.0
    if not args:
        return 1.0  # a bare trigger message
    return None


class ReaperFollower(OscTransport):
    """Reaper's transport, from its OSC surface feedback on ``host:port`` (see the module docstring)."""

    def __init__(self, host: str = LOOPBACK, port: int = DEFAULT_PORT,
                 time_signature: tuple[int, int] | None = (4, 4), **kw):
        self.time_signature = tuple(time_signature or (4, 4))
        num, den = self.time_signature
        super().__init__("Reaper", beats_per_bar=num * 4.0 / den, **kw)
        self._beat_strings = 0
        self.ignored = 0  # messages that are not transport feedback
        self.socket = OscSocket(host, port, self._on_message, None, name="reaper-follower",
                                what="the Reaper feedback", on_tick=self.check_lost)
        self.host, self.port = self.socket.host, self.socket.port
        self.status = f"waiting for Reaper's OSC feedback on {self.host}:{self.port}: press play in Reaper"

    def start(self) -> "ReaperFollower":
        self.socket.start()
        return self

    def close(self) -> None:
        self.socket.close()

    def _on_message(self, address: str, args: list, sender: tuple, t: float) -> None:
        if address == "/beat/str":
            beat = parse_beat_string(args[0], self.time_signature) if args else None
            if beat is not None:
                self._beat_strings += 1
                self.set_position(beat, t)
                return
        elif address == "/tempo/raw":
            bpm = _number(args)
            if bpm is not None and self.set_tempo(bpm, t):
                return
        elif address in ("/play", "/record"):
            x = _number(args)
            if x is not None:
                if x >= 0.5:
                    self.set_playing(True, t)
                elif address == "/play":
                    self.set_playing(False, t)
                return
        elif address in ("/stop", "/pause"):
            x = _number(args)
            if x is not None:
                if x >= 0.5:
                    self.set_playing(False, t)
                return
        elif address == "/time" and self._beat_strings == 0:
            x = _number(args)
            bpm = self.reported_bpm
            if x is not None and args and bpm:
                self.set_position(x * bpm / 60.0, t)  # one tempo from the start assumed
                return
        self.ignored += 1
