"""engine/live/decoder.py's scheduling, exactly: the real LiveStream threads on a virtual clock
(tools.virtual_midi.VirtualTime) playing to an in-memory port (MemoryOutput).

Virtual time moves only when both stream threads wait, so decoding takes no time and every
event is sent exactly when it is due: the assertions below are equalities (to float
rounding), never tolerances, and hold on any machine however loaded. The DAW's transport is
MIDI clock fed to ClockFollower.handle at exact virtual times. What only real ports show is
in tests/test_stream.py (JACK); timing precision on a real port is ``moodroll bench``'s job.
"""
import mido
import numpy as np
import pytest

from engine.live.clock import CLOCK, CONTINUE, SONG_POSITION, START, STOP, ClockFollower
from engine.live.decoder import LiveStream, StreamOptions, TokenReplay
from engine.live.player import CaptureError
from engine.music.events import BAR, NOTE_ON, StreamingDecoder
from tools.virtual_midi import MemoryOutput, VirtualTime
from tests.token_fixtures import chord_ids, example_ids, tok  # noqa: F401  (fixtures)

EPS = 1e-9  # float rounding of the same arithmetic done twice, not a timing tolerance
ALL_OFF = (0xB0, 123, 0)


def note_ons_before_bar(tok, ids, bars):
    """(beat, pitch) of every note-on of the first ``bars`` bars, as the decoder makes them."""
    dec, notes = StreamingDecoder(tok), []
    for t in ids:
        for e in dec.feed(t):
            if e.kind == BAR and e.value >= bars:
                return notes
            if e.kind == NOTE_ON:
                notes.append((e.beat, e.pitch))
    return notes


def stream_on(vt, source, tok, clock=None, **options):
    out = MemoryOutput(time_source=vt)
    return LiveStream(source, tok, out, clock=clock, options=StreamOptions(**options), time_source=vt), out


def run_to_end(vt, stream):
    vt.run(stop_when=lambda: stream.wait(0))
    assert stream.wait(0) and stream.error is None, stream.status


def test_notes_are_sent_exactly_on_their_beats_and_released(tok, example_ids):
    vt = VirtualTime(start=100.0)
    stream, out = stream_on(vt, TokenReplay(example_ids), tok, bpm=120, bars=3)
    stream.start()
    run_to_end(vt, stream)
    assert stream.status == "played 3 bars"
    stream.stop()
    want = note_ons_before_bar(tok, example_ids, 3)
    got = out.note_ons()
    assert len(got) == stream.notes_sent == len(want) == 36
    assert [p for _, p, _ in got] == [p for _, p in want]  # same notes, same order
    start = 100.0 + stream.options.preroll_s  # the first note is decoded at once: preroll, then play
    for (t, _, _), (beat, _) in zip(got, want):
        assert t == pytest.approx(start + beat * 0.5, abs=EPS)
    # every note-off exactly at its note's end (or the end of bar 3), then CC 123
    msgs = out.snapshot()
    ends = {}
    for beat, pitch, _vel, dur in stream.played_notes:
        ends.setdefault(pitch, []).append(start + min(beat + dur, 12.0) * 0.5)
    offs = [(t, m[1]) for t, m in msgs if m[0] == 0x80]
    assert all(any(abs(t - e) < EPS for e in ends[p]) for t, p in offs)
    assert msgs[-1][1] == ALL_OFF and out.receiver_sounding() == set()
    assert stream.underruns == stream.slips == stream.notes_skipped == 0 and stream.max_late_ms == 0.0
    assert vt.now() == pytest.approx(start + 12 * 0.5, abs=EPS)  # ends on the last bar line


def test_model_tempo_tokens_set_the_tempo_without_a_bpm(tok, example_ids):
    vt = VirtualTime(start=0.0)
    stream, out = stream_on(vt, TokenReplay(example_ids), tok, bars=2)  # the example says 95.73 BPM
    stream.start()
    run_to_end(vt, stream)
    spb = 60.0 / 95.73
    got, want = out.note_ons(), note_ons_before_bar(tok, example_ids, 2)
    assert [t - got[0][0] for t, _, _ in got] == pytest.approx([b * spb for b, _ in want], abs=EPS)
    assert stream.bpm == pytest.approx(95.73)


def test_decoder_stays_between_one_and_ahead_bars_ahead(tok, example_ids):
    vt = VirtualTime()
    stream, out = stream_on(vt, TokenReplay(example_ids), tok, bpm=240, ahead_bars=1.5)
    stream.start()
    leads = []
    for _ in range(200):  # 20 s of music, looked at every 0.1 s while both threads wait
        vt.advance(0.1)
        leads.append(stream.horizon - stream.playhead)
    stream.stop()
    assert min(leads) >= 4.0 * 1.5  # the decoder always caught up to ahead_bars (4/4)
    assert max(leads) <= 4.0 * 1.5 + 4.0  # and never ran further than one token's bar past it
    assert stream.underruns == 0 and out.receiver_sounding() == set()


class StallingReplay(TokenReplay):
    """A real token sequence whose decoding stalls ``stall_s`` of virtual time right after the
    first note is complete: playback must start on that note; what follows comes late, never dropped."""

    def __init__(self, tok, ids, vt, stall_s):
        super().__init__(ids, loop=False)
        self.dec, self.vt, self.stall_s, self.stall_end, self.noted = StreamingDecoder(tok), vt, stall_s, None, False

    def next_token(self):
        if self.noted and self.stall_end is None:
            self.stall_end = self.vt.now() + self.stall_s
            while not self.vt.wait_until(self.stall_end):
                pass
        t = super().next_token()
        self.noted = self.noted or any(e.kind == NOTE_ON for e in self.dec.feed(t))
        return t


def test_starts_on_the_first_note_and_a_late_decoder_delays_but_never_drops(tok, example_ids):
    vt = VirtualTime(start=0.0)
    source = StallingReplay(tok, example_ids, vt, stall_s=0.6)  # 2 beats at 200 BPM
    lines = []
    stream, out = stream_on(vt, source, tok, bpm=200, bars=2, start_bars=0)  # start on the first note
    stream.on_status = lines.append
    stream.start()
    run_to_end(vt, stream)
    got, want = out.note_ons(), note_ons_before_bar(tok, example_ids, 2)
    assert got[0][0] == pytest.approx(0.01, abs=EPS) and got[0][0] < source.stall_end  # played during the stall
    assert stream.notes_skipped == 0 and stream.slips == 1 and stream.underruns >= 1
    assert [p for _, p, _ in got] == [p for _, p in want]  # late, never dropped
    late_ms = round((source.stall_end - (0.01 + want[1][0] * 0.3)) * 1000)  # the 2nd note's lateness
    assert stream.notes_late == 1 and any(f"notes come late, 1 so far, up to {late_ms} ms late" in x for x in lines)
    # after the slip the music keeps its rhythm: beat spacing exact from the first late note on
    late = [(t, b) for (t, _, _), (b, _) in zip(got, want) if t > source.stall_end - EPS]
    assert late[0][0] == pytest.approx(source.stall_end, abs=EPS)
    assert [t - late[0][0] for t, _ in late] == pytest.approx([(b - late[0][1]) * 0.3 for _, b in late], abs=EPS)
    assert out.receiver_sounding() == set()


def test_stop_mid_phrase_releases_every_note(tok, chord_ids):
    vt = VirtualTime()
    stream, out = stream_on(vt, TokenReplay(chord_ids), tok, bpm=120)
    stream.start()
    vt.run(stop_when=lambda: len(out.receiver_sounding()) >= 6)  # chords ringing
    stream.stop()
    assert stream.error is None and stream.status == "stopped"
    assert out.receiver_sounding() == set() and out.sounding == {}
    assert out.snapshot()[-1][1] == ALL_OFF


def test_pause_silences_at_once_and_resume_goes_on_from_the_same_beat(tok, chord_ids):
    vt = VirtualTime(start=0.0)
    stream, out = stream_on(vt, TokenReplay(chord_ids), tok, bpm=180)
    stream.start()
    vt.run(until=2.0)
    assert len(out.receiver_sounding()) >= 3
    stream.pause()
    vt.advance(0.005)
    assert out.receiver_sounding() == set() and stream.status == "paused"
    n, held = len(out.snapshot()), stream.playhead
    vt.advance(3.0)
    assert len(out.snapshot()) == n and stream.playhead == held  # silence, playhead held
    resumed_at = vt.now()
    stream.resume()
    vt.advance(2.0)
    stream.stop()
    after = [(t, p) for t, p, _ in out.note_ons() if t >= resumed_at]
    first_beat = next(b for b, p, _, _ in stream.played_notes if b >= held)
    start = resumed_at + stream.options.preroll_s  # the clock restarts at the held beat
    assert after[0][0] == pytest.approx(start + (first_beat - held) / 3.0, abs=EPS)
    assert stream.error is None and out.receiver_sounding() == set()


def test_a_vanished_port_plays_on_and_the_returning_one_gets_notes(tok, chord_ids):
    vt = VirtualTime()
    stream, out = stream_on(vt, TokenReplay(chord_ids), tok, bpm=240)
    stream.start()
    vt.advance(1.0)
    out.vanish()  # the receiver quits mid-stream
    sent, n = stream.notes_sent, len(out.note_ons())
    vt.advance(1.0)
    assert stream.running and stream.error is None and stream.notes_sent > sent  # plays on
    assert len(out.note_ons()) == n and out.failed > 0
    out.restore()
    vt.advance(1.0)
    assert len(out.note_ons()) > n
    stream.stop()
    assert out.receiver_sounding() == set()


def test_capture_writes_exactly_the_last_bars_played(tok, example_ids, tmp_path):
    vt = VirtualTime()
    stream, out = stream_on(vt, TokenReplay(example_ids), tok, bpm=320, bars=3)
    with pytest.raises(CaptureError, match="nothing to capture yet"):
        stream.capture(tmp_path / "early.mid")
    stream.start()
    run_to_end(vt, stream)
    path = stream.capture(tmp_path / "last.mid", bars=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.mid"]  # no temporary left
    mid = mido.MidiFile(path)
    assert mido.tempo2bpm(next(m.tempo for m in mid.tracks[0] if m.type == "set_tempo")) == pytest.approx(320)
    notes, now = [], 0
    for m in mid.tracks[0]:
        now += m.time
        if m.type == "note_on" and m.velocity > 0:
            notes.append((now / mid.ticks_per_beat, m.note))
    played = [(b - 4.0, p) for b, p, _, _ in stream.played_notes if 4.0 <= b < 12.0]  # bars 2-3
    assert notes == played and len(notes) == 24
    assert mid.length == pytest.approx(2 * 4 * 60 / 320)
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(CaptureError, match="cannot write .*: a part of the path is not a folder"):
        stream.capture(tmp_path / "file" / "x.mid")


def test_capture_never_holds_one_key_twice(tok, tmp_path):
    """A note still held when its key starts again ends there in the file (the stream itself
    releases the key first), so no reader can pair the note-offs differently."""
    import symusic

    from tests.test_generate_cli import _held_twice

    score = symusic.Score(480)
    track = symusic.Track(program=0)
    for beat, beats, pitch in [(0, 3, 60), (1, 1, 60), (2, 1, 64), (4, 1, 62), (6, 1, 60), (8, 1, 62), (10, 1, 64)]:
        track.notes.append(symusic.Note(beat * 480, beats * 480, pitch, 80))
    score.tracks.append(track)
    vt = VirtualTime()
    stream, out = stream_on(vt, TokenReplay(tok.encode(score)), tok, bpm=240, bars=3)
    stream.start()
    run_to_end(vt, stream)
    assert sum(1 for n in stream.played_notes if n[1] == 60 and n[0] < 2) == 2  # both were played
    path = stream.capture(tmp_path / "take.mid", bars=3)
    assert _held_twice(path) == []
    mid, now, ons = mido.MidiFile(path), 0, []
    for m in mid.tracks[0]:
        now += m.time
        if m.type == "note_on" and m.velocity > 0:
            ons.append((now / mid.ticks_per_beat, m.note))
    assert (0.0, 60) in ons and (1.0, 60) in ons  # the second onset is kept, the first note shortened


def test_clock_out_sends_start_24_clocks_per_beat_and_stop_exactly(tok, example_ids):
    vt = VirtualTime(start=0.0)
    stream, out = stream_on(vt, TokenReplay(example_ids), tok, bpm=150, bars=2, clock_out=True)
    stream.start()
    run_to_end(vt, stream)
    msgs = out.snapshot()
    rt = [(t, m[0]) for t, m in msgs if m[0] >= 0xF8]
    assert rt[0][1] == START and rt[-1][1] == STOP
    ticks = [t for t, k in rt if k == CLOCK]
    assert len(ticks) == 2 * 4 * 24
    period = 60 / 150 / 24
    assert np.diff(ticks) == pytest.approx(period, abs=EPS)
    assert out.note_ons()[0][0] == ticks[0]  # the first clock is the first downbeat
    assert msgs.index(next(m for m in msgs if m[1][0] == START)) < msgs.index(next(m for m in msgs if m[1][0] == CLOCK))


def test_clock_out_pause_sends_stop_then_song_position_and_continue(tok, chord_ids):
    vt = VirtualTime(start=0.0)
    stream, out = stream_on(vt, TokenReplay(chord_ids), tok, bpm=120, clock_out=True)
    stream.start()
    vt.run(until=1.0)
    stream.pause()
    vt.advance(0.5)
    stream.resume()
    vt.advance(0.5)
    stream.stop()
    kinds = [m for _, m in out.snapshot() if m[0] in (START, STOP, CONTINUE, SONG_POSITION)]
    assert kinds[0] == (START,) and kinds[1] == (STOP,) and kinds[2][0] == SONG_POSITION and kinds[3] == (CONTINUE,)
    held = (1.0 - stream.options.preroll_s) * 2  # the beat sounding when paused (120 BPM)
    assert kinds[2][1] | kinds[2][2] << 7 == round(held * 4)  # Song Position in sixteenths


class Daw:
    """A DAW's transport as MIDI clock fed to a ClockFollower at exact virtual times."""

    def __init__(self, vt, follower, bpm):
        self.vt, self.f, self.period = vt, follower, 60.0 / bpm / 24

    def play(self, t0, lead_ticks=24, position=None, ticks=24 * 16):
        """Clock from ``t0`` while stopped, Start (or Song Position + Continue) half a clock
        before clock ``lead_ticks``, ``ticks`` clocks more, then Stop. Returns clock 0's song time."""
        at = self.vt.call_at
        for k in range(lead_ticks + ticks):
            t = t0 + k * self.period
            if k == lead_ticks:
                ts = t - self.period / 2
                if position is None:
                    at(ts, lambda ts=ts: self.f.handle(ts, [START]))
                else:
                    at(ts, lambda ts=ts: self.f.handle(ts, [SONG_POSITION, position & 0x7F, position >> 7]))
                    at(ts, lambda ts=ts: self.f.handle(ts, [CONTINUE]))
            at(t, lambda t=t: self.f.handle(t, [CLOCK]))
        end = t0 + (lead_ticks + ticks) * self.period
        at(end, lambda: self.f.handle(end, [STOP]))
        return t0 + lead_ticks * self.period  # when the first song clock sounds


class _NoPort:
    full_name = "Moodroll Clock In"


@pytest.mark.parametrize("bpm, position", [(90.0, None), (140.0, 15)])
def test_follows_the_daw_clock_on_its_bar_lines_exactly(tok, example_ids, bpm, position):
    vt = VirtualTime(start=0.0)
    follower = ClockFollower(_NoPort())
    stream, out = stream_on(vt, TokenReplay(example_ids), tok, clock=follower, bars=2)
    stream.start()
    vt.run(until=0.5)
    assert out.note_ons() == [] and stream.status in ("decoding the first bar", "waiting for MIDI clock on 'Moodroll Clock In'")
    song0 = Daw(vt, follower, bpm).play(t0=0.5, position=position)
    run_to_end(vt, stream)
    assert follower.bpm == pytest.approx(bpm, abs=1e-6)
    got, want = out.note_ons(), note_ons_before_bar(tok, example_ids, 2)
    assert [p for _, p, _ in got] == [p for _, p in want] and len(got) == 24
    start_beat = 0.0 if position is None else 4.0  # sixteenth 15 = beat 3.75: the next bar line is beat 4
    tick0 = 0 if position is None else position * 6
    spb = 60.0 / bpm
    for (t, _, _), (beat, _) in zip(got, want):  # every note on the DAW's grid, from its bar line
        assert t == pytest.approx(song0 + (start_beat + beat) * spb - tick0 / 24 * spb, abs=1e-6)
    assert stream.notes_skipped == 0 and out.receiver_sounding() == set()


def test_daw_stop_silences_and_continue_restarts_on_the_daws_next_bar(tok, chord_ids):
    vt = VirtualTime(start=0.0)
    follower = ClockFollower(_NoPort())
    stream, out = stream_on(vt, TokenReplay(chord_ids), tok, clock=follower)
    stream.start()
    daw = Daw(vt, follower, 120.0)
    daw.play(t0=0.1, ticks=24 * 6)  # plays 6 beats, then Stop
    stop_at = 0.1 + (24 + 24 * 6) * daw.period
    vt.run(until=stop_at + 0.01)
    assert out.note_ons() and out.receiver_sounding() == set() and not follower.running
    n = len(out.note_ons())
    vt.advance(1.0)
    assert len(out.note_ons()) == n  # nothing while the DAW is stopped
    t1 = vt.now()
    song0 = daw.play(t0=t1, position=6 * 4, ticks=24 * 8)  # continue from beat 6 (sixteenth 24)
    vt.run(until=song0 + 6 * 0.5)
    stream.stop()
    after = [t for t, _, _ in out.note_ons() if t > t1]
    assert after and after[0] == pytest.approx(song0 + 2 * 0.5, abs=1e-6)  # beat 8 = the next bar line
    assert out.receiver_sounding() == set() and stream.error is None


def test_steering_applies_at_the_next_bar_line_without_clearing_the_cache(bundle):
    """The real generator (random-weight bundle) on virtual time: a VA point and a picture set
    while playing are applied right after the next Bar token decoded, a bar that playback has
    not reached yet (so every bar is written under one setting), and the KV cache keeps growing."""
    from engine.model.generator import Condition, MusicGenerator
    from engine.model.runtime import Runtime
    from engine.model.sampling import SamplingOptions

    class LoggingGenerator(MusicGenerator):  # the real generator, with a log of what happened
        def next_token(self):
            t = super().next_token()
            self.log.append(("token", t, self.cache.length))
            return t

        def set_condition(self, condition):
            if hasattr(self, "log"):
                self.log.append(("condition", condition, self.cache.length))
            super().set_condition(condition)

    gen = LoggingGenerator(bundle, SamplingOptions(seed=5), condition=Condition(3.0, 3.0),
                           runtime=Runtime(bundle, device="cpu", threads=1))
    gen.log = []
    bar = gen.tokenizer.groups.bar
    vt = VirtualTime(start=0.0)
    stream, out = stream_on(vt, gen, gen.tokenizer, bpm=300)
    stream.start()
    vt.run(stop_when=lambda: len(out.note_ons()) >= 3)
    picture = np.full((48, 64, 3), (30, 160, 220), np.uint8)
    for steer in (lambda: stream.set_va(8.0, 7.0), lambda: stream.set_image(picture)):
        vt.advance(0.5)
        mark, bars_before, playhead = len(gen.log), len(stream.decoded_bars), stream.playhead
        steer()
        vt.run(stop_when=lambda: any(e[0] == "condition" for e in gen.log[mark:]))
        i = next(i for i in range(mark, len(gen.log)) if gen.log[i][0] == "condition")
        before = gen.log[i - 1]
        assert before[0] == "token" and before[1] == bar  # applied right after a Bar ...
        assert sum(e[0] == "token" and e[1] == bar for e in gen.log[mark:i - 1]) == 0  # ... the next one
        assert len(stream.decoded_bars) == bars_before + 1
        assert stream.decoded_bars[-1] > playhead  # a bar not yet played: heard whole, from its start
        assert before[2] > 0 and gen.log[i][2] == before[2]  # the cache was not cleared
    assert gen.condition.image_tokens is not None
    assert gen.condition.va == pytest.approx(gen.analyze_image(picture)[1])
    n = len(out.note_ons())
    vt.advance(2.0)
    stream.stop()
    assert len(out.note_ons()) > n and stream.error is None and gen.n_tokens == stream.tokens
    assert out.receiver_sounding() == set()


def test_humanize_spreads_own_clock_onsets_seeded_and_never_a_daws_grid(tok, example_ids):
    def onsets(seed, follower=None, bpm=None):
        vt = VirtualTime(start=0.0)
        stream, out = stream_on(vt, TokenReplay(example_ids), tok, clock=follower, bars=2, bpm=bpm,
                                humanize_ms=15.0, humanize_seed=seed)
        stream.start()
        if follower is not None:
            vt.run(until=0.5)
            Daw(vt, follower, 120).play(t0=0.5, position=None)
        run_to_end(vt, stream)
        assert out.receiver_sounding() == set() and stream.notes_skipped == 0
        offs = [t for t, m in out.snapshot() if m[0] == 0x80]
        assert len(offs) == 24  # every note released by its own note-off, none left for the final all-off
        return [t for t, _, _ in out.note_ons()], stream

    grid = [beat * 0.5 for beat, _ in note_ons_before_bar(tok, example_ids, 2)]
    a, stream = onsets(7, bpm=120)
    start = stream.options.preroll_s
    off = [t - start - g for t, g in zip(a, grid)]
    assert len(a) == len(grid) == 24
    assert max(abs(x) for x in off) <= 0.015 * 2.5 * 1.2 + EPS and sum(abs(x) > 0.001 for x in off) >= 12
    assert onsets(7, bpm=120)[0] == a and onsets(8, bpm=120)[0] != a  # seeded
    synced, _ = onsets(7, follower=ClockFollower(_NoPort()))
    assert [t - synced[0] for t in synced] == pytest.approx([g - grid[0] for g in grid], abs=1e-6)  # the DAW's grid
