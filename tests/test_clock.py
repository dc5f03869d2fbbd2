"""engine/live/clock.py: our own tempo, the tempo estimator, and following a DAW's MIDI clock
(first from message sequences, then on real JACK ports from another program's clock)."""
import time

import numpy as np
import pytest

from engine.live.clock import (CLOCK, CONTINUE, SONG_POSITION, START, STOP, ClockFollower, InternalClock,
                          TempoEstimator)
from engine.live.ports import MidiInput
from tests.jack import DawClock


def test_internal_clock_maps_beats_and_keeps_time_continuous_across_tempo_changes():
    c = InternalClock(120)
    c.start(at=100.0, beat=0.0)
    assert c.time_of(4) == pytest.approx(102.0)
    c.set_tempo(60, at_beat=4)
    assert c.time_of(4) == pytest.approx(102.0)  # the change does not move what came before
    assert c.time_of(5) == pytest.approx(103.0)
    assert c.beat_at(103.0) == pytest.approx(5.0)
    assert c.bpm == pytest.approx(60)
    with pytest.raises(ValueError, match="tempo must be between 20 and 400 BPM"):
        c.set_tempo(1000)


def test_tempo_estimator_fits_jittery_clocks_and_ignores_a_late_one():
    rng = np.random.default_rng(0)
    period = 60 / 137.0 / 24
    est = TempoEstimator(window=48)
    for i in range(200):
        t = 10.0 + i * period + rng.uniform(0, 0.0013)  # JACK-like 1.3 ms quantisation
        if i == 190:
            t += 0.02  # one clock held up 20 ms by a busy machine
        line = est.add(i, t)
    a, b = line
    assert 60 / (24 * b) == pytest.approx(137.0, abs=0.2)
    assert abs((a + b * 199) - (10.0 + 199 * period + 0.00065)) < 0.001


def _feed_clocks(f: ClockFollower, t0: float, period: float, n: int) -> float:
    for k in range(n):
        f.handle(t0 + k * period, [CLOCK])
    return t0 + n * period


def test_follower_start_position_continue_stop_from_messages():
    f = ClockFollower(_NoPort(), min_ticks=12)
    period = 60 / 120 / 24  # 120 BPM
    t = _feed_clocks(f, 5.0, period, 24)  # clock while the DAW is stopped: tempo, no transport
    assert not f.running and f.time_of(0) is None and f.bpm == pytest.approx(120)
    gen = f.generation

    f.handle(t - period / 2, [START])  # Start: the next clock is song position 0
    assert f.running and f.generation == gen + 1
    assert f.time_of(0) == pytest.approx(t)
    assert f.time_of(1) == pytest.approx(t + 0.5)
    t = _feed_clocks(f, t, period, 24 * 3)  # three beats
    assert f.ready
    assert f.beat_at(t) == pytest.approx(3.0)
    assert f.next_bar(t) == 4.0 and f.next_bar(t + 0.6) == 8.0

    f.handle(t, [STOP])
    assert not f.running and f.time_of(4) is None and f.generation == gen + 2
    f.handle(t + 1, [SONG_POSITION, 32 & 0x7F, 32 >> 7])  # sixteenth 32 = beat 8 (bar 3)
    f.handle(t + 1.01, [CONTINUE])
    t2 = t + 1.02
    _feed_clocks(f, t2, period, 24)
    assert f.running and f.time_of(8) == pytest.approx(t2)
    assert f.next_bar(t2 + 0.01) == 12.0


def test_follower_treats_a_long_silence_as_a_stop():
    f = ClockFollower(_NoPort(), lost_s=0.2)
    f.handle(0.0, [START])
    _feed_clocks(f, 0.0, 0.02, 50)
    assert f.running
    f.check_lost(0.98 + 0.1)
    assert f.running
    f.check_lost(0.98 + 0.3)
    assert not f.running and "stopped arriving" in f.status


class _NoPort:  # without start() the follower reads only the port's name; handle() is fed directly
    full_name = "Moodroll Clock In"


def test_follows_a_daw_clock_on_real_ports(jack_server):
    """Another program sends clock into our virtual "Moodroll Clock In" (Song Position 15 +
    Continue, 123 BPM): every clock arrives, the follower runs from the DAW's position with the
    tempo to 2 % (a loaded JACK dummy server delivers clocks in bursts; the follower's own
    precision is exact above and measured by ``moodroll bench``), and Stop stops it."""
    bpm, position = 123.0, 15
    clock_in = MidiInput(None, api="jack", name="Moodroll Clock In")
    follower = ClockFollower(clock_in).start()
    daw = None
    try:
        daw = DawClock("Moodroll Clock In", bpm).run(lead_ticks=24, position=position, ticks=24 * 4)
        assert _until(lambda: follower.ticks >= 24 + 24 * 3)
        assert follower.running and follower.ready
        assert follower.bpm == pytest.approx(bpm, rel=0.02)
        assert follower.beat_at(follower.time_of(position / 4)) == pytest.approx(position / 4)
        assert _until(lambda: follower.ticks == 24 + 24 * 4)  # every clock arrived
        assert _until(lambda: not follower.running)  # the DAW's Stop after its last clock
        assert follower.status == "DAW stopped"
    finally:
        if daw:
            daw.stop()
        follower.close()
        clock_in.close()


def _until(predicate, timeout=30.0):
    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:
        time.sleep(0.01)
    return predicate()
