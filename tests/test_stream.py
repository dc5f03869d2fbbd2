"""engine/live/decoder.py on real ports (private JACK server): what only real ports show.

Notes arrive at another program in the order sent and none is left sounding after the end
or a stop; a port that vanishes mid-stream is reconnected when it returns; a DAW's clock sent
by another program is followed. The assertions hold on a loaded 2-core machine: they count
and order messages, never time them (JACK's dummy server under load delivers late and in
bursts, see tests/jack.py). The scheduling itself (times, bar lines, steering, clock out,
capture, a late decoder) is tested exactly on a virtual clock in tests/test_scheduling.py;
timing precision on a real port is measured by ``moodroll bench`` (tools/bench/realtime.py)."""
import time

import pytest

from tools.bench.realtime import Recorder
from engine.live.clock import CLOCK, START, ClockFollower
from engine.live.ports import MidiInput, MidiOutput
from engine.live.decoder import LiveStream, StreamOptions, TokenReplay
from tests.jack import DawClock
from tests.token_fixtures import chord_ids, example_ids, tok  # noqa: F401  (fixtures)

WAIT = 30  # s: generous; a loaded machine makes things later, never different


def until(predicate, timeout=WAIT):
    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:
        time.sleep(0.01)
    return predicate()


def _ports(name):
    out = MidiOutput(api="jack", name=name, monitor_s=0)
    rec = Recorder(name, api="jack", name=f"{name} rec")
    time.sleep(0.1)
    return out, rec


def test_notes_arrive_in_order_and_none_is_left_sounding(jack_server, tok, example_ids):
    out, rec = _ports("Moodroll t1")
    stream = LiveStream(TokenReplay(example_ids), tok, out, options=StreamOptions(bpm=200, bars=3))
    try:
        stream.start()
        assert stream.wait(WAIT) and stream.error is None, stream.status
        assert stream.status == "played 3 bars"
        sent = [s[3] for s in stream.timeline]
        assert stream.notes_sent == len(sent) == 36  # 3 bars of the example
        assert rec.wait_for(lambda r: len(r.note_ons()) >= 36 and r.sounding() == set(), timeout=WAIT)
        assert [p for _, p, _ in rec.note_ons()] == sent  # every note, in the order sent
        assert rec.snapshot()[-1][1] == [0xB0, 123, 0]  # the end: "all notes off"
    finally:
        stream.stop(), rec.close(), out.close()


def test_stop_mid_phrase_leaves_no_note_sounding(jack_server, tok, chord_ids):
    out, rec = _ports("Moodroll t3")
    stream = LiveStream(TokenReplay(chord_ids), tok, out, options=StreamOptions(bpm=120))
    try:
        stream.start()
        assert rec.wait_for(lambda r: len(r.sounding()) >= 6, timeout=WAIT)  # mid-phrase, chords ringing
        stream.stop()
        assert stream.error is None and stream.status == "stopped"
        assert rec.wait_for(lambda r: r.sounding() == set() and r.snapshot()[-1][1] == [0xB0, 123, 0], timeout=WAIT)
        assert out.sounding == {}
    finally:
        stream.stop(), rec.close(), out.close()


def test_a_vanished_port_is_reconnected_when_it_returns(jack_server, tok, chord_ids):
    synth = Recorder(None, api="jack", name="Vanishing Synth")
    out = MidiOutput("Vanishing Synth", api="jack", name="Moodroll t5", monitor_s=0.1)
    stream = LiveStream(TokenReplay(chord_ids), tok, out, options=StreamOptions(bpm=240))
    try:
        stream.start()
        assert synth.wait_for(lambda r: len(r.note_ons()) >= 5, timeout=WAIT)
        synth.close()  # the synth quits mid-stream
        assert until(lambda: not out.connected) and "disappeared" in out.status
        sent = stream.notes_sent
        assert until(lambda: stream.notes_sent > sent + 3)  # plays on, nothing raised
        assert stream.running and stream.error is None

        synth = Recorder(None, api="jack", name="Vanishing Synth")  # it comes back
        assert synth.wait_for(lambda r: len(r.note_ons()) >= 5, timeout=WAIT)
        assert "reconnected" in out.status
        stream.stop()
        assert stream.error is None
        assert synth.wait_for(lambda r: r.sounding() == set(), timeout=WAIT)
    finally:
        stream.stop(), synth.close(), out.close()


def test_follows_a_daw_clock_sent_by_another_program(jack_server, tok, example_ids):
    """The DAW (another program) sends clock at 120 BPM to "Moodroll Clock In": nothing plays
    before its Start, then two bars arrive in order, after the Start, and end released. The
    tempo read off real ports is checked to 2 % (a loaded dummy server delivers clocks in
    bursts; precision is measured by ``moodroll bench``); the bar-line alignment is exact in
    tests/test_scheduling.py."""
    bpm = 120.0
    clock_in = MidiInput(None, api="jack", name="Moodroll Clock In t6")
    follower = ClockFollower(clock_in).start()
    out, rec = _ports("Moodroll t6")
    lines = []  # status lines with their times, for the failure message
    stream = LiveStream(TokenReplay(example_ids), tok, out, clock=follower, options=StreamOptions(bars=2),
                        on_status=lambda s: lines.append((round(time.monotonic(), 3), s)))
    daw = DawClock(clock_in.full_name, bpm, name="DAW t6")
    try:
        stream.start()
        assert until(lambda: "MIDI clock" in stream.status)
        assert not rec.note_ons()  # nothing before the DAW plays
        daw.run(lead_ticks=24, ticks=24 * 64)  # 16 bars: time for 2 even if the start slips
        assert stream.wait(WAIT) and stream.error is None, (stream.status, follower.ticks, lines)
        assert follower.bpm == pytest.approx(bpm, rel=0.02)
        sent = [s[3] for s in stream.timeline]
        assert stream.notes_sent + stream.notes_skipped == 24 and stream.notes_sent >= 1  # two bars
        assert rec.wait_for(lambda r: len(r.note_ons()) >= len(sent) and r.sounding() == set(), timeout=WAIT)
        assert [p for _, p, _ in rec.note_ons()] == sent
        daw.stop()
        started = next(t for t, m in daw.sent if m == (START,))
        assert rec.note_ons()[0][0] > started  # (one monotonic clock for both programs)
        assert follower.ticks == sum(m == (CLOCK,) for _, m in daw.sent)  # every clock arrived
    finally:
        daw.stop()
        stream.stop(), follower.close()
        for p in (rec, out, clock_in):
            p.close()
