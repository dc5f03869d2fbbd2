"""The desktop app's painted widgets and Qt-free taps, without ports or a model: the emotion
plane's mapping and override, the piano roll's state, the look-ahead tee and the fan-out."""
import pytest
from PyQt6.QtCore import QPointF, Qt

pytest.importorskip("pytestqt")


def test_emotion_plane_maps_both_ways_and_double_click_follows_the_picture(qtbot):
    from desktop.emotion_plane import EmotionPlane

    pad = EmotionPlane()
    qtbot.addWidget(pad)
    pad.resize(300, 300)
    pad.show()
    for va in ((1.0, 1.0), (9.0, 9.0), (3.5, 7.25)):
        assert pad.va_at(pad.pos_of(*va)) == pytest.approx(va, abs=1e-9)
    assert pad.va_at(QPointF(-50, -50)) == (1.0, 9.0)  # outside: clamped to the plane
    got = []
    pad.targetChanged.connect(got.append)
    pad.set_picture_va(6.0, 3.0)
    assert pad.following and pad.puck_va == (6.0, 3.0)
    with qtbot.waitSignal(pad.targetChanged):
        qtbot.mouseClick(pad, Qt.MouseButton.LeftButton, pos=pad.pos_of(2.0, 8.0).toPoint())
    assert not pad.following and pad.target_va == pytest.approx((2.0, 8.0), abs=0.05)
    qtbot.mouseDClick(pad, Qt.MouseButton.LeftButton, pos=pad.pos_of(2.0, 8.0).toPoint())
    assert pad.following and got[-1] is None and pad.puck_va == (6.0, 3.0)
    for i in range(30):
        pad.add_heard(5 + i / 10, 5)
    assert len(pad.trail) == pad.trail.maxlen  # a bounded trail
    assert not pad.grab().isNull()


def test_piano_roll_keeps_bars_and_look_ahead_and_follows_the_register(qtbot):
    from desktop.piano_roll import PianoRoll

    roll = PianoRoll()
    qtbot.addWidget(roll)
    roll.resize(600, 240)
    played = [(0.0, 30, 80, 1.0), (1.0, 32, 80, 0.5)]
    roll.set_state(1.5, played, [(2.0, 34, 70, 1.0), (3.0, 35, 70, 1.0)], [0.0, 4.0])
    assert roll.bars == [0.0, 4.0] and len(roll.lookahead) == 2
    assert roll.pitch_lo <= 30 and roll.pitch_hi >= 35 and roll.pitch_lo >= 21  # low notes brought into view
    roll.set_state(2.5, played, [], [8.0, 4.0])
    assert roll.bars == [0.0, 4.0, 8.0]
    start, end = roll.window()
    assert start < 2.5 < end and end - start == roll.span
    assert not roll.grab().isNull()
    roll.clear()
    assert roll.played == [] and not roll.lookahead


class _Source:
    """A token source shaped like MusicGenerator: a fixed list of (token, events) steps."""

    def __init__(self, steps):
        self.steps, self.i, self.last_events, self.condition = steps, 0, [], None

    def next_token(self):
        tok, self.last_events = self.steps[self.i]
        self.i += 1
        return tok


def test_lookahead_tee_records_notes_bars_and_the_condition_of_each_token():
    from engine.model.generator import Condition
    from engine.music.events import BAR, NOTE_ON, Event

    from desktop.taps import LookaheadTee

    src = _Source([(4, [Event(BAR, 0.0, value=0)]), (9, []), (7, [Event(NOTE_ON, 0.5, 60, 90, 1.0)])])
    tee = LookaheadTee(src)
    assert tee.next_token() == 4
    src.condition = Condition(7.0, 2.0)
    assert [tee.next_token(), tee.next_token()] == [9, 7]
    assert list(tee.log) == [(4, None), (9, (7.0, 2.0)), (7, (7.0, 2.0))]
    assert tee.drain() == ([(0.5, 60, 90, 1.0)], [0.0]) and tee.drain() == ([], [])
    assert tee.condition is src.condition  # steering reaches the real source
    with pytest.raises(AttributeError):
        tee.no_such_thing  # noqa: B018


class _Sink:
    def __init__(self, fail=False):
        self.got, self.fail = [], fail

    def send(self, m):
        self.got.append(tuple(m))
        return True

    def note_on(self, p, v, ch=0):
        return self.send((0x90 | ch, p, v))

    def note_off(self, p, ch=0):
        return self.send((0x80 | ch, p, 0))

    def all_notes_off(self):
        if self.fail:
            raise RuntimeError("broken")
        self.send((0xB0, 123, 0))


def test_fan_out_sends_to_every_sink_and_one_broken_sink_silences_no_other():
    from engine.live.sinks import FanOut

    a, b, broken = _Sink(), _Sink(), _Sink(fail=True)
    fan = FanOut(a, None, broken, b)
    assert fan.note_on(60, 100) and fan.note_off(60)
    fan.all_notes_off()
    assert a.got == b.got == [(0x90, 60, 100), (0x80, 60, 0), (0xB0, 123, 0)]
