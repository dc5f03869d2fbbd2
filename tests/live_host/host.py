"""Live's main thread, standing in for Ableton Live around AbletonOSC's own code.

:class:`LiveHost` loads an AbletonOSC folder (a copy of ../shared/thirdparty/AbletonOSC: it
writes ``logs/`` beside itself) as Live does — ``create_instance(c_instance)`` on the
package — over the stand-in object model of :mod:`tests.live_host.live_api`, and runs
what Live's main thread runs, all on one thread: the control-surface timer
(``schedule_message``: AbletonOSC's ``tick`` every 100 ms, which reads its socket and
answers), and the song position while playing (``current_song_time`` and its listeners,
every ``frame_s``). Time comes from ``clock`` (an injected clock; :meth:`step` takes the
time, so a test can drive it virtually).

AbletonOSC hard-codes its ports (11000 in, answers to 11001 of the sender) and binds every
interface; the host sets :class:`OSCServer`'s defaults to 127.0.0.1 and the ports it is given
(configuration only: AbletonOSC's files stay as exported).

``python -m tests.live_host.host --abletonosc DIR --port P --reply-port R`` runs one in its own
process (Live is a separate program; a host thread in the test process would compete with the
code under test for the GIL) and takes commands as JSON lines on stdin, answering one JSON
line each on stdout: see :class:`tests.live_host.LiveProcess`.
"""
from __future__ import annotations

import argparse
import heapq
import importlib
import itertools
import json
import queue
import sys
import threading
import time
from pathlib import Path

from tests.live_host import live_api

TICK_S = 0.1  # one schedule_message tick (Live's control-surface timer)
FRAME_S = 0.05  # how often the song position (and its listeners) advances while playing
LOOPBACK = "127.0.0.1"


class LiveHost:
    """The host of one AbletonOSC instance over one Live set (see the module docstring)."""

    def __init__(self, abletonosc: Path, port: int, reply_port: int, version: int = 12, clock=time.monotonic,
                 tick_s: float = TICK_S, frame_s: float = FRAME_S, **song):
        self.clock, self.tick_s, self.frame_s = clock, tick_s, frame_s
        self.now = clock()
        self.messages: list[str] = []  # show_message lines (Live's status bar)
        self.disconnected = False
        self._timers: list = []  # (due, seq, callback)
        self._seq = itertools.count()
        self._next_frame = self.now
        self.song = live_api.Song(lambda: self.now, version=version, **song)
        live_api.install(live_api.Application(version))
        folder = Path(abletonosc)
        if str(folder.parent) not in sys.path:
            sys.path.insert(0, str(folder.parent))
        package = importlib.import_module(folder.name)
        osc_server = importlib.import_module(f"{folder.name}.abletonosc.osc_server")
        osc_server.OSCServer.__init__.__defaults__ = ((LOOPBACK, port), (LOOPBACK, reply_port))
        osc_server.OSC_RESPONSE_PORT = reply_port  # where process() answers the latest sender
        self.package = package
        self.surface = package.create_instance(self)  # AbletonOSC's Manager

    @property
    def osc_server(self):
        return self.surface.osc_server

    def schedule(self, delay_in_ticks, callback) -> None:
        heapq.heappush(self._timers, (self.now + max(int(delay_in_ticks), 1) * self.tick_s, next(self._seq), callback))

    def step(self, now: float) -> None:
        """Run what is due at ``now`` on the main thread: the song position, then the timers."""
        self.now = now
        if now >= self._next_frame:
            self._next_frame = now + self.frame_s
            self.song.advance(now)
        while self._timers and self._timers[0][0] <= now:
            _, _, callback = heapq.heappop(self._timers)
            callback()

    def next_due(self) -> float:
        return min([self._next_frame] + ([self._timers[0][0]] if self._timers else []))

    def close(self) -> None:
        self.surface.disconnect()

    # -- what a user does in Live (commands) --------------------------------------------------------
    def anchor(self):
        a = self.song._anchor
        return None if a is None else [a[0], a[1]]

    def do(self, op: str, **kw):
        s = self.song
        if op == "play":
            s.stop_playing()
            s.current_song_time = kw.get("beat", 0.0)
            s.start_playing()
            return self.anchor()
        if op == "stop":
            s.stop_playing()
            return None
        if op == "tempo":
            s.tempo = kw["bpm"]
            return self.anchor()
        if op == "signature":
            s.signature_numerator, s.signature_denominator = kw["numerator"], kw["denominator"]
            return None
        if op == "key":
            s.root_note, s.scale_name = kw["root"], kw["scale"]
            return None
        if op == "select":
            t = kw["track"]
            s.view.selected_track = (s.master_track if t == "master" else s.return_tracks[0] if t == "return"
                                     else s.tracks[t])
            s.view.selected_scene = s.scenes[kw.get("scene", 0)]
            return None
        if op == "put_clip":  # a clip the user made
            slot = s.tracks[kw["track"]].clip_slots[kw["slot"]]
            slot.create_clip(kw.get("length", 4.0))
            slot.clip.name = kw.get("name", "")
            return None
        if op == "without":  # an older AbletonOSC, without these addresses
            for address in kw["addresses"]:
                self.osc_server._callbacks.pop(address, None)
            return None
        if op == "state":
            return self.state()
        raise ValueError(f"unknown command {op!r}")

    def state(self) -> dict:
        s = self.song
        clips = {}
        for ti, track in enumerate(s.tracks):
            for si, slot in enumerate(track.clip_slots):
                if slot.clip is not None:
                    c = slot.clip
                    clips[f"{ti},{si}"] = {"name": c.name, "length": c.length, "notes": [
                        [n.pitch, n.start_time, n.duration, n.velocity, n.mute] for n in c.notes]}
        listening = {p: len(fns) for p, fns in s._listeners.items() if fns}
        return {"clips": clips, "listening": listening, "scenes": len(s.scenes), "messages": self.messages,
                "playing": s.is_playing, "song_time": s.current_song_time, "tempo": s.tempo}


def serve(args) -> None:
    """Live's main loop: the host's timers and song position, and commands from stdin, on one thread."""
    host = LiveHost(Path(args.abletonosc), args.port, args.reply_port, version=args.version,
                    scenes=args.scenes, tracks=args.tracks)
    commands: queue.SimpleQueue = queue.SimpleQueue()

    def read():
        for line in sys.stdin:
            commands.put(line)
        commands.put(None)

    threading.Thread(target=read, daemon=True).start()
    print(json.dumps({"ready": True, "messages": host.messages}), flush=True)
    while True:
        host.step(host.clock())
        try:
            line = commands.get(timeout=max(0.0, host.next_due() - host.clock()))
        except queue.Empty:
            continue
        if line is None:
            break
        cmd = json.loads(line)
        op = cmd.pop("op")
        if op == "quit":
            break
        host.step(host.clock())
        try:
            reply = {"ok": host.do(op, **cmd)}
        except Exception as e:  # noqa: BLE001 - the test gets the line
            reply = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(reply), flush=True)
    host.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--abletonosc", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--reply-port", type=int, required=True)
    p.add_argument("--version", type=int, default=12)
    p.add_argument("--tracks", type=int, default=4)
    p.add_argument("--scenes", type=int, default=8)
    serve(p.parse_args())
