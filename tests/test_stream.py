"""engine/stream.py on real ports (private JACK server): notes on time and in order, DAW clock
following at 90 and 140 BPM, stop / pause leave nothing sounding, a vanishing port, capture.

The token sources are real token sequences: MIDI files through the tokenizer (TokenReplay).
The generator-driven stream is tested in tests/test_live_cli.py and below where a bundle is
needed. Timing checks use receiver-side arrival times and robust statistics (medians)."""
import time

import mido
import numpy as np
import pytest

from engine.bench_realtime import Recorder, match_arrivals
from engine.clock import CLOCK, CONTINUE, START, ClockFollower, TempoEstimator
from engine.midi_io import MidiInput, MidiOutput
from engine.paths import EXAMPLES
from engine.stream import CaptureError, LiveStream, StreamOptions, TokenReplay
from engine.streaming import BAR, NOTE_ON, StreamingDecoder
from engine.tokenizer import Tokenizer
from tests.jack import DawClock


@pytest.fixture(scope="module")
def tok():
    return Tokenizer()


@pytest.fixture(scope="module")
def example_ids(tok):
    return tok.encode(EXAMPLES / "example.mid")


@pytest.fixture(scope="module")
def chord_ids(tok, tmp_path_factory):
    """A real MIDI file of long overlapping chords (always something sounding), tokenised."""
    path = tmp_path_factory.mktemp("midi") / "chords.mid"
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    events = []
    for beat in range(32):
        for p in ([60, 64, 67], [62, 65, 69], [64, 67, 71], [65, 69, 72])[beat % 4]:
            events += [(beat * 480, 1, mido.Message("note_on", note=p, velocity=80)),
                       (beat * 480 + 3 * 480, 0, mido.Message("note_off", note=p, velocity=0))]
    now = 0
    for t, _, m in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(m.copy(time=t - now))
        now = t
    mid.save(path)
    return tok.encode(path)


def _ports(name):
    out = MidiOutput(api="jack", name=name, monitor_s=0)
    rec = Recorder(name, api="jack", name=f"{name} rec")
    time.sleep(0.1)
    return out, rec


def test_notes_arrive_in_order_and_on_time(jack_server, tok, example_ids):
    out, rec = _ports("Moodroll t1")
    stream = LiveStream(TokenReplay(example_ids), tok, out, options=StreamOptions(bpm=200, bars=3))
    try:
        stream.start()
        assert stream.wait(30) and stream.error is None
        time.sleep(0.1)
        sent = list(stream.timeline)
        got = rec.note_ons()
        assert stream.notes_sent == len(sent) == len(got) == 36  # 3 bars of the example
        assert [p for _, p, _ in got] == [s[3] for s in sent]  # same notes, same order
        # on time: arrival vs schedule, and the beat spacing at 200 BPM, at the receiver
        err = [(arr - due) * 1000 for due, arr in match_arrivals(sent, got)]
        assert np.median(np.abs(err)) < 2.0, (err, a, b, ticks[:5], ticks[-5:], len(ticks))
        spacing = [((t - got[0][0]) - (s[0] - sent[0][0]) * 0.3) * 1000 for (t, _, _), s in zip(got, sent)]
        assert np.median(np.abs(spacing)) < 2.0, spacing
        assert rec.wait_for(lambda r: r.sounding() == set(), timeout=5)  # the end of the 3 bars released all
        assert stream.status == "played 3 bars"
    finally:
        stream.stop(), rec.close(), out.close()


def test_decoder_stays_between_one_and_ahead_bars_ahead(jack_server, tok, example_ids):
    out, rec = _ports("Moodroll t2")
    stream = LiveStream(TokenReplay(example_ids), tok, out, options=StreamOptions(bpm=240, ahead_bars=1.5))
    try:
        stream.start()
        leads = []
        for _ in range(10):
            time.sleep(0.15)
            leads.append(stream.horizon - stream.playhead)
        assert min(leads) >= 4.0 * 1.0 - 1e-6  # at least a bar (4/4) decoded beyond the playhead
        assert max(leads) <= 4.0 * 1.5 + 4.0  # bounded: ahead_bars, plus at most one token's bar
    finally:
        stream.stop(), rec.close(), out.close()


@pytest.mark.parametrize("bpm, position", [(90.0, None), (140.0, 15)])
def test_follows_daw_clock_notes_on_the_beat_grid(jack_server, tok, example_ids, bpm, position):
    """The DAW (another program) sends clock at 90 / 140 BPM to "Moodroll Clock In"; the
    music starts on the DAW's next bar and its notes arrive on the DAW's beat grid."""
    clock_in = MidiInput(None, api="jack", name=f"Moodroll Clock In {int(bpm)}")
    follower = ClockFollower(clock_in).start()
    daw_name = f"DAW {int(bpm)}"
    daw_out = MidiOutput(clock_in.full_name, api="jack", name=daw_name, monitor_s=0)
    grid = Recorder(daw_name, api="jack", name=f"Grid {int(bpm)}")
    out, rec = _ports(f"Moodroll {int(bpm)}")
    stream = LiveStream(TokenReplay(example_ids), tok, out, clock=follower,
                        options=StreamOptions(bars=2))  # no bpm: the DAW's tempo
    daw = DawClock(daw_out, bpm)
    try:
        stream.start()
        time.sleep(0.3)
        assert not rec.note_ons()  # nothing before the DAW plays
        daw.run(lead_ticks=24, position=position, ticks=24 * 16)
        assert stream.wait(30) and stream.error is None, stream.status
        assert follower.bpm == pytest.approx(bpm, abs=0.5)
        time.sleep(0.1)

        msgs = grid.snapshot()
        first = next(i for i, (_, m) in enumerate(msgs) if m[0] in (START, CONTINUE))
        ticks = np.array([t for t, m in msgs[first:] if m == [CLOCK]])
        song_tick0 = 0 if position is None else position * 6
        # The DAW's grid as it arrived at a receiving port: a robust (Theil-Sen) line through all
        # its clocks; least squares was pulled off the grid by bursts of clocks that a loaded
        # JACK dummy server delivered late together.
        k = np.arange(len(ticks)) + song_tick0
        grid_line = TempoEstimator(window=len(ticks))
        for i, t in zip(k, ticks):
            grid_line.add(int(i), float(t))
        a, b = grid_line.line()
        assert 60 / (24 * b) == pytest.approx(bpm, abs=0.5)

        sent = list(stream.timeline)
        got = rec.note_ons()
        assert len(got) == len(sent) == 24  # two bars of the example
        assert [p for _, p, _ in got] == [s[3] for s in sent]
        first_song_beat = (got[0][0] - a) / b / 24
        assert first_song_beat == pytest.approx(round(first_song_beat), abs=0.05)
        assert round(first_song_beat) % 4 == 0  # started on a DAW bar line
        offset = round(first_song_beat) - sent[0][0]
        err = [(t - (a + b * 24 * (s[0] + offset))) * 1000 for (t, _, _), s in zip(got, sent)]
        assert np.median(np.abs(err)) < 2.0, (err, a, b, ticks[:5], ticks[-5:], len(ticks))
        assert rec.wait_for(lambda r: r.sounding() == set(), timeout=5)
    finally:
        daw.stop()
        stream.stop(), follower.close()
        for p in (rec, grid, out, daw_out, clock_in):
            p.close()


def test_stop_mid_phrase_leaves_no_note_sounding(jack_server, tok, chord_ids):
    out, rec = _ports("Moodroll t3")
    stream = LiveStream(TokenReplay(chord_ids), tok, out, options=StreamOptions(bpm=120))
    try:
        stream.start()
        assert rec.wait_for(lambda r: len(r.sounding()) >= 6, timeout=10)  # mid-phrase, chords ringing
        stream.stop()
        assert stream.error is None and stream.status == "stopped"
        assert rec.wait_for(lambda r: r.sounding() == set(), timeout=5)
        assert rec.snapshot()[-1][1] == [0xB0, 123, 0]  # and a final "all notes off"
        assert out.sounding == {}
    finally:
        stream.stop(), rec.close(), out.close()


def test_pause_silences_and_resume_continues(jack_server, tok, chord_ids):
    out, rec = _ports("Moodroll t4")
    stream = LiveStream(TokenReplay(chord_ids), tok, out, options=StreamOptions(bpm=180))
    try:
        stream.start()
        assert rec.wait_for(lambda r: len(r.sounding()) >= 3, timeout=10)
        stream.pause()
        assert rec.wait_for(lambda r: r.sounding() == set(), timeout=5)
        n = len(rec.note_ons())
        time.sleep(0.5)
        assert len(rec.note_ons()) == n  # silence while paused
        stream.resume()
        assert rec.wait_for(lambda r: len(r.note_ons()) > n + 3, timeout=10)
        assert stream.error is None
    finally:
        stream.stop(), rec.close(), out.close()


def test_output_port_disappearing_mid_stream_does_not_crash(jack_server, tok, chord_ids):
    synth = Recorder(None, api="jack", name="Vanishing Synth")
    out = MidiOutput("Vanishing Synth", api="jack", name="Moodroll t5", monitor_s=0.1)
    stream = LiveStream(TokenReplay(chord_ids), tok, out, options=StreamOptions(bpm=240))
    try:
        stream.start()
        assert synth.wait_for(lambda r: len(r.note_ons()) >= 5, timeout=10)
        synth.close()  # the synth quits mid-stream
        assert synth.wait_for(lambda r: not out.connected, timeout=5)
        assert "disappeared" in out.status
        sent = stream.notes_sent
        time.sleep(0.5)
        assert stream.running and stream.error is None and stream.notes_sent > sent  # plays on

        synth = Recorder(None, api="jack", name="Vanishing Synth")  # it comes back
        assert synth.wait_for(lambda r: len(r.note_ons()) >= 5, timeout=10)
        stream.stop()
        assert stream.error is None
        assert synth.wait_for(lambda r: r.sounding() == set(), timeout=5)
    finally:
        stream.stop(), synth.close(), out.close()


def test_capture_writes_the_last_bars_that_were_played(jack_server, tok, example_ids, tmp_path):
    out, rec = _ports("Moodroll t6")
    stream = LiveStream(TokenReplay(example_ids), tok, out, options=StreamOptions(bpm=320, bars=3))
    try:
        with pytest.raises(CaptureError, match="nothing to capture yet"):
            stream.capture(tmp_path / "early.mid")
        stream.start()
        assert stream.wait(30) and stream.error is None
        path = stream.capture(tmp_path / "last.mid", bars=2)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["last.mid"]  # no temporary left
        mid = mido.MidiFile(path)
        assert mido.tempo2bpm(next(m.tempo for m in mid.tracks[0] if m.type == "set_tempo")) == pytest.approx(320)
        notes, now = [], 0
        for m in mid.tracks[0]:
            now += m.time
            if m.type == "note_on" and m.velocity > 0:
                notes.append((now / mid.ticks_per_beat, m.note))
        # bars 2 and 3 of what was played (beats 4..12), shifted to start at 0
        played = [(b - 4.0, p) for b, p, _, _ in stream.played_notes if 4.0 <= b < 12.0]
        assert notes == played and len(notes) == 24
        assert mid.length == pytest.approx(2 * 4 * 60 / 320, abs=0.01)
        with pytest.raises(CaptureError, match="cannot write"):
            stream.capture(tmp_path / "missing" / "x.mid")
    finally:
        stream.stop(), rec.close(), out.close()


def test_steering_applies_at_the_next_bar_without_clearing_the_cache(jack_server, random_bundle):
    """The real generator (random-weight bundle) drives the stream; a new VA point and a new
    picture are applied right after the next Bar token, and the KV cache keeps growing."""
    from engine.generator import Condition, MusicGenerator

    class LoggingGenerator(MusicGenerator):  # the real generator, with a log of what happened
        def next_token(self):
            tok = super().next_token()
            self.log.append(("token", tok, self.cache.length))
            return tok

        def set_condition(self, condition):
            if hasattr(self, "log"):
                self.log.append(("condition", condition, self.cache.length))
            super().set_condition(condition)

    gen = LoggingGenerator(random_bundle, condition=Condition(3.0, 3.0))
    gen.log = []
    bar = gen.tokenizer.groups.bar
    out, rec = _ports("Moodroll t7")
    stream = LiveStream(gen, gen.tokenizer, out, options=StreamOptions(bpm=300))
    try:
        stream.start()
        assert rec.wait_for(lambda r: len(r.note_ons()) >= 3, timeout=30)
        for steer in (lambda: stream.set_va(8.0, 7.0),
                      lambda: stream.set_image(np.full((48, 64, 3), (30, 160, 220), np.uint8))):
            steer()
            mark = len(gen.log)  # (a Bar logged just before may still be the one that applies it)
            deadline = time.monotonic() + 30
            while not any(e[0] == "condition" for e in gen.log[mark:]) and time.monotonic() < deadline:
                time.sleep(0.01)
            i = next(i for i in range(mark, len(gen.log)) if gen.log[i][0] == "condition")
            _, cond, cache_len = gen.log[i]
            before = gen.log[i - 1]
            assert before[0] == "token" and before[1] == bar  # applied right after a Bar ...
            assert sum(e[0] == "token" and e[1] == bar for e in gen.log[mark:i - 1]) == 0  # ... the next one
            assert cache_len > 0 and cache_len == before[2]  # the cache was not cleared
        assert gen.condition.image_tokens is not None  # the picture's tokens are in
        assert gen.condition.va == pytest.approx(gen.analyze_image(np.full((48, 64, 3), (30, 160, 220), np.uint8))[1])
        n = len(rec.note_ons())
        assert rec.wait_for(lambda r: len(r.note_ons()) > n, timeout=20)  # it plays on
        stream.stop()
        assert stream.error is None and gen.n_tokens == stream.tokens
        assert rec.wait_for(lambda r: r.sounding() == set(), timeout=5)
    finally:
        stream.stop(), rec.close(), out.close()


def test_clock_out_sends_start_and_24_clocks_per_beat(jack_server, tok, example_ids):
    out, rec = _ports("Moodroll t8")
    stream = LiveStream(TokenReplay(example_ids), tok, out, options=StreamOptions(bpm=150, bars=2, clock_out=True))
    try:
        stream.start()
        assert stream.wait(20) and stream.error is None
        time.sleep(0.1)
        msgs = rec.snapshot()
        kinds = [m[0] for _, m in msgs if m[0] >= 0xF8]
        assert kinds[0] == START and kinds[-1] == 0xFC  # Start ... Stop
        ticks = np.array([t for t, m in msgs if m == [CLOCK]])
        assert len(ticks) == 2 * 4 * 24  # two bars of 4/4
        period = np.polyfit(np.arange(len(ticks)), ticks, 1)[0]  # (JACK quantises each gap to 1.3 ms)
        assert 60 / (24 * period) == pytest.approx(150, abs=0.5)
        first_note = rec.note_ons()[0][0]
        assert abs(first_note - ticks[0]) < 0.002  # the first clock is the first downbeat
    finally:
        stream.stop(), rec.close(), out.close()


class _StallAfterFirstNote(TokenReplay):
    """A real token sequence whose decoder stalls (``stall_s``) right after the first note is
    complete: playback must start on that note, and what follows comes late, never dropped."""

    def __init__(self, tok, ids, stall_s):
        super().__init__(ids, loop=False)
        self.dec, self.stall_s, self.stall_end, self.noted = StreamingDecoder(tok), stall_s, None, False

    def next_token(self):
        if self.noted and self.stall_end is None:  # the stream has the first note by now
            time.sleep(self.stall_s)
            self.stall_end = time.monotonic()
        t = super().next_token()
        self.noted = self.noted or any(e.kind == NOTE_ON for e in self.dec.feed(t))
        return t


def test_starts_on_the_first_note_and_a_late_decoder_delays_but_never_drops(jack_server, tok, example_ids):
    dec, expected = StreamingDecoder(tok), 0
    for t in example_ids:
        evs = dec.feed(t)
        if any(e.kind == BAR and e.value >= 2 for e in evs):
            break
        expected += sum(e.kind == NOTE_ON for e in evs)
    source = _StallAfterFirstNote(tok, example_ids, stall_s=0.6)  # 2 beats at 200 BPM
    out, rec = _ports("Moodroll t9")
    stream = LiveStream(source, tok, out, options=StreamOptions(bpm=200, bars=2))
    try:
        stream.start()
        assert stream.wait(30) and stream.error is None
        time.sleep(0.1)
        got = rec.note_ons()
        assert got and got[0][0] < source.stall_end  # played while the decoder was still stalled
        assert stream.notes_skipped == 0 and stream.slips >= 1 and stream.underruns >= 1
        assert stream.notes_sent == len(got) == expected  # late, never dropped
        assert rec.wait_for(lambda r: r.sounding() == set(), timeout=5)  # and nothing stuck
    finally:
        stream.stop(), rec.close(), out.close()
