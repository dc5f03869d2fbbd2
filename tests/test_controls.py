"""engine.model.controls: key parsing, control validation, and that masks really mask.

The end-to-end proof (thousands of sampled tokens never break a control) runs on a
random-weight bundle in tests/test_runtime.py; here the masks are driven directly with random
logits, which is the hardest case: a random "model" tries every token.
"""
import numpy as np
import pytest

from engine.model.controls import MusicalControls
from engine.model.filters import allowed_pitches, build_masks
from engine.model.filters.locks import DensityMask, RemiGrammar, TempoLock
from engine.model.filters.state import BAR, PITCH, POSITION, VELOCITY, MusicState
from engine.music.theory import parse_key
from engine.model.sampling import Sampler, SamplingOptions
from engine.music.events import NOTE_ON, decode_events
from engine.music.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def tok():
    return Tokenizer()


@pytest.mark.parametrize("text,pcs,sig", [
    ("C minor", {0, 2, 3, 5, 7, 8, 10}, "Cm"),
    ("D dorian", {2, 4, 5, 7, 9, 11, 0}, "C"),
    ("F# major", {6, 8, 10, 11, 1, 3, 5}, "F#"),
    ("A harmonic minor", {9, 11, 0, 2, 4, 5, 8}, "Am"),
    ("Bbm", {10, 0, 1, 3, 5, 6, 8}, "Bbm"),
    ("e♭", {3, 5, 7, 8, 10, 0, 2}, "Eb"),
    ("g mixolydian", {7, 9, 11, 0, 2, 4, 5}, "C"),
    ("C# minor pentatonic", {1, 4, 6, 8, 11}, "C#m"),
    ("c chromatic", set(range(12)), None),
])
def test_parse_key(text, pcs, sig):
    s = parse_key(text)
    assert s.pitch_classes == frozenset(pcs) and s.key_signature == sig


@pytest.mark.parametrize("bad", ["H minor", "C minr", "", "Cx major", "minor"])
def test_bad_key_names_get_a_clear_message(bad):
    with pytest.raises(ValueError, match="unknown key .*e.g. 'C minor'"):
        MusicalControls(key=bad)


def test_control_validation(tok):
    for kw in ({"pitch_range": (80, 60)}, {"pitch_range": (0, 200)}, {"max_polyphony": 0},
               {"density": 0}, {"density": -1.0}, {"bpm": 0}, {"pitch_range": "low"}):
        with pytest.raises(ValueError):
            MusicalControls(**kw)
    with pytest.raises(ValueError, match="no C major pitch lies in the pitch range 61..61"):
        build_masks(tok, MusicalControls(key="C major", pitch_range=(61, 61)))
    with pytest.raises(ValueError, match="time signature 7/8 is not in the vocabulary"):
        build_masks(tok, MusicalControls(time_signature=(7, 8)))
    assert allowed_pitches(MusicalControls(key="C major", pitch_range=(60, 65))) == [60, 62, 64, 65]


def test_tempo_lock_picks_nearest_bin(tok):
    lock = TempoLock(tok, 97.0)
    bins = tok.groups.tempo
    assert abs(bins[lock.token] - 97.0) == min(abs(b - 97.0) for b in bins.values())


def test_density_window():
    class T:
        groups = type("G", (), {"pitch": {5: 60}})()
    assert (DensityMask(T, 2.5).window, DensityMask(T, 2.5).cap) == (1.0, 2)
    assert (DensityMask(T, 0.5).window, DensityMask(T, 0.5).cap) == (2.0, 1)


def drive(tok, controls, n, seed=0):
    """Sample about n tokens from random logits through all masks; returns the ids."""
    rng = np.random.default_rng(seed)
    masks = build_masks(tok, controls)
    state = MusicState(tok)
    sampler = Sampler(SamplingOptions(temperature=1.0, top_p=1.0, seed=seed))
    ids = []
    while len(ids) < n or state.last in (PITCH, VELOCITY):  # end on a complete note
        logits = rng.normal(size=tok.vocab_size).astype(np.float32) * 3
        logits[list(tok.groups.pitch)] += 2.0  # a model that loves notes: the masks must hold it back
        for m in masks:
            m.apply(logits, state)
        t = sampler.sample(logits)
        state.feed(t)
        ids.append(t)
    return ids


def test_masks_hold_under_random_logits(tok):
    c = MusicalControls(key="D dorian", pitch_range=(50, 70), max_polyphony=3, density=2.0, bpm=100,
                        time_signature=(3, 4))
    ids = drive(tok, c, 4000)
    g = tok.groups
    pitches = [g.pitch[i] for i in ids if i in g.pitch]
    assert len(pitches) > 200
    assert set(pitches) <= set(allowed_pitches(c))
    assert {g.tempo[i] for i in ids if i in g.tempo} == {g.tempo[TempoLock(tok, 100).token]}
    assert {g.time_signature[i] for i in ids if i in g.time_signature} == {(3, 4)}
    events = decode_events(tok, ids)
    ons = [e for e in events if e.kind == NOTE_ON]
    assert len(ons) == len(pitches)  # the grammar lets no note be dropped
    starts = np.array([e.beat for e in ons])
    ends = starts + np.array([e.value for e in ons])
    assert np.all(np.diff(starts) >= 0)  # time never runs backwards
    sounding = [int(np.sum((starts <= t) & (ends > t))) for t in starts]
    assert max(sounding) == 3  # reached, never exceeded
    per_beat = np.bincount(np.floor(starts).astype(int))
    assert per_beat.max() == 2
    ts = [e.value for e in events if e.kind == "time_signature"]
    assert ts[-1] == (3, 4)


def test_grammar_keeps_remi_well_formed(tok):
    ids = drive(tok, MusicalControls(), 3000, seed=5)
    g, kinds = tok.groups, MusicState(tok).kind_of
    k = [int(kinds[i]) for i in ids]
    assert ids[0] == g.bar
    for i, (a, b) in enumerate(zip(ids, ids[1:])):
        if a in g.pitch:
            assert b in g.velocity and ids[i + 2] in g.duration
    pos = None
    for i, kind in zip(ids, k):  # positions strictly increase inside a bar
        if kind == BAR:
            pos = None
        elif kind == POSITION:
            assert pos is None or g.position[i] > pos
            pos = g.position[i]
    assert not {g.pad, g.bos, g.eos} & set(ids)


def test_stream_opens_with_a_note_on_the_downbeat(tok):
    for seed in range(5):
        ids = drive(tok, MusicalControls(key="A minor", bpm=120), 40, seed=seed)
        first = next(e for e in decode_events(tok, ids) if e.kind == NOTE_ON)
        assert first.beat == 0.0
