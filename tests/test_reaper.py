"""--follow reaper: a stand-in Reaper (Reaper cannot run here) sends what its OSC control surface
sends with the Default pattern config — /play, /stop, /tempo/raw, /beat/str, /time, in bundles —
over real UDP; a real LiveStream follows it into a real JACK port; and the CLI end to end."""
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from engine.daw.reaper import ReaperFollower, parse_beat_string
from engine.paths import EXAMPLES
from engine.music.tokenizer import Tokenizer
from tests.test_osc_server import OscPeer, free_port as _free_port
from tests.test_osc_transport import StandInDaw, check_stream_follows

ROOT = Path(__file__).resolve().parent.parent


class StandInReaper(StandInDaw):
    """Reaper's feedback to a device: bundles of /play /stop /pause /record, /tempo/raw, /beat/str + /time."""

    def __init__(self, to, time_signature=(4, 4)):
        self.peer = OscPeer(to)
        self.time_signature = time_signature
        super().__init__()

    def _bundle(self, *messages):
        b = OscBundleBuilder(IMMEDIATELY)
        for address, args in messages:
            m = OscMessageBuilder(address)
            for a in args:
                m.add_arg(a)
            b.add_content(m.build())
        self.peer.send_raw(b.build().dgram)

    def send_playing(self, playing):
        x = 1.0 if playing else 0.0
        self._bundle(("/play", [x]), ("/stop", [1.0 - x]), ("/pause", [0.0]), ("/record", [0.0]))

    def send_tempo(self, bpm):
        self._bundle(("/tempo/raw", [float(bpm)]), ("/tempo/str", [f"{bpm:.2f}"]), ("/track/1/vu", [0.3]))

    def send_position(self, beat):
        num, den = self.time_signature
        units = beat * den / 4.0  # Reaper counts the time signature's beats
        measure, within = divmod(units, num)
        whole = int(within)
        hundredths = min(99, int((within - whole) * 100))  # Reaper shows hundredths, cut off
        self._bundle(("/beat/str", [f"{int(measure) + 1}.{whole + 1}.{hundredths:02d}"]),
                     ("/time", [float(beat * 60.0 / self.bpm)]), ("/samples", [0.0]))

    def close(self):
        super().close()
        self.peer.close()


@pytest.mark.parametrize("text,ts,beats", [("1.1.00", (4, 4), 0.0), ("2.1.00", (4, 4), 4.0), ("9.3.50", (4, 4), 34.5),
                                           ("1.4.25", (3, 4), None), ("2.2.00", (6, 8), 3.5), ("-1.1.00", (4, 4), -8.0),
                                           ("x", (4, 4), None), ("1.0.00", (4, 4), None), (3, (4, 4), None)])
def test_parse_beat_string(text, ts, beats):
    assert parse_beat_string(text, ts) == beats


def test_stream_follows_reaper(jack_server):
    tok = Tokenizer()
    follower = ReaperFollower(port=0).start()
    reaper = StandInReaper((follower.host, follower.port))
    try:
        reaper.send_tempo(120.0)  # what Reaper has shown while stopped
        reaper.send_playing(False)
        measured = check_stream_follows(reaper, follower, tok.encode(EXAMPLES / "example.mid"), tok, "Moodroll rpr")
        print(f"\nreaper follow: {measured}")
        assert follower.ignored > 0  # the rest of the surface's feedback was left alone
    finally:
        reaper.close(), follower.close()


def test_three_four_bars_from_the_beat_string():
    follower = ReaperFollower(port=0, time_signature=(3, 4)).start()
    reaper = StandInReaper((follower.host, follower.port), time_signature=(3, 4))
    try:
        reaper.send_tempo(100.0)
        reaper.play(6.0)  # bar 3 of a 3/4 project
        assert follower.wait(lambda f: f.running and f.bpm == 100.0, 10)
        assert follower.beats_per_bar == 3.0
        import time

        now = time.monotonic()
        # on the right beat of the right bar (a 3/4 mapping error is a beat or more); the exact
        # arithmetic is test_osc_transport's, against an injected clock, and precision is the bench's
        assert abs(follower.beat_at(now) - reaper.beat_at(now)) < 0.25
        assert follower.next_bar(now) % 3.0 == 0
    finally:
        reaper.close(), follower.close()


def test_cli_live_follows_reaper_and_serves_osc(jack_server, random_bundle):
    """moodroll live --follow reaper --osc 0: the stand-in Reaper starts it, /moodroll/status says
    so, SIGINT ends it with every note released."""
    from tools.bench.realtime import Recorder
    from tests.test_live_cli import Lines

    synth = Recorder(None, api="jack", name="Reaper Synth")
    follow_port = _free_port()
    p = subprocess.Popen([sys.executable, "-m", "engine", "live", "--valence", "6", "--arousal", "6", "--seed", "1",
                          "--port", "Reaper Synth", "--midi-api", "jack", "--bundle", str(random_bundle),
                          "--follow", "reaper", "--follow-port", str(follow_port), "--osc", "0"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = Lines(p)
    reaper = None
    try:
        assert lines.wait_for("OSC control on udp", 120), "".join(lines.lines)
        port = int(re.search(r"OSC control on udp 127\.0\.0\.1:(\d+)", "".join(lines.lines)).group(1))
        reaper = StandInReaper(("127.0.0.1", follow_port))
        reaper.send_tempo(128.0)
        reaper.play(0.0)
        assert synth.wait_for(lambda r: len(r.note_ons()) >= 4, timeout=60), "".join(lines.lines)
        control = OscPeer(("127.0.0.1", port))
        a, args = control.ask("/moodroll/status")
        control.close()
        assert a == "/moodroll/status" and args[0] == "playing" and args[2] == 128.0 and "following the DAW" in args[6]
        p.send_signal(signal.SIGINT)
        err = lines.finish(30)
        assert p.returncode == 0, err
        assert "following Reaper at 128.0 BPM" in err or "following the DAW" in err
        assert synth.wait_for(lambda r: r.sounding() == set(), timeout=5)
    finally:
        if p.poll() is None:
            p.kill()
        if reaper is not None:
            reaper.close()
        synth.close()


def test_cli_refuses_follow_reaper_with_clock_in(capsys):
    from engine.cli import main

    rc = main(["live", "--valence", "5", "--arousal", "5", "--follow", "reaper", "--clock-in"])
    assert rc == 2 and "cannot be combined with --clock-in" in capsys.readouterr().err
