"""engine/music/events.py: the streaming decoder equals MidiTok's batch decode (Tokenizer.decode)
on real files and on garbled token sequences, emits events the moment they are determined,
handles REMI's odd orders like MidiTok, and never raises."""
import random

import numpy as np
import pytest

from engine.music.events import (BAR, NOTE_OFF, NOTE_ON, TEMPO, TIME_SIGNATURE, Event, StreamingDecoder,
                              decode_events)
from engine.music.tokenizer import DEFAULT_CONFIG, Tokenizer
from training.tokenizer_roundtrip import batch_summary, midi_files, stream_summary


@pytest.fixture(scope="module")
def tok():
    return Tokenizer()


def real_sequences(tok, data_dir, counts, seed):
    rng = random.Random(seed)
    for dataset, n in counts.items():
        for f in rng.sample(midi_files(data_dir, dataset), n):
            yield f, tok.encode(f)


def test_equals_batch_decode_on_real_files(tok, data_dir):
    n_notes = 0
    for f, ids in real_sequences(tok, data_dir, {"eimg": 30, "pop909": 5, "vgmidi": 10}, seed=7):
        b = batch_summary(tok, ids)
        assert stream_summary(tok, ids) == b, f
        n_notes += len(b[0])
        dec = StreamingDecoder(tok)
        for i in ids:
            dec.feed(i)
        assert dec.finish() == [] and dec.skipped == 0, f  # real sequences have no invalid token
    assert n_notes > 10000


def _garble(rng, ids, vocab, rate):
    out = []
    for i in ids:
        r = rng.random()
        if r < rate:  # delete
            continue
        if r < 2 * rate:  # replace
            out.append(rng.randrange(vocab))
            continue
        out.append(i)
        if r > 1 - rate:  # insert
            out.append(rng.randrange(vocab))
    return out


def _odd_grammar(rng, tok, n):
    """Mostly well-formed REMI with odd orders: notes without positions, positions going
    backwards or past the bar, metre changes mid-bar, several bars, broken note triples."""
    g = tok.groups
    pools = [list(g.time_signature), list(g.position), list(g.tempo), [g.pad, g.bos, g.eos]]
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.08:
            out.append(g.bar)
        elif r < 0.36:
            out.append(rng.choice(pools[int(r > 0.12) + int(r > 0.3) + int(r > 0.34)]))
        else:
            note = [rng.choice(list(g.pitch)), rng.choice(list(g.velocity)), rng.choice(list(g.duration))]
            out += note if rng.random() < 0.9 else note[: rng.randrange(3)]
    return out


def test_equals_batch_decode_on_garbled_sequences(tok, data_dir):
    rng = random.Random(2024)
    V, g = tok.vocab_size, tok.groups
    heads = [g.bar] + list(g.position) + list(g.tempo)
    cases = 0
    for f, ids in real_sequences(tok, data_dir, {"eimg": 25, "pop909": 3, "vgmidi": 7}, seed=11):
        ids = ids[: rng.randrange(50, 1500)]
        variants = {
            "random ids": [rng.randrange(V) for _ in range(rng.randrange(1, 400))],
            "shuffled": rng.sample(ids, len(ids)),
            "truncated": ids[: rng.randrange(len(ids) + 1)],
            "headless": ids[rng.randrange(len(ids)):],
            "garbled 2%": _garble(rng, ids, V, 0.02),
            "garbled 20%": _garble(rng, ids, V, 0.2),
            "odd orders": _odd_grammar(rng, tok, rng.randrange(1, 300)),
            "held lead": [rng.choice(heads) for _ in range(rng.randrange(1, 6))] + ids,
        }
        for name, seq in variants.items():
            assert stream_summary(tok, seq) == batch_summary(tok, seq), f"{name} of {f.name}: {tok.tokens(seq[:16])}"
            cases += 1
    assert cases == 35 * 8


# -- hand-written odd orders, each equal to MidiTok and with its exact events ----------------------
def ids_of(tok, tokens):
    return [tok.token_to_id(t if "_" in t else t + "_None") for t in tokens.split()]


NOTE = "Pitch_60 Velocity_63 Duration_1.0.8"


@pytest.mark.parametrize("tokens, notes, bars, skipped", [
    # a Position before any Bar opens bar 0 at beat 0
    (f"Position_8 {NOTE}", [(1.0, 60)], [(0.0, 0)], 0),
    # a Pitch without Position sounds at the bar start (MidiTok does the same)
    (f"Bar Bar {NOTE}", [(4.0, 60)], [(0.0, 0), (4.0, 1)], 0),
    # Position going backwards, and past the end of the bar
    (f"Bar Position_16 {NOTE} Position_0 {NOTE} Position_40 {NOTE}", [(2.0, 60), (0.0, 60), (5.0, 60)],
     [(0.0, 0)], 0),
    # broken triples: Pitch alone (1 skipped), Pitch+Velocity (2), then a stray Velocity and
    # Duration (1 each)
    (f"Bar Position_0 Pitch_62 Position_8 Pitch_64 Velocity_63 Velocity_63 Duration_1.0.8 {NOTE}",
     [(1.0, 60)], [(0.0, 0)], 5),
    # specials are transparent inside a note, as Tokenizer.decode strips them
    ("Bar Position_4 Pitch_60 BOS Velocity_63 PAD Duration_1.0.8 EOS", [(0.5, 60)], [(0.0, 0)], 0),
    # three bars in a row: each one bar after the previous, whatever the positions in between
    (f"Bar Position_30 Bar Bar Position_2 {NOTE}", [(8.25, 60)], [(0.0, 0), (4.0, 1), (8.0, 2)], 0),
])
def test_odd_orders(tok, tokens, notes, bars, skipped):
    ids = ids_of(tok, tokens)
    assert stream_summary(tok, ids) == batch_summary(tok, ids)
    dec = StreamingDecoder(tok)
    events = [e for i in ids for e in dec.feed(i)] + dec.finish()
    assert [(e.beat, e.pitch) for e in events if e.kind == NOTE_ON] == notes
    assert [(e.beat, e.value) for e in events if e.kind == BAR] == bars
    assert dec.skipped == skipped


def test_time_signature_mid_bar_and_x8_timing(tok):
    ids = ids_of(tok, f"Bar TimeSig_4/4 Position_8 TimeSig_6/8 Position_8 {NOTE} Bar Position_4 {NOTE}")
    assert stream_summary(tok, ids) == batch_summary(tok, ids)
    dec = StreamingDecoder(tok)
    events = [e for i in ids for e in dec.feed(i)]
    assert [(e.beat, e.value) for e in events if e.kind == TIME_SIGNATURE] == [(0.0, (4, 4)), (1.0, (6, 8))]
    # 6/8 mid-bar: the current bar becomes a 6/8 bar (3 quarters) from its start; positions and
    # durations count eighths, 8 positions per eighth.
    assert [(e.beat, e.value) for e in events if e.kind == BAR] == [(0.0, 0), (3.0, 1)]
    assert [(e.beat, e.value) for e in events if e.kind == NOTE_ON] == [(0.5, 0.5), (3.25, 0.5)]
    assert (dec.time_signature, dec.beats_per_bar, dec.current_bar, dec.bar_beat, dec.next_bar_beat) == (
        (6, 8), 3.0, 1, 3.0, 6.0)


def test_first_metre_is_looked_up_ahead_like_miditok(tok):
    # MidiTok takes the metre at beat 0 from the first TimeSig before any note token, so the
    # leading Bar/Position/Tempo tokens are held until it arrives, then released.
    dec = StreamingDecoder(tok)
    lead = ids_of(tok, "Position_0 Tempo_90.32 Bar Bar")
    assert [dec.feed(i) for i in lead] == [[], [], [], []]
    out = dec.feed(tok.token_to_id("TimeSig_3/4"))
    assert [(e.kind, e.beat, e.value) for e in out] == [
        (TIME_SIGNATURE, 0.0, (3, 4)), (BAR, 0.0, 0), (TEMPO, 0.0, 90.32), (BAR, 3.0, 1), (BAR, 6.0, 2)]
    # without any TimeSig before the first note: 4/4
    ids = ids_of(tok, f"Bar Bar {NOTE} TimeSig_3/4 Bar")
    assert stream_summary(tok, ids) == batch_summary(tok, ids)
    assert [(e.kind, e.beat) for e in decode_events(tok, ids) if e.kind in (BAR, TIME_SIGNATURE)] == [
        (BAR, 0.0), (TIME_SIGNATURE, 0.0), (BAR, 4.0), (TIME_SIGNATURE, 4.0), (BAR, 7.0)]
    # held tokens at the very end are released by finish()
    dec = StreamingDecoder(tok)
    assert dec.feed(tok.groups.bar) == []
    assert [(e.kind, e.beat) for e in dec.finish()] == [(TIME_SIGNATURE, 0.0), (BAR, 0.0)]


# -- timing of emission ------------------------------------------------------------------------
def test_events_are_emitted_the_moment_they_are_determined(tok, data_dir):
    f = midi_files(data_dir, "vgmidi")[3]
    ids = tok.encode(f)
    dec = StreamingDecoder(tok)
    names = tok.tokens(ids)
    seen_ts = False
    for k, (i, name) in enumerate(zip(ids, names)):
        out = dec.feed(i)
        kinds = [e.kind for e in out]
        if name.startswith("Duration"):  # completes Pitch, Velocity, Duration
            assert names[k - 2].startswith("Pitch") and kinds == [NOTE_ON, NOTE_OFF]
            on, off = out
            assert (on.pitch, on.velocity, off.pitch) == (int(names[k - 2][6:]), int(names[k - 1][9:]), on.pitch)
            assert off.beat == on.beat + on.value and off.value == on.beat and on.beat == dec.beat
        elif name == "Bar_None" and seen_ts:
            assert kinds == [BAR] and out[0].beat == dec.beat == dec.bar_beat
        elif name.startswith("Tempo"):
            assert kinds == [TEMPO] and out[0].value == float(name[6:])
        elif name.startswith(("Pitch", "Velocity", "Position")):
            assert out == []
        seen_ts = seen_ts or name.startswith("TimeSig")
    assert seen_ts


def test_decode_events_is_sorted_in_playing_order(tok):
    ids = ids_of(tok, "Bar TimeSig_4/4 Position_0 Tempo_120.81 Pitch_60 Velocity_63 Duration_2.0.8 "
                      "Pitch_64 Velocity_63 Duration_4.0.4 Position_16 Pitch_60 Velocity_95 Duration_2.0.8 Bar "
                      "Position_0 Pitch_67 Velocity_63 Duration_1.0.8")
    ev = decode_events(tok, ids)
    assert [(e.kind, e.beat, e.pitch) for e in ev] == [
        (BAR, 0.0, 0), (TIME_SIGNATURE, 0.0, 0), (TEMPO, 0.0, 0), (NOTE_ON, 0.0, 60), (NOTE_ON, 0.0, 64),
        (NOTE_OFF, 2.0, 60), (NOTE_ON, 2.0, 60), (BAR, 4.0, 0), (NOTE_OFF, 4.0, 64), (NOTE_OFF, 4.0, 60),
        (NOTE_ON, 4.0, 67), (NOTE_OFF, 5.0, 67)]
    assert ev[6] == Event(NOTE_ON, 2.0, 60, 95, 2.0)
    assert decode_events(tok, ids, start_beat=10.5) == [
        Event(e.kind, e.beat + 10.5, e.pitch, e.velocity, e.value + 10.5 if e.kind == NOTE_OFF else e.value)
        for e in ev]


# -- robustness and continuation ---------------------------------------------------------------
def test_never_raises_on_bad_ids(tok):
    dec = StreamingDecoder(tok)
    bad = [-1, tok.vocab_size, 10**12, None, "Pitch_60", 3.7, np.int64(5), float("nan"), 2**70]
    rng = random.Random(5)
    for _ in range(3000):
        x = rng.choice(bad) if rng.random() < 0.2 else rng.randrange(tok.vocab_size)
        assert all(isinstance(e, Event) for e in dec.feed(x))
    dec.finish()
    assert dec.skipped > 500
    # an id outside the vocabulary breaks a note like any foreign token
    dec.reset()
    out = [e for i in ids_of(tok, "Bar Position_0 Pitch_60") + [-1] + ids_of(tok, "Velocity_63 Duration_1.0.8")
           for e in dec.feed(i)]
    assert [e.kind for e in out] == [TIME_SIGNATURE, BAR] and dec.skipped == 4


def test_rebase_continues_seamlessly_at_the_next_bar(tok, data_dir):
    f = midi_files(data_dir, "eimg")[10]
    ids = tok.encode(f)
    bars = [k for k, i in enumerate(ids) if i == tok.groups.bar]
    cut = bars[len(bars) // 2]
    whole = StreamingDecoder(tok)
    expected = [e for i in ids for e in whole.feed(i)]
    dec = StreamingDecoder(tok)
    got = [e for i in ids[:cut] for e in dec.feed(i)]
    bar, next_bar = dec.current_bar, dec.next_bar_beat
    assert dec.rebase() == []  # e.g. the engine re-primed its context, which now starts with this Bar
    assert dec.current_bar == bar  # the next Bar is bar + 1
    got += [e for i in ids[cut:] for e in dec.feed(i)]
    assert got == expected
    assert [e for e in got if e.kind == BAR and e.beat == next_bar][0].value == bar + 1

    # a fresh decoder can start anywhere, with a known metre (no look-ahead needed)
    dec = StreamingDecoder(tok, start_beat=32.0, time_signature=(3, 4), start_bar=8)
    out = [e for i in ids_of(tok, f"Bar Position_8 {NOTE} Bar") for e in dec.feed(i)]
    assert [(e.kind, e.beat, e.value) for e in out if e.kind != NOTE_OFF] == [
        (TIME_SIGNATURE, 32.0, (3, 4)), (BAR, 32.0, 8), (NOTE_ON, 33.0, 1.0), (BAR, 35.0, 9)]
    dec.reset()
    assert (dec.beat, dec.current_bar, dec.time_signature, dec.skipped) == (0.0, -1, (4, 4), 0)

    # rebase before the first metre is known releases the held tokens first
    dec.feed(tok.groups.bar)
    assert [(e.kind, e.beat) for e in dec.rebase()] == [(TIME_SIGNATURE, 0.0), (BAR, 0.0)]
    assert [(e.kind, e.beat, e.value) for e in dec.feed(tok.groups.bar)] == [(BAR, 4.0, 1)]


@pytest.mark.parametrize("option, named", [("use_rests", "Rest"), ("use_bar_end_tokens", "Bar_End")])
def test_refuses_a_vocabulary_it_cannot_mirror(option, named):
    with pytest.raises(ValueError, match=named):
        StreamingDecoder(Tokenizer({**DEFAULT_CONFIG, option: True}))
