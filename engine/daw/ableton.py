"""Ableton Live through AbletonOSC (ideoforms/AbletonOSC, a Live Remote Script).

AbletonOSC listens on UDP 11000 and answers on 11001 of the sender's host; indices are
0-based; a getter's answer comes on the getter's own address. Used here:

===========================================  =========================================  ======================
sent                                         arguments                                  answer
===========================================  =========================================  ======================
/live/test                                                                              /live/test "ok"
/live/song/get/num_tracks, .../num_scenes                                               (count,)
/live/view/get/selected_track, ...scene                                                 (index,)
/live/clip_slot/get/has_clip                 track, slot                                (track, slot, bool)
/live/clip_slot/delete_clip                  track, slot                                -
/live/clip_slot/create_clip                  track, slot, length (beats)                -
/live/clip/add/notes                         track, slot, then per note: pitch, start,  -
                                             duration (beats), velocity, mute
/live/clip/set/name                          track, slot, name                          -
/live/clip/get/name, /live/clip/get/length   track, slot                                (track, slot, value)
/live/track/get/has_midi_input              track                                      (track, bool)
/live/song/get/root_note, .../scale_name                                                (value,)  (Live 12's key)
/live/song/start_listen/<p> (stop_listen)    p: tempo, is_playing, current_song_time,   /live/song/get/<p> value
                                             signature_numerator, signature_denominator, (now, and on change)
                                             root_note, scale_name
(sent by Live on its own)                                                               /live/startup, /live/error
===========================================  =========================================  ======================

A request AbletonOSC cannot carry out (no such track or clip, a property older Live has not
got, an address an older AbletonOSC has not got) answers nothing and sends ``/live/error`` with
the reason: :meth:`AbletonOSCClient.request` raises at once with that line instead of waiting.

:func:`send_take` puts a take in a clip slot (by default: the first empty slot of Live's
selected track, from its selected scene down, as a producer dropping clips in one by one expects); :class:`AbletonFollower` follows Live's tempo
and transport for ``moodroll live --follow live``; :mod:`engine.daw.live_key` follows Live's key.
Live cannot run on the machines Moodroll is tested on: the tests run AbletonOSC's own code
under a stand-in for Live's host API (tests/live_host/).
"""
from __future__ import annotations

import queue
import threading
import time

from engine.daw.oscio import LOOPBACK, OscPortError, OscSocket
from engine.takes.clip import read_take
from engine.daw.transport import OscTransport

LIVE_PORT = 11000  # AbletonOSC listens here
REPLY_PORT = 11001  # ... and answers here, on the sender's host
NOTES_PER_MESSAGE = 100  # 100 notes = ~2.6 kB, far below any UDP limit
LISTEN = ("tempo", "is_playing", "current_song_time", "signature_numerator", "signature_denominator")


class LiveBridgeError(ValueError):
    """Live/AbletonOSC did not answer, or refused; one line for the user."""


class AbletonOSCClient:
    """Sends to AbletonOSC at ``host:port`` from UDP ``reply_port`` (where its answers arrive).

    ``port``/``reply_port`` None: :data:`LIVE_PORT`/:data:`REPLY_PORT`. Every message that
    arrives is also given to each of the ``listeners`` (``fn(address, args, sender, t)``, on
    the socket's thread): one client serves the transport follower and the key follower, as
    AbletonOSC answers one reply port only."""

    def __init__(self, host: str = LOOPBACK, port: int | None = None, reply_port: int | None = None,
                 timeout: float = 2.0, on_message=None, on_tick=None):
        port = LIVE_PORT if port is None else port
        reply_port = REPLY_PORT if reply_port is None else reply_port
        self.live = (host, int(port))
        self.timeout = timeout
        self.listeners: list = [on_message] if on_message is not None else []
        self.tickers: list = [on_tick] if on_tick is not None else []
        self.errors: list[str] = []  # /live/error lines from Live
        self._replies: dict[str, queue.SimpleQueue] = {}
        self._waiting: set = set()  # the queues of requests awaiting an answer (an error ends them)
        self._lock = threading.Lock()
        bind = LOOPBACK if host in (LOOPBACK, "localhost") else "0.0.0.0"
        try:
            self.socket = OscSocket(bind, reply_port, self._on_message, None, name="abletonosc",
                                    what="the AbletonOSC reply", on_tick=self._tick)
        except OscPortError as e:
            raise LiveBridgeError(f"{e} (AbletonOSC always answers on {REPLY_PORT}: is another "
                                  "AbletonOSC client running, e.g. moodroll live --follow live?)") from None
        self.reply_port = self.socket.port
        self._users, self._key, self._closed = 1, None, threading.Event()
        self.socket.start()

    @classmethod
    def open(cls, host: str = LOOPBACK, port: int | None = None, reply_port: int | None = None,
             timeout: float = 2.0) -> "AbletonOSCClient":
        """The client for ``host:port`` answering on ``reply_port``, shared in this process:
        AbletonOSC answers one reply port only, so the take sender and the transport and key
        followers use one socket. Each ``open`` wants its ``close``; the last closes the socket."""
        key = (host, LIVE_PORT if port is None else int(port), REPLY_PORT if reply_port is None else int(reply_port))
        with _SHARED_LOCK:
            client = _SHARED.get(key)
            if client is not None and client._users > 0:
                client._users += 1
                return client
        if client is not None:  # the last user is closing it: its port is free once it has
            client._closed.wait(2.0)
        with _SHARED_LOCK:
            client = cls(host, key[1], key[2], timeout)
            client._key = key
            _SHARED[key] = client
            return client

    def close(self) -> None:
        with _SHARED_LOCK:
            self._users -= 1
            if self._users > 0:
                return
        self.socket.close()
        with _SHARED_LOCK:
            if self._key is not None and _SHARED.get(self._key) is self:
                del _SHARED[self._key]
        self._closed.set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, address: str, *args) -> None:
        if not self.socket.send(address, list(args), self.live):
            raise LiveBridgeError(f"cannot send {address} to {self.live[0]}:{self.live[1]}")

    def request(self, address: str, *args, want=None, timeout: float | None = None) -> list:
        """Send a getter and wait for its answer (on the same address; ``want(args)`` picks it).
        A ``/live/error`` while waiting ends the wait with that line (AbletonOSC answers in order)."""
        q = self._queue(address)
        while not q.empty():  # an old answer is not this one's
            q.get_nowait()
        with self._lock:
            self._waiting.add(q)
        try:
            self.send(address, *args)
            end = time.monotonic() + (self.timeout if timeout is None else timeout)
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    raise LiveBridgeError(f"no answer from AbletonOSC at {self.live[0]}:{self.live[1]} to {address} "
                                          "(is Live running, with AbletonOSC chosen as a Control Surface?)")
                try:
                    got = q.get(timeout=left)
                except queue.Empty:
                    continue
                if isinstance(got, _Refused):
                    raise LiveBridgeError(f"Live refused {address}: {got.line}")
                if want is None or want(got):
                    return got
        finally:
            with self._lock:
                self._waiting.discard(q)

    def _queue(self, address: str) -> queue.SimpleQueue:
        with self._lock:
            return self._replies.setdefault(address, queue.SimpleQueue())

    def _tick(self, now: float) -> None:
        for fn in list(self.tickers):
            fn(now)

    def _on_message(self, address: str, args: list, sender: tuple, t: float) -> None:
        if address == "/live/error":
            line = refusal(args)
            self.errors.append(line)
            with self._lock:
                for q in self._waiting:
                    q.put(_Refused(line))
        with self._lock:
            q = self._replies.get(address)
        if q is not None:
            q.put(args)
        for fn in list(self.listeners):
            fn(address, args, sender, t)


_SHARED: dict = {}  # (host, port, reply port) -> the shared AbletonOSCClient (AbletonOSCClient.open)
_SHARED_LOCK = threading.Lock()


class _Refused:
    def __init__(self, line: str):
        self.line = line


def refusal(args) -> str:
    """AbletonOSC's /live/error arguments as one line, without its "Error handling OSC message:" prefix."""
    text = " ".join(map(str, args)).strip()
    for prefix in ("Error handling OSC message:", "AbletonOSC:"):
        if text.startswith(prefix):
            text = text[len(prefix):].strip()
    return (text.splitlines() or ["(no reason given)"])[0][:300]


def send_take(path, track: int | None = None, slot: int | None = None, host: str = LOOPBACK,
              port: int | None = None, reply_port: int | None = None, replace: bool = False,
              timeout: float = 2.0) -> str:
    """Put the take at ``path`` into Live's clip slot (``track``, ``slot``: 0-based) as a MIDI
    clip of the take's length, with every note, named after the take. ``track`` None: Live's
    selected track; ``slot`` None: its first empty slot from the selected scene down (so takes
    sent one after another stack up instead of refusing). Returns a line saying what was done;
    raises ValueError (LiveBridgeError, MidiReadError) with one line."""
    take = read_take(path)
    if (track is not None and track < 0) or (slot is not None and slot < 0):
        raise LiveBridgeError("track and slot numbers start at 1")
    with AbletonOSCClient.open(host, port, reply_port, timeout) as live:
        errors = len(live.errors)  # (the connection may be shared: only the errors from here on are ours)
        live.request("/live/test", timeout=timeout)
        n_tracks = int(live.request("/live/song/get/num_tracks", timeout=timeout)[-1])
        if track is None:
            # (AbletonOSC versions that index song.tracks only fail on the master / a return track:
            # a /live/error line and no answer; later ones answer len(tracks) for the master)
            master = LiveBridgeError("Live's selected track is the master or a return track: select a MIDI track")
            try:
                track = int(live.request("/live/view/get/selected_track", timeout=timeout)[-1])
            except LiveBridgeError:
                if live.errors[errors:]:
                    raise master from None
                raise
            if track >= n_tracks:
                raise master
        if track >= n_tracks:
            raise LiveBridgeError(f"the Live set has {n_tracks} tracks; there is no track {track + 1}")
        try:
            midi = live.request("/live/track/get/has_midi_input", track, want=lambda a: len(a) >= 2 and a[0] == track,
                                timeout=timeout)[1]
        except LiveBridgeError:
            midi = True  # (an AbletonOSC without it: creating the clip will tell)
            errors = len(live.errors)
        if not midi:
            raise LiveBridgeError(f"track {track + 1} is an audio track: select a MIDI track (or choose one with --track)")
        n_scenes = int(live.request("/live/song/get/num_scenes", timeout=timeout)[-1])

        def at(s: int):  # picks the answer about clip slot (track, s) from the getters' answers
            return lambda a: len(a) >= 3 and a[0] == track and a[1] == s

        def has_clip(s: int) -> bool:
            return bool(live.request("/live/clip_slot/get/has_clip", track, s, want=at(s), timeout=timeout)[2])

        if slot is None:
            first = min(int(live.request("/live/view/get/selected_scene", timeout=timeout)[-1]), n_scenes - 1)
            slot = next((s for s in range(first, n_scenes) if not has_clip(s)), None)
            if slot is None:
                raise LiveBridgeError(f"track {track + 1} has no empty slot from scene {first + 1} down: "
                                      "add a scene in Live, or choose a slot (--slot N --replace)")
        elif slot >= n_scenes:
            raise LiveBridgeError(f"the Live set has {n_scenes} scenes; there is no slot {slot + 1}")
        elif has_clip(slot):
            if not replace:
                raise LiveBridgeError(f"track {track + 1}, slot {slot + 1} already holds a clip (--replace replaces it)")
            live.send("/live/clip_slot/delete_clip", track, slot)
        here = at(slot)
        live.send("/live/clip_slot/create_clip", track, slot, float(take.length))
        for i in range(0, len(take.notes), NOTES_PER_MESSAGE):
            args = [track, slot]
            for pitch, start, duration, velocity in take.notes[i:i + NOTES_PER_MESSAGE]:
                args += [pitch, float(start), float(duration), velocity, False]
            live.send("/live/clip/add/notes", *args)
        live.send("/live/clip/set/name", track, slot, take.name)
        # AbletonOSC handles messages in order: these answers come after everything above.
        try:
            name = live.request("/live/clip/get/name", track, slot, want=here, timeout=timeout)[2]
            length = float(live.request("/live/clip/get/length", track, slot, want=here, timeout=timeout)[2])
        except LiveBridgeError:
            if live.errors[errors:]:
                raise LiveBridgeError(f"Live refused: {live.errors[errors]}") from None
            raise LiveBridgeError(f"Live made no clip in track {track + 1}, slot {slot + 1} "
                                  "(is it a MIDI track?)") from None
        if live.errors[errors:]:
            raise LiveBridgeError(f"Live refused: {live.errors[errors]}")
        if name != take.name or abs(length - take.length) > 1e-6:
            raise LiveBridgeError(f"Live did not take the clip (it reports {name!r}, {length:g} beats)")
    return (f"sent {take.path.name} to Live: track {track + 1}, slot {slot + 1}, {len(take.notes)} notes, "
            f"{take.length / take.beats_per_bar:g} bars, clip {take.name!r}")


class AbletonFollower(OscTransport):
    """Live's tempo and play/stop through AbletonOSC's listeners (``moodroll live --follow live``).

    On start (and every ``retry_s`` until Live answers, and again after ``/live/startup``) it
    asks AbletonOSC to listen to :data:`LISTEN`; the answers come on ``/live/song/get/<p>``
    now and at every change. ``current_song_time`` is the song position in beats, reported at
    Live's display rate; :class:`OscTransport` makes a grid of them. (AbletonOSC's beat
    listener, ``/live/song/get/beat`` after ``/live/song/start_listen/beat``, says only whole
    beats, late by up to a display frame: taken if it comes, never asked for.) ``client``
    (its own by default) is the AbletonOSC connection, for a key follower to share.
    """

    def __init__(self, host: str = LOOPBACK, port: int | None = None, reply_port: int | None = None,
                 retry_s: float = 2.0, lost_s: float = 3.5, **kw):
        super().__init__("Live", lost_s=lost_s, **kw)
        self.retry_s = retry_s
        self._heard = False
        self._asked_at = -1e9
        self._metre = [4, 4]
        self.client = AbletonOSCClient.open(host, port, reply_port)
        self.client.listeners.append(self._on_live)
        self.client.tickers.append(self._tick)
        self.status = f"waiting for Live (AbletonOSC at {host}:{self.client.live[1]}): press play in Live"

    def start(self) -> "AbletonFollower":
        self._listen()
        return self

    def close(self) -> None:
        for p in LISTEN:
            self.client.socket.send(f"/live/song/stop_listen/{p}", [], self.client.live)
        self.client.listeners.remove(self._on_live)
        self.client.tickers.remove(self._tick)
        self.client.close()

    def _listen(self) -> None:
        self._asked_at = time.monotonic()
        for p in LISTEN:
            self.client.socket.send(f"/live/song/start_listen/{p}", [], self.client.live)

    def _tick(self, now: float) -> None:
        if not self._heard and now - self._asked_at > self.retry_s:
            self._listen()  # Live was not up yet, or a datagram was lost
        self.check_lost(now)

    def _on_live(self, address: str, args: list, sender: tuple, t: float) -> None:
        value = args[-1] if args else None
        number = isinstance(value, (int, float))
        if address == "/live/startup":
            self._heard = False
            self._listen()
            return
        if address == "/live/error":
            if not self._heard:  # (once following, the transport's own line stays)
                self.status = f"Live says: {refusal(args)}"
            return
        if not address.startswith("/live/song/"):
            return
        self._heard = True
        if address == "/live/song/get/tempo" and number:
            self.set_tempo(float(value), t)
        elif address == "/live/song/get/is_playing" and number:
            self.set_playing(bool(value), t)
        elif address in ("/live/song/get/current_song_time", "/live/song/get/beat") and number and not isinstance(value, bool):
            self.set_position(float(value), t)
        elif address in ("/live/song/get/signature_numerator", "/live/song/get/signature_denominator") and number:
            self._metre[address.endswith("denominator")] = int(value)
            with self._changed:
                self.set_metre(*self._metre)
                self._changed.notify_all()
