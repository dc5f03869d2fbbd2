"""A clean start, on virtual time: the first bar is decoded before the clock starts, bar 1 plays at
the tempo its Tempo token says (not ``default_bpm``), and the "notes come late" warning appears
only when a note really goes out late, saying how late.

The source is a real token sequence whose first bar is slow to decode (a model's prefill and
ONNX Runtime's first steps), as a virtual-time cost per token: decoding bar 1 takes longer than
bar 1 lasts, so a stream that started on the first decoded note would play it late.
"""
import pytest

from tools.virtual_midi import MemoryOutput, VirtualTime
from engine.live.decoder import LiveStream, StreamOptions, TokenReplay
from engine.music.events import BAR, NOTE_ON, TEMPO, StreamingDecoder
from tests.token_fixtures import example_ids, tok  # noqa: F401  (fixtures)

EPS = 1e-9  # float rounding, not a timing tolerance


class SlowFirstBar(TokenReplay):
    """``ids`` whose tokens up to the second Bar cost ``cost_s`` of virtual time each."""

    def __init__(self, tok, ids, vt, cost_s):
        super().__init__(ids, loop=False)
        self.dec, self.vt, self.cost_s, self.bars, self.decoded_at = StreamingDecoder(tok), vt, cost_s, 0, None

    def next_token(self):
        if self.bars < 2:
            end = self.vt.now() + self.cost_s
            while not self.vt.wait_until(end):
                pass
        t = super().next_token()
        for e in self.dec.feed(t):
            if e.kind == BAR:
                self.bars += 1
                if self.bars == 2:
                    self.decoded_at = self.vt.now()  # bar 1 is decoded: bar 2's line is known
        return t


def bar1(tok, ids):
    """(tempo of bar 1, [(beat, pitch) of its note-ons], tokens up to bar 2's line)."""
    dec, tempo, notes = StreamingDecoder(tok), None, []
    for i, t in enumerate(ids):
        for e in dec.feed(t):
            if e.kind == BAR and e.value >= 1:
                return tempo, notes, i + 1
            if e.kind == TEMPO and tempo is None:
                tempo = e.value
            if e.kind == NOTE_ON:
                notes.append((e.beat, e.pitch))
    raise AssertionError("the example has one bar only")


def play(tok, ids, start_bars):
    vt = VirtualTime(start=0.0)
    tempo, notes, n_tokens = bar1(tok, ids)
    bar_s = 4 * 60.0 / tempo
    source = SlowFirstBar(tok, ids, vt, cost_s=1.5 * bar_s / n_tokens)  # bar 1 decodes at 2/3 real time
    out, lines = MemoryOutput(time_source=vt), []
    stream = LiveStream(source, tok, out, options=StreamOptions(bars=2, start_bars=start_bars),
                        on_status=lines.append, time_source=vt)
    stream.start()
    vt.run(stop_when=lambda: stream.wait(0))
    stream.stop()
    assert stream.error is None, stream.status
    return stream, out, lines, source, tempo, notes


def test_bar_one_is_decoded_before_the_clock_starts_and_plays_at_its_own_tempo(tok, example_ids):
    stream, out, lines, source, tempo, notes = play(tok, example_ids, start_bars=1.0)
    assert tempo != pytest.approx(StreamOptions().default_bpm)  # the example says 95.73 BPM, not 110
    got = out.note_ons()
    first = source.decoded_at + stream.options.preroll_s  # the clock starts once bar 1 is decoded
    spb = 60.0 / tempo
    assert [t for t, _, _ in got[:len(notes)]] == pytest.approx([first + b * spb for b, _ in notes], abs=EPS)
    assert [p for _, p, _ in got[:len(notes)]] == [p for _, p in notes]
    assert f"playing bar 1 at {tempo:.1f} BPM (own tempo)" in lines  # the status says the tempo played
    assert not any("behind real time" in x for x in lines), lines  # nothing was late: no warning
    assert stream.notes_late == stream.slips == stream.shortfall == 0 and stream.max_late_ms == 0.0
    assert stream.notes_planned == stream.notes_sent == len(got)


def test_starting_on_the_first_note_plays_a_slow_first_bar_late_and_says_how_late(tok, example_ids):
    stream, out, lines, source, tempo, notes = play(tok, example_ids, start_bars=0.0)
    warnings = [x for x in lines if "behind real time" in x]
    assert stream.notes_late >= 1 and stream.slips >= 1 and warnings  # really late, and said so
    assert f"up to {stream.worst_late_ms:.0f} ms late" in warnings[-1] and stream.worst_late_ms > 20.0
    assert [p for _, p, _ in out.note_ons()][:len(notes)] == [p for _, p in notes]  # late, never dropped
    assert stream.shortfall == 0
