"""Ableton Live's host, stood in, around AbletonOSC's real code (../shared/thirdparty/AbletonOSC).

Live cannot run here; AbletonOSC (the Remote Script Moodroll talks to) can, given Live's object
model: :mod:`tests.live_host.live_api` stands in for that, :mod:`tests.live_host.host` for Live's
main thread. :func:`copy_abletonosc` copies the pinned export to a test's folder (AbletonOSC
writes ``logs/`` beside itself); :class:`LiveProcess` runs it in its own process, as Live is,
and is the test's hands on Live: play, stop, tempo, key, selection, and what the set holds.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ABLETONOSC = (ROOT.parent / "shared" / "thirdparty" / "AbletonOSC") if not os.environ.get("MOODROLL_ABLETONOSC") \
    else Path(os.environ["MOODROLL_ABLETONOSC"])


def copy_abletonosc(folder: Path) -> Path:
    """A writable copy of AbletonOSC at ``folder/AbletonOSC`` (the package name Live imports)."""
    if not (ABLETONOSC / "abletonosc" / "song.py").is_file():
        import pytest

        pytest.skip(f"AbletonOSC not found at {ABLETONOSC} (CI has ../shared/thirdparty/AbletonOSC)")
    dest = Path(folder) / "AbletonOSC"
    if not dest.exists():
        shutil.copytree(ABLETONOSC, dest, ignore=shutil.ignore_patterns("__pycache__", "logs", "tests", "client"))
        for p in [dest, *dest.rglob("*")]:  # the export is read-only; Live's copy is the user's
            p.chmod(0o755 if p.is_dir() else 0o644)
    return dest


class LiveProcess:
    """A Live set with AbletonOSC listening on ``port`` and answering to ``reply_port``, in a
    subprocess. Each method is one user action in Live, done between two of Live's frames;
    ``anchor`` is (monotonic time, song beat) of the transport while playing (the system's
    monotonic clock is shared by both processes), ``bpm`` its tempo."""

    def __init__(self, abletonosc: Path, port: int, reply_port: int, version: int = 12, scenes: int = 8):
        self.port, self.reply_port = port, reply_port
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.live_host.host", "--abletonosc", str(abletonosc),
                                      "--port", str(port), "--reply-port", str(reply_port), "--version", str(version),
                                      "--scenes", str(scenes)], cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._lock = threading.Lock()
        first = self.proc.stdout.readline()
        if not first:
            raise RuntimeError(f"the Live host did not start: {self.proc.stderr.read()[-3000:]}")
        self.messages = json.loads(first)["messages"]
        self.bpm, self.anchor = 120.0, None

    def do(self, op: str, **kw):
        with self._lock:
            self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the Live host ended: {self.proc.stderr.read()[-3000:]}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["ok"]

    # the transport, as tests.test_osc_transport.check_stream_follows drives a DAW
    def play(self, beat: float = 0.0) -> None:
        self.anchor = tuple(self.do("play", beat=beat))

    def stop(self) -> None:
        self.do("stop")
        self.anchor = None

    def set_tempo(self, bpm: float) -> None:
        a = self.do("tempo", bpm=bpm)
        self.bpm, self.anchor = float(bpm), None if a is None else tuple(a)

    def set_key(self, root: int, scale: str) -> None:
        self.do("key", root=root, scale=scale)

    def select(self, track, scene: int = 0) -> None:
        self.do("select", track=track, scene=scene)

    def state(self) -> dict:
        return self.do("state")

    def clips(self) -> dict:
        """(track, slot) -> {"name", "length", "notes": [[pitch, start, duration, velocity, mute], ...]}"""
        return {tuple(map(int, k.split(","))): v for k, v in self.state()["clips"].items()}

    def close(self) -> str:
        """Quit Live; returns what the host wrote on stderr."""
        try:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        err = self.proc.stderr.read()
        self.proc.stdout.close(), self.proc.stderr.close()
        return err
