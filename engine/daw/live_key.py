"""Live's song key as Moodroll's key lock (``--key live``, the app's Key menu "Follow Live").

Live 12 gives a set a key: a root note (0 = C ... 11 = B) and one of its scales, by name;
AbletonOSC reads them at ``/live/song/get/root_note`` and ``/live/song/get/scale_name`` and,
after ``/live/song/start_listen/...``, sends them again whenever the user changes them.
:func:`key_from_live` maps Live's scale names onto the engine's scales
(:data:`engine.music.theory.SCALES`); a scale the engine has not got gives one line and no lock.
:class:`LiveKey` asks and listens without blocking anyone (the answers arrive on the AbletonOSC
client's socket thread) and calls ``on_change(key, line)`` whenever the key Live says changes;
``key`` is a key the engine parses ("D dorian") or None (the mood picks the key). Older Live
(before 12) and older AbletonOSC answer with ``/live/error``: one line, and None.

What it feeds is the existing key-lock path: ``moodroll live`` hands each key to
:meth:`engine.daw.live_control.LiveControl.set_key` (the planner's user key, heard from the
next bar), ``moodroll generate`` uses the first one as ``--key``.
"""
from __future__ import annotations

import threading
import time

from engine.music.theory import MAJOR_NAMES, SCALES, parse_key
from engine.daw.oscio import LOOPBACK

# (engine.daw.ableton is imported when a LiveKey is made: the app's Key menu imports this module at start-up)

LIVE_KEY = "live"  # the --key value (and the app's menu entry's data) that follows Live

# Live 12's scale names (its Scale menu, in order) -> the engine's scale; None: the engine has not got it.
LIVE_SCALES: dict[str, str | None] = {
    "Major": "major", "Minor": "minor", "Dorian": "dorian", "Mixolydian": "mixolydian", "Lydian": "lydian",
    "Phrygian": "phrygian", "Locrian": "locrian", "Whole Tone": None, "Half-whole Dim.": None,
    "Whole-half Dim.": None, "Minor Blues": "blues", "Minor Pentatonic": "minor pentatonic",
    "Major Pentatonic": "major pentatonic", "Harmonic Minor": "harmonic minor", "Harmonic Major": None,
    "Dorian #4": None, "Phrygian Dominant": None, "Melodic Minor": "melodic minor", "Lydian Augmented": None,
    "Lydian Dominant": None, "Super Locrian": None, "8-Tone Spanish": None, "Bhairav": None,
    "Hungarian Minor": None, "Hirajoshi": None, "In-Sen": None, "Iwato": None, "Kumoi": None,
    "Pelog Selisir": None, "Pelog Tembung": None, "Messiaen 3": None, "Messiaen 4": None, "Messiaen 5": None,
    "Messiaen 6": None, "Messiaen 7": None,
}
_BY_LOWER = {k.lower(): v for k, v in LIVE_SCALES.items()}
MINOR_SPELLING = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]
NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def key_from_live(root_note, scale_name) -> tuple[str | None, str]:
    """Live's root note and scale name -> (the engine's key, or None; one line saying so)."""
    if isinstance(root_note, bool) or not isinstance(root_note, (int, float)) or not 0 <= int(root_note) <= 11 \
            or not isinstance(scale_name, str):
        return None, f"Live's key is not one Moodroll can read ({root_note!r}, {scale_name!r}): the key follows the mood"
    root = int(root_note)
    name = " ".join(scale_name.split())
    if name.lower() not in _BY_LOWER:
        return None, f"Live's scale {name!r} is not one Moodroll knows: the key follows the mood"
    scale = _BY_LOWER[name.lower()]
    if scale is None:
        return None, (f"Live's key is {NOTE_NAMES[root]} {name}, a scale Moodroll has not got "
                      f"(it has {', '.join(s for s in SCALES if s != 'chromatic')}): the key follows the mood")
    minorish = "minor" in scale or scale in ("blues", "dorian", "phrygian", "locrian")
    key = f"{(MINOR_SPELLING if minorish else MAJOR_NAMES)[root]} {scale}"
    parse_key(key)  # (every mapped scale is the engine's: this cannot fail)
    return key, f"Live's key: {key}"


class LiveKey:
    """Asks Live for its key and follows it (see the module docstring).

    ``client``: an :class:`AbletonOSCClient` to use; None: the shared one for
    ``host``/``port``/``reply_port`` (:meth:`AbletonOSCClient.open`: AbletonOSC answers one
    reply port, which the transport follower and Send to Live use too). ``on_change``
    runs on the client's socket thread. After ``answer_s`` without an answer it says so once
    (``line``; ``outcome`` is set) and keeps asking every ``retry_s``: Live may start later."""

    def __init__(self, client=None, host: str = LOOPBACK, port: int | None = None,
                 reply_port: int | None = None, on_change=None, answer_s: float = 2.0, retry_s: float = 2.0):
        from engine.daw.ableton import AbletonOSCClient

        self._own = client is None
        self.client = AbletonOSCClient.open(host, port, reply_port) if client is None else client
        self.on_change, self.answer_s, self.retry_s = on_change, answer_s, retry_s
        self.root = self.scale = None
        self.key: str | None = None
        self.line = f"asking Live for its key (AbletonOSC at {self.client.live[0]}:{self.client.live[1]})"
        self.known = False  # Live has told its key
        self.refused = False  # Live answered that it has none (older Live or AbletonOSC)
        self.outcome = threading.Event()  # set once there is a first answer, a refusal or a silence
        self._lock = threading.Lock()
        self._started_at = self._asked_at = None
        self._said_silence = False

    def start(self) -> "LiveKey":
        self.client.listeners.append(self._on_live)
        self.client.tickers.append(self._tick)
        self._started_at = time.monotonic()
        self._ask()
        return self

    def wait(self, timeout: float) -> bool:
        """Block until the first outcome (for the command line; the app never waits)."""
        return self.outcome.wait(timeout)

    def close(self) -> None:
        for p in ("root_note", "scale_name"):
            self.client.socket.send(f"/live/song/stop_listen/{p}", [], self.client.live)
        for group, fn in ((self.client.listeners, self._on_live), (self.client.tickers, self._tick)):
            if fn in group:
                group.remove(fn)
        if self._own:
            self.client.close()

    def follow(self, control, report=None, applied=...) -> None:
        """From now on each key Live says goes to ``control.set_key`` (the key-lock path of
        :class:`engine.daw.live_control.LiveControl`: heard from the next bar) and its line to
        ``report``. ``applied``: the key already in use (default: the last one read); if Live's
        has changed since, it is applied now."""
        applied = [self.key if applied is ... else applied]

        def on_change(key, line):
            if report is not None:
                report(line + (" (from the next bar)" if key != applied[0] else ""))
            if key != applied[0]:
                applied[0] = key
                control.set_key(key)

        self.on_change = on_change
        with self._lock:
            key, line = self.key, self.line
        if key != applied[0]:
            on_change(key, line)

    def _ask(self) -> None:
        self._asked_at = time.monotonic()
        for p in ("root_note", "scale_name"):
            self.client.socket.send(f"/live/song/get/{p}", [], self.client.live)
            self.client.socket.send(f"/live/song/start_listen/{p}", [], self.client.live)

    def _tick(self, now: float) -> None:
        if self.known or self.refused or self._started_at is None:
            return
        if not self._said_silence and now - self._started_at > self.answer_s:
            self._said_silence = True
            live = self.client.live
            self._tell(None, f"no answer from AbletonOSC at {live[0]}:{live[1]} about Live's key (is Live running, "
                             "with AbletonOSC chosen as a Control Surface?): the key follows the mood")
        if now - self._asked_at > self.retry_s:
            self._ask()

    def _on_live(self, address: str, args: list, sender: tuple, t: float) -> None:
        value = args[-1] if args else None
        if address == "/live/song/get/root_note":
            self.root = value
        elif address == "/live/song/get/scale_name":
            self.scale = value
        elif address == "/live/startup":  # Live (re)loaded AbletonOSC: its listeners are gone
            self._ask()
            return
        elif address == "/live/error" and not self.known and not self.refused:
            from engine.daw.ableton import refusal

            line = refusal(args)
            if "root_note" in line or "scale_name" in line:
                self.refused = True
                self._tell(None, "Live did not say its key (a song key needs Live 12 and a recent AbletonOSC; "
                                 f"it says: {line}): the key follows the mood")
            return
        else:
            return
        if self.root is not None and self.scale is not None:
            self.known = True
            self._tell(*key_from_live(self.root, self.scale))

    def _tell(self, key: str | None, line: str) -> None:
        with self._lock:
            changed = (key, line) != (self.key, self.line) or not self.outcome.is_set()
            self.key, self.line = key, line
            self.outcome.set()
        if changed and self.on_change is not None:
            self.on_change(key, line)


def read_live_key(host: str = LOOPBACK, port: int | None = None, reply_port: int | None = None,
                  timeout: float = 2.0) -> tuple[str | None, str]:
    """Live's key once (``moodroll generate --key live``): (key or None, one line)."""
    from engine.daw.ableton import LiveBridgeError

    try:
        k = LiveKey(host=host, port=port, reply_port=reply_port, answer_s=timeout).start()
    except LiveBridgeError as e:
        return None, f"cannot ask Live for its key: {e}: the key follows the mood"
    try:
        k.wait(timeout + 1.0)
        return k.key, k.line
    finally:
        k.close()
