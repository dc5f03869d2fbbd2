"""engine/live/ports.py on real ports: a private JACK server (tests/jack.py), rtmidi's JACK API."""
import time

import pytest

from tools.bench.realtime import Recorder
from engine.live.ports import (ENV_API, MidiInput, MidiOutput, MidiPortError, find_port, list_ports,
                            resolve_api)


def test_resolve_api_names_flag_env_and_errors(monkeypatch):
    assert resolve_api("JACK") == ["jack"]
    assert resolve_api("unix_jack") == ["jack"]
    monkeypatch.setenv(ENV_API, "jack")
    assert resolve_api(None) == ["jack"]
    with pytest.raises(MidiPortError, match="unknown MIDI API 'midiman'; choose one of alsa, jack"):
        resolve_api("midiman")
    monkeypatch.delenv(ENV_API)
    assert set(resolve_api(None)) <= {"alsa", "jack", "coremidi", "winmm"}


def test_find_port_matches_exact_then_unique_substring_then_port_part():
    names = ["Moodroll:Moodroll", "Moodroll Clock In:Moodroll Clock In", "Synth:in 128:0"]
    assert find_port(names, "Moodroll:Moodroll") == 0
    assert find_port(names, "synth") == 2
    assert find_port(names, "Moodroll") == 0  # two contain it; one is exactly that port
    assert find_port(names, "nothing") is None


def test_virtual_output_listed_and_notes_arrive_in_order(jack_server):
    with MidiOutput(api="jack", name="Moodroll") as out:
        assert out.virtual and out.connected and out.api == "jack"
        assert any("Moodroll" in p for p in list_ports("jack")["jack"]["inputs"])
        with Recorder("Moodroll", api="jack") as rec:
            time.sleep(0.1)
            pitches = [60, 64, 67, 72, 76]
            for p in pitches:
                assert out.note_on(p, 90)
                time.sleep(0.01)
            assert rec.wait_for(lambda r: len(r.note_ons()) == 5, timeout=5)
            got = rec.note_ons()
            assert [p for _, p, _ in got] == pitches
            assert all(v == 90 for _, _, v in got)
            times = [t for t, _, _ in got]
            assert times == sorted(times)
            assert rec.sounding() == {(0, p) for p in pitches}

            out.all_notes_off()
            assert rec.wait_for(lambda r: not r.sounding(), timeout=5)
            cc = [m for _, m in rec.snapshot() if m[0] == 0xB0]
            assert cc and cc[-1][1] == 123  # all notes off
            assert out.sounding == {}


def test_missing_port_is_one_clear_line_listing_ports(jack_server):
    with pytest.raises(MidiPortError) as e:
        MidiOutput("No Such Synth", api="jack")
    msg = str(e.value)
    assert "no MIDI output port 'No Such Synth' on jack; available:" in msg and "\n" not in msg


def test_output_port_vanishes_and_returns_without_crashing(jack_server):
    synth = Recorder(None, api="jack", name="Test Synth")  # a program with an input port
    out = MidiOutput("Test Synth", api="jack", name="Moodroll vanish", monitor_s=0)
    try:
        assert not out.virtual and "Test Synth" in out.full_name
        out.note_on(60, 100)
        assert synth.wait_for(lambda r: len(r.note_ons()) == 1, timeout=5)

        synth.close()  # the synth quits: its port disappears mid-stream
        assert out.check() is True  # one look without it: maybe just a busy MIDI system
        assert out.check() is False  # two: gone
        assert "disappeared" in out.status
        assert out.note_on(62, 100) is False  # nothing sent, nothing raised
        assert out.sounding.get((0, 62)) == 100

        synth = Recorder(None, api="jack", name="Test Synth")  # ... and comes back
        assert out.check() is True
        assert "reconnected" in out.status
        assert out.note_on(64, 100)
        assert synth.wait_for(lambda r: [p for _, p, _ in r.note_ons()] == [64], timeout=5)
    finally:
        out.close()
        synth.close()


def test_monitor_thread_notices_a_vanished_port(jack_server):
    synth = Recorder(None, api="jack", name="Test Synth 2")
    out = MidiOutput("Test Synth 2", api="jack", name="Moodroll monitor test", monitor_s=0.05)
    try:
        synth.close()
        deadline = time.monotonic() + 5
        while out.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not out.connected and "disappeared" in out.status
        out.note_off(60)  # still safe
    finally:
        out.close()


def test_input_timestamps_follow_the_senders_spacing(jack_server):
    """Arrival times come from the MIDI thread, not from when Python polls: this test polls
    once, after all ten messages (sent 20 ms apart) are in, and the times still spread like
    the sends, each no earlier than its send (exact spacing is moodroll bench's job)."""
    with MidiInput(None, api="jack", name="Stamp In", monitor_s=0) as inp, \
            MidiOutput("Stamp In", api="jack", name="Stamp Out", monitor_s=0) as out:
        time.sleep(0.1)
        sent = []
        for i in range(10):
            due = time.monotonic() + 0.02
            while time.monotonic() < due:
                pass
            sent.append(time.monotonic())
            out.send((0x90, 60 + i, 1))
        deadline = time.monotonic() + 30
        got = []
        while len(got) < 10 and time.monotonic() < deadline:
            time.sleep(0.1)
            got += inp.poll()
        assert [m[1] for _, m in got] == list(range(60, 70))
        times = [t for t, _ in got]
        assert times == sorted(times) and all(t >= s for t, s in zip(times, sent))
        assert times[-1] - times[0] > 0.5 * (sent[-1] - sent[0])  # not the poll's time (that would be 0)
        assert all(t <= time.monotonic() for t in times)
