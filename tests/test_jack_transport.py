"""--follow jack: the JACK transport's tempo, metre, bar position and play/stop, from a real
timebase master (tests/jack_timebase.py, its own process) on the tests' JACK server."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jack", reason="JACK-Client is not installed (pip install JACK-Client)")

from engine.daw.jack_transport import JackTransport  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class Master:
    def __init__(self, bpm: float, num: int, den: int):
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.jack_timebase", str(bpm), str(num), str(den)],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def say(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def close(self) -> None:
        try:
            self.say("quit")
        except (AssertionError, OSError):
            pass
        self.proc.wait(10)


def _query():
    """The transport as an independent JACK client reads it: (song quarter beat, monotonic time)."""
    import jack

    with jack.Client("Test Query", no_start_server=True) as c:
        state, pos = c.transport_query()
    beats = (pos["bar"] - 1) * pos["beats_per_bar"] + pos["beat"] - 1 + pos["tick"] / pos["ticks_per_beat"]
    return beats * 4.0 / pos["beat_type"], pos["usecs"] / 1e6


def test_follows_tempo_metre_position_and_play_stop(jack_server):
    master = Master(123.0, 3, 4)
    follower = JackTransport().start()
    try:
        assert not follower.running
        master.say("start")
        assert follower.wait(lambda f: f.running, 10), follower.status
        assert follower.bpm == pytest.approx(123.0)
        assert follower.beats_per_bar == 3.0  # the master's 3/4
        beat, t = _query()
        assert follower.beat_at(t) == pytest.approx(beat, abs=0.01)
        assert follower.next_bar(t) % 3.0 == 0

        gen = follower.generation
        master.say("tempo 140")
        assert follower.wait(lambda f: f.bpm == pytest.approx(140.0), 10)
        assert follower.wait(lambda f: f.time_of(0) is not None, 10)
        beat, t = _query()
        assert follower.beat_at(t) == pytest.approx(beat, abs=0.01)  # continuous across the change
        assert follower.generation == gen

        master.say(f"locate {48000 * 60}")  # one minute in, at 140: song beat 140
        assert follower.wait(lambda f: f.generation > gen and f.running and f.beat_at(f._last[0]) > 139, 10)
        beat, t = _query()
        assert beat > 139 and follower.beat_at(t) == pytest.approx(beat, abs=0.01)  # on the new bar grid

        master.say("stop")
        assert follower.wait(lambda f: not f.running, 10)
        assert follower.status.endswith("stopped")
    finally:
        follower.close()
        master.close()


def test_no_server_is_one_line(monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "moodroll-no-such-server")
    from engine.daw.jack_transport import JackTransportError

    with pytest.raises(JackTransportError, match="no JACK server to follow"):
        JackTransport().start()
