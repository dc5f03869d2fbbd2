"""engine.live.performance: one key signature per take. The mood picks the mode on it while a take
plays (a new mood or lock keeps the signature); the next take draws its own; a seeded run repeats."""
import itertools
from dataclasses import replace

import engine.live.decoder as decoder
import engine.live.performance as performance
from engine.live.performance import Performance
from engine.model.controls import MusicalControls
from engine.model.sampling import SamplingOptions


class FakeGenerator:
    tokenizer = None

    def __init__(self, seed=None):
        self.sampling = SamplingOptions(seed=seed)

    def reset(self): pass
    def set_controls(self, controls): self.controls = controls
    def set_sampling(self, sampling): pass
    def set_condition(self, condition): pass


class FakeStream:
    follower, follow_model_tempo, bpm = None, True, None

    def __init__(self, *args, **kwargs):
        self.running, self.steered = False, []

    def start(self):
        self.running = True
        return self

    def steer(self, **kw):
        self.steered.append(kw)

    def stop(self):
        self.running = False


def test_a_take_keeps_its_signature_and_the_next_take_draws_its_own(monkeypatch):
    draws = itertools.count(3, 4)  # signatures 3, 7, 11, ...
    monkeypatch.setattr(performance, "draw_signature", lambda seed=None: next(draws) % 12)
    monkeypatch.setattr(decoder, "LiveStream", FakeStream)
    perf = Performance(FakeGenerator(), MusicalControls())
    perf.set_target((8.5, 5.0))
    shown = perf.effective()[0].key
    assert shown == "Eb major"  # what the app shows before Play is what plays
    stream = perf.start(output=None)
    assert perf.generator.controls.key == "Eb major"
    perf.set_user(replace(perf.user, bpm=100))  # a new lock while playing: a new planner, the same signature
    perf.set_target((1.5, 5.0))  # a sad mood: the relative minor, same accidentals
    assert perf.effective()[0].key == "C minor" and stream.steered[-1]["controls"].key == "C minor"
    perf.stop()
    assert perf.effective()[0].key == "E minor"
    perf.stop()  # stopping again, nothing played: the drawn key stays
    assert perf.effective()[0].key == "E minor"


def test_a_seeded_performance_plays_the_same_key_every_take(monkeypatch):
    monkeypatch.setattr(decoder, "LiveStream", FakeStream)
    perf = Performance(FakeGenerator(seed=11), MusicalControls())
    perf.set_target((8.5, 5.0))
    first = perf.effective()[0].key
    perf.start(output=None), perf.stop()
    assert perf.effective()[0].key == first


def test_a_key_the_user_locks_wins_and_stays_locked(monkeypatch):
    monkeypatch.setattr(decoder, "LiveStream", FakeStream)
    perf = Performance(FakeGenerator(), MusicalControls())
    perf.set_target((1.5, 5.0))
    perf.set_key("F# dorian")
    c = perf.effective()[0]
    assert c.key == "F# dorian" and c.key_lock and c.locked_scale.name == "dorian"
    perf.set_key(None)
    assert not perf.effective()[0].key_lock
