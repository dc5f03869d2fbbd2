"""``moodroll live`` / ``moodroll ports`` end to end: the real generator (random-weight bundle)
playing to real JACK ports in a separate process; Ctrl-C stops with every note released;
bad input gives one clear line and a non-zero exit."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tools.bench.realtime import Recorder
from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent


def moodroll(*args):
    return subprocess.Popen([sys.executable, "-m", "engine", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Lines:
    """Collects a subprocess's stderr lines in a thread, so a test can wait for one."""

    def __init__(self, proc):
        import threading

        self.proc, self.lines = proc, []
        self._thread = threading.Thread(target=lambda: self.lines.extend(iter(proc.stderr.readline, "")), daemon=True)
        self._thread.start()

    def wait_for(self, text: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.proc.poll() is None:
            if any(text in line for line in self.lines):
                return True
            time.sleep(0.05)
        return any(text in line for line in self.lines)

    def finish(self, timeout: float) -> str:
        """Wait for the process to exit, then for the reader to reach the end of its stderr.

        Once the process has exited, end-of-file is certain: the join waits only for this
        process to schedule the reader (a 5-s join lost the last lines once in CI, on a
        loaded machine), so it is generous, and a reader still running fails loudly."""
        self.proc.wait(timeout)
        self._thread.join(60)
        assert not self._thread.is_alive(), "the stderr reader did not reach end-of-file 60 s after exit"
        return "".join(self.lines)


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_ports_lists_inputs_and_outputs(jack_server, capsys):
    synth = Recorder(None, api="jack", name="Listed Synth")
    try:
        rc, out, err = run(capsys, "ports", "--midi-api", "jack")
        assert rc == 0 and out.startswith("jack:")
        assert "outputs (Moodroll can play to):" in out and "Listed Synth" in out
    finally:
        synth.close()


def test_live_plays_the_generator_to_a_port_and_captures(jack_server, random_bundle, tmp_path):
    synth = Recorder(None, api="jack", name="CLI Synth")
    capture = tmp_path / "last.mid"
    try:
        p = moodroll("live", "--valence", 7, "--arousal", 6, "--bars", 3, "--bpm", 300, "--seed", 3,
                     "--port", "CLI Synth", "--midi-api", "jack", "--bundle", random_bundle,
                     "--capture", capture, "--capture-bars", 2)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "connected to" in err and "played 3 bars" in err and "captured the last 2 bars" in err
        assert synth.wait_for(lambda r: r.sounding() == set(), timeout=5)
        assert capture.is_file()
        import mido

        mid = mido.MidiFile(capture)  # two bars, of whatever metres the (random) model wrote
        now, metres = 0, []
        for m in mid.tracks[0]:
            now += m.time
            if m.type == "time_signature":
                metres.append((now / mid.ticks_per_beat, m.numerator * 4 / m.denominator))
        end = mid.length * 300 / 60  # in beats
        bars, beat = 0, 0.0
        while beat < end - 1e-6:
            beat += [bpb for b, bpb in metres if b <= beat + 1e-6][-1]
            bars += 1
        assert bars == 2 and beat == pytest.approx(end)
        assert synth.snapshot()[-1][1] == [0xB0, 123, 0]
    finally:
        synth.close()


def test_ctrl_c_stops_cleanly_with_all_notes_off(jack_server, random_bundle, tmp_path):
    cv2.imwrite(str(tmp_path / "x.png"), np.full((60, 80, 3), (40, 200, 90), np.uint8))
    p = moodroll("live", "--image", tmp_path / "x.png", "--bpm", 200, "--midi-api", "jack",
                 "--bundle", random_bundle)
    rec, lines = None, Lines(p)
    try:
        assert lines.wait_for("virtual port 'Moodroll' open on jack", timeout=90), "".join(lines.lines)
        rec = Recorder("Moodroll", api="jack", name="CLI listener")
        assert rec.wait_for(lambda r: len(r.note_ons()) >= 3, timeout=30)
        p.send_signal(signal.SIGINT)
        err = lines.finish(timeout=30)
        assert p.returncode == 0, err
        assert "interrupted: stopping (all notes off)" in err and "Traceback" not in err
        assert rec.wait_for(lambda r: r.sounding() == set(), timeout=5)
        assert [0xB0, 123, 0] in [m for _, m in rec.snapshot()]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if rec:
            rec.close()


@pytest.mark.parametrize("args, message", [
    (["--valence", 12, "--arousal", 5], "valence must be between 1 and 9"),
    (["--valence", 5], "give both --valence and --arousal"),
    ([], "give one of --image PATH, --webcam N|FILE, or --valence V --arousal A"),
    (["--image", "no/such.jpg"], "cannot read image no/such.jpg: no such file"),
    (["--webcam", "57"], "cannot open camera 57"),
    (["--valence", 5, "--arousal", 5, "--bpm", 1000], "tempo must be between 20 and 400 BPM"),
    (["--valence", 5, "--arousal", 5, "--key", "H major"], "key"),
    (["--valence", 5, "--arousal", 5, "--bars", 0], "--bars must be at least 1"),
    (["--valence", 5, "--arousal", 5, "--midi-api", "midiman"], "unknown MIDI API 'midiman'"),
    (["--valence", 5, "--arousal", 5, "--bundle", "no/such/bundle"], "no/such/bundle"),
])
def test_bad_input_is_one_clear_line(capsys, args, message):
    rc, out, err = run(capsys, "live", *args)
    assert rc == 2 and out == ""
    assert err.startswith("moodroll: ") and message in err and err.count("\n") == 1, err


def test_unknown_port_is_one_clear_line(jack_server, random_bundle, capsys):
    rc, out, err = run(capsys, "live", "--valence", 5, "--arousal", 5, "--port", "No Such Synth",
                       "--midi-api", "jack", "--bundle", random_bundle)
    assert rc == 2 and err.count("\n") == 1
    assert "no MIDI output port 'No Such Synth' on jack; available:" in err


def test_live_follows_a_daw_clock(jack_server, random_bundle):
    """--clock-in: the DAW (another program) sends clock to "Moodroll Clock In" at 132 BPM."""
    from tests.jack import DawClock

    synth = Recorder(None, api="jack", name="Clock Synth")
    p = moodroll("live", "--valence", 4, "--arousal", 7, "--bars", 2, "--clock-in", "--seed", 1,
                 "--port", "Clock Synth", "--midi-api", "jack", "--bundle", random_bundle)
    daw, lines = None, Lines(p)
    try:
        assert lines.wait_for("press play in the DAW", timeout=90), "".join(lines.lines)
        daw = DawClock("Moodroll Clock In", 132.0, name="CLI DAW")
        daw.run(lead_ticks=24, ticks=24 * 16)
        err = lines.finish(timeout=60)
        assert p.returncode == 0, err
        assert "press play in the DAW" in err and "following the DAW" in err and "played 2 bars" in err, err
        import re

        shown = [float(b) for b in re.findall(r"at ([0-9.]+) BPM \(following the DAW\)", err)]
        assert shown and shown[-1] == pytest.approx(132.0, rel=0.02)  # precision: moodroll bench
        assert synth.note_ons() and synth.wait_for(lambda r: r.sounding() == set(), timeout=5)
    finally:
        if daw:
            daw.stop()
        if p.poll() is None:
            p.kill()
            p.wait()
        synth.close()


def test_live_follows_a_webcam_video(random_bundle, jack_server, tmp_path):
    video = tmp_path / "scene.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(20):
        w.write(np.full((48, 64, 3), (20, 40, 200) if i < 10 else (200, 160, 30), np.uint8))
    w.release()
    synth = Recorder(None, api="jack", name="Cam Synth")
    try:
        p = moodroll("live", "--webcam", video, "--bars", 2, "--bpm", 300, "--port", "Cam Synth",
                     "--midi-api", "jack", "--bundle", random_bundle)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "webcam: valence" in err and "played 2 bars" in err
        assert synth.wait_for(lambda r: r.sounding() == set(), timeout=5)
    finally:
        synth.close()
