"""Ardour records ``moodroll live``: a headless Ardour 7 (``ardour7-lua``, tests/ardour/) on a JACK
server of its own, a session with one MIDI track whose input is Moodroll's port, Ardour the
clock master (it sends MIDI clock and Start when it rolls) and ``moodroll live --follow midi``
following it. Two sessions at two tempi (one run each: Ardour's MIDI clock keeps the tempo it
started with across a tempo-map change). The region Ardour recorded, read back through its Lua
API, must hold the notes Moodroll sent (its ``--capture`` of the same 8 bars): same count,
pitches and order, each onset within a 32nd note of its beat at the session's tempo once
Moodroll's first bar is put on an Ardour bar (so Moodroll started on Ardour's bar and kept its
tempo), and nothing sounding after Stop (no note runs past Moodroll's last bar)."""
from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ardour import host

if not host.available():
    pytest.skip("ardour7-lua or jackd is not installed (apt-get install ardour jackd2)", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
BARS = 8


def _captured(path: Path) -> list[tuple[float, float, int, int]]:
    """(onset, length, pitch, velocity) in quarter notes from the capture's first bar."""
    import mido

    mid = mido.MidiFile(path)
    tpq, t, held, notes = mid.ticks_per_beat, 0, {}, []
    for msg in mid.tracks[0]:
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            held[msg.note] = (t, msg.velocity)
        elif msg.type in ("note_on", "note_off") and msg.note in held:
            start, vel = held.pop(msg.note)
            notes.append((start / tpq, (t - start) / tpq, msg.note, vel))
    assert not held, f"the capture leaves notes sounding: {sorted(held)}"
    return notes


def _order(notes, grid: float):
    """Onset order, chords by pitch: onsets closer than ``grid`` count as together."""
    return sorted(notes, key=lambda n: (round(n[0] / grid), n[2]))


@pytest.fixture(scope="module")
def bundle_dir(random_bundle):
    return random_bundle


@pytest.mark.parametrize("bpm", [90.0, 110.0])
def test_ardour_records_what_moodroll_sent_following_its_clock(bpm, bundle_dir, tmp_path):
    session = host.create_session(tmp_path / f"moodroll_{int(bpm)}", bpm)
    capture = tmp_path / "sent.mid"
    with host.ArdourHost(session) as ardour:
        live = subprocess.Popen([sys.executable, "-m", "engine", "live", "--valence", "6", "--arousal", "6",
                                 "--seed", "5", "--bars", str(BARS), "--midi-api", "jack", "--bundle", str(bundle_dir),
                                 "--port", ardour.input, "--follow", "midi", "--clock-in", ardour.clock_out,
                                 "--capture", str(capture), "--capture-bars", str(BARS)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            waited = []
            for line in iter(live.stderr.readline, ""):  # Moodroll is connected and waits for Ardour
                waited.append(line)
                if "waiting for MIDI clock" in line:
                    break
            assert live.poll() is None, "".join(waited)
            ardour.roll()
            _, err = live.communicate(timeout=300)
            err = "".join(waited) + err
        finally:
            if live.poll() is None:
                live.kill()
                live.wait()
        assert live.returncode == 0, err[-3000:]
        recorded = ardour.stop()

    spb = 60.0 / bpm
    th32 = 0.125  # a 32nd note, in quarter notes
    sent = _order(_captured(capture), th32)
    got = _order(recorded, th32)
    assert sent, err[-2000:]
    assert len(got) == len(sent), f"sent {len(sent)}, Ardour recorded {len(got)}"
    assert [n[2] for n in got] == [n[2] for n in sent]
    assert [n[3] for n in got] == [n[3] for n in sent]
    bar0 = round((got[0][0] - sent[0][0]) / 4.0) * 4.0  # Ardour's bar where Moodroll's first bar sits
    onset = [g[0] - (s[0] + bar0) for g, s in zip(got, sent)]
    assert max(map(abs, onset)) <= th32, f"onsets off their beats by up to {max(map(abs, onset)):.3f} quarters"
    end = bar0 + BARS * 4.0  # the end of Moodroll's last bar in Ardour's beats
    stuck = [g for g in got if g[0] + g[1] > end + th32]
    assert not stuck, f"notes still sounding after Moodroll's last bar: {stuck}"

    # The figures for docs/protocol.md (pytest -s): onset error in ms, the tempo Moodroll kept.
    ms = sorted(abs(x) * spb * 1000 for x in onset)
    slope = statistics.linear_regression([s[0] for s in sent], [g[0] for g in got]).slope
    print(f"\nardour {bpm:g} BPM: sent {len(sent)}, recorded {len(got)}, stuck {len(stuck)}, first bar at "
          f"beat {bar0:g}; onset error ms p50 {statistics.median(ms):.2f} p99 {ms[min(len(ms) - 1, int(0.99 * len(ms)))]:.2f}"
          f" max {ms[-1]:.2f}; tempo kept {bpm * slope:.3f} BPM; Ardour starts {ardour.tries}; "
          f"{err.strip().splitlines()[-1]}")
