"""The vocabulary (engine/music/tokenizer.py): MIDI -> tokens -> MIDI keeps every note within the
tokenizer's quantisation, on real files; tempo and metre survive; tokenizer.json round trip;
bad files fail with one clear error; tracks are merged into one piano, drums dropped.

The per-note rules ("within quantisation", which notes may be lost) are defined and checked in
training/tokenizer_roundtrip.py, which also measures exactness over whole data sets.
"""
import json
import random

import pytest
from symusic import Note, Score, Tempo, TimeSignature, Track

from engine.paths import EXAMPLES
from engine.music.tokenizer import DEFAULT_CONFIG, MidiReadError, Tokenizer, load_score, merge_to_piano
from training.tokenizer_roundtrip import RoundTrip, check_round_trip, compare, midi_files


@pytest.fixture(scope="module")
def tok():
    return Tokenizer()


def _piano(notes, tpq=480, tempos=((0, 120.0),), time_signatures=((0, 4, 4),)) -> Score:
    s = Score(tpq)
    s.tempos = [Tempo(t, q) for t, q in tempos]
    s.time_signatures = [TimeSignature(t, n, d) for t, n, d in time_signatures]
    tr = Track(name="Piano", program=0)
    tr.notes = [Note(*n) for n in notes]  # (time, duration, pitch, velocity) in ticks
    s.tracks.append(tr)
    return s


def _note_tuples(score: Score):
    """(onset, duration, pitch, velocity), times in quarter notes."""
    q = score.ticks_per_quarter
    return sorted((n.time / q, n.duration / q, n.pitch, n.velocity) for t in score.tracks for n in t.notes)


# -- vocabulary ------------------------------------------------------------------------------
def test_vocabulary_layout(tok):
    g = tok.groups
    assert tok.vocab_size == 342
    assert (g.pad, g.bos, g.eos, g.bar) == (0, 1, 2, 3)
    assert sorted(g.pitch.values()) == list(range(21, 109))
    assert len(g.velocity) == 16 and len(g.duration) == 64 and len(g.tempo) == 64
    assert len(g.position) == 8 * 12  # 8 per beat, up to 12 beats (12/8)
    assert sorted(g.time_signature.values()) == sorted(
        [(n, 4) for n in (1, 2, 3, 4, 5, 6)] + [(n, 8) for n in (3, 6, 9, 12)])
    assert min(g.duration.values()) == 1 / 8 and max(g.duration.values()) == 12
    # every id belongs to exactly one group; no drum-pitch tokens (drums are dropped)
    ids = [g.pad, g.bos, g.eos, g.bar]
    for group in (g.pitch, g.velocity, g.duration, g.position, g.tempo, g.time_signature):
        ids += list(group)
    assert sorted(ids) == list(range(tok.vocab_size))
    assert not [t for t in tok.remi.vocab if t.startswith("PitchDrum")]


def test_save_load_restores_identical_vocabulary(tok, tmp_path):
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    back = Tokenizer.load(path)
    assert back.remi.vocab == tok.remi.vocab and back.config == tok.config
    assert back.groups == tok.groups
    example = EXAMPLES / "example.mid"
    assert back.encode(example) == tok.encode(example)

    data = json.loads(path.read_text())
    data["vocab"]["Pitch_60"], data["vocab"]["Pitch_61"] = data["vocab"]["Pitch_61"], data["vocab"]["Pitch_60"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="vocabulary does not match"):
        Tokenizer.load(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="tokenizer.json"):
        Tokenizer.load(path)


def test_older_tokenizer_json_keeps_its_own_vocabulary(tmp_path):
    # A bundle saved before drum-pitch tokens were switched off (MidiTok's default) must load
    # with the 404-token vocabulary it was trained on, not with today's default.
    legacy = {k: v for k, v in DEFAULT_CONFIG.items() if k != "use_pitchdrum_tokens"}
    old = Tokenizer(legacy)
    assert old.vocab_size == 404
    old.save(tmp_path / "tokenizer.json")
    back = Tokenizer.load(tmp_path / "tokenizer.json")
    assert back.remi.vocab == old.remi.vocab


# -- documented quantisation rules, exactly ----------------------------------------------------
def test_quantisation_rules_on_a_synthetic_file(tok):
    q = 480  # ticks per quarter; the position step in 4/4 is 60 ticks (1/8 quarter)
    score = _piano([
        (29, 480, 60, 80),      # onset 0.06 -> 0 (nearest step); velocity 80 -> 79
        (31, 480, 62, 1),       # onset 0.065 -> 0.125; velocity 1 -> 7 (lowest level)
        (30, 480, 67, 100),     # exactly half a step: rounds up to 0.125; velocity 100 -> 103
        (q, 480, 20, 100),      # pitch below the piano: dropped
        (q, 480, 109, 100),     # above: dropped
        (q, 480, 64, 100),      # duplicate pair: same pitch, same position ->
        (q + 20, 240, 64, 90),  #   one note, the shorter one (velocity 90 -> 87)
        (2 * q, 0, 65, 100),    # zero length -> the shortest duration, 1/8 quarter
        (3 * q, 20 * q, 70, 100),   # 20 quarters -> clipped to 12
        (4 * q, 5 * q + 100, 72, 100),  # 5.208 quarters -> nearest duration 5.25 (1/4 steps above 4)
        (5 * q, 3 * q + 25, 74, 100),   # 3.052 quarters -> 3.0 (1/8 steps below 4)
    ], tpq=q)
    dec = tok.decode(tok.encode(score))
    assert len(dec.tracks) == 1 and dec.tracks[0].program == 0
    assert _note_tuples(dec) == sorted([
        (0.0, 1.0, 60, 79), (0.125, 1.0, 62, 7), (0.125, 1.0, 67, 103),
        (1.0, 0.5, 64, 87), (2.0, 0.125, 65, 103), (3.0, 12.0, 70, 103),
        (4.0, 5.25, 72, 103), (5.0, 3.0, 74, 103),
    ])
    res = check_round_trip(tok, score, "synthetic")
    assert res.failures == []
    assert (res.notes, res.out_of_range, res.merged, res.kept, res.zero_length, res.clipped) == (11, 2, 1, 8, 1, 1)


def test_x8_metre_has_finer_positions(tok):
    # In x/8 a "beat" is an eighth: positions are 1/16 quarter apart, durations count eighths.
    q = 480
    score = _piano([(30, 30, 60, 100), (q + 90, 6 * q, 62, 100), (2 * q, 9 * q, 64, 100)], tpq=q,
                   time_signatures=((0, 6, 8),))
    dec = tok.decode(tok.encode(score))
    assert _note_tuples(dec) == [(0.0625, 0.0625, 60, 103), (1.1875, 6.0, 62, 103), (2.0, 6.0, 64, 103)]
    assert check_round_trip(tok, score).failures == []


def test_checker_catches_lost_moved_invented_and_wrong_notes(tok):
    # The per-note check must be able to fail: corrupt a correct decode in each way.
    score = _piano([(i * 240, 240, 60 + i % 12, 100) for i in range(24)])
    good = tok.decode(tok.encode(score))
    assert compare(tok, score, good).failures == []

    def corrupted(edit):
        bad = good.copy()
        notes = list(bad.tracks[0].notes)
        edit(notes)
        bad.tracks[0].notes = notes
        return compare(tok, score, bad).failures

    assert corrupted(lambda n: n.pop(5))  # lost
    assert corrupted(lambda n: n.append(Note(4, 4, 100, 103)))  # invented
    assert corrupted(lambda n: n.__setitem__(3, Note(n[3].time + 4, n[3].duration, n[3].pitch, n[3].velocity)))
    assert corrupted(lambda n: n.__setitem__(3, Note(n[3].time, n[3].duration + 2, n[3].pitch, n[3].velocity)))
    assert corrupted(lambda n: n.__setitem__(3, Note(n[3].time, n[3].duration, n[3].pitch, 31)))


# -- real files ------------------------------------------------------------------------------
SAMPLES = {"eimg": 40, "pop909": 10, "vgmidi": 15}


@pytest.mark.parametrize("dataset", sorted(SAMPLES))
def test_round_trip_keeps_every_note_of_real_files(tok, data_dir, dataset):
    files = midi_files(data_dir, dataset)
    assert files, f"no MIDI files in {data_dir / dataset}"
    total = RoundTrip()
    for f in sorted(random.Random(1234).sample(files, SAMPLES[dataset])):
        total.add(check_round_trip(tok, load_score(f), f"{dataset}/{f.name}"))
    assert total.failures == [], total.summary() + "\n" + "\n".join(total.failures[:10])
    assert total.kept + total.merged + total.out_of_range == total.notes
    assert total.kept > 0.95 * total.notes, total.summary()  # duplicates are rare
    assert total.tempo_checked > 0


def _clean_time_signatures(score: Score, tok) -> list | None:
    """The score's metre as (quarters, num, den) when REMI can keep it exactly: supported time
    signatures, each change on a bar line, no repeats. None otherwise."""
    q = score.ticks_per_quarter
    out, bar_start, bar_len, prev = [], 0, None, (0, None)
    for ts in score.time_signatures:
        key = (ts.numerator, ts.denominator)
        if out and ts.time / q == out[-1][0]:  # two at one tick: the last one counts
            out.pop()
            bar_start, bar_len = prev
        if key not in tok.remi.time_signatures or (out and key == out[-1][1:]):
            return None
        if bar_len is not None and (ts.time - bar_start) % bar_len:
            return None
        out.append((ts.time / q, *key))
        prev = bar_start, bar_len
        bar_start, bar_len = ts.time, q * 4 * ts.numerator // ts.denominator
    return out if out and out[0][0] == 0 else None


def test_tempo_and_time_signature_survive_on_real_files(tok, data_dir):
    clean = 0
    for dataset, n in SAMPLES.items():
        for f in random.Random(99).sample(midi_files(data_dir, dataset), n):
            score = load_score(f)
            expected = _clean_time_signatures(score, tok)
            if expected is None:
                continue
            clean += 1
            dec = tok.decode(tok.encode(score))
            got = [(t.time / dec.ticks_per_quarter, t.numerator, t.denominator) for t in dec.time_signatures]
            assert got == expected, f
    assert clean >= 40  # most real files have a clean metre


def test_tempo_and_time_signature_changes_survive(tok):
    q = 480
    # 4/4 for 2 bars, 3/4 for 2 bars, 6/8 for 2 bars, then 3/4 written mid-bar (at 21.5
    # quarters), which REMI moves to the next bar line (23); 7/8 is not in the vocabulary.
    score = _piano(
        [(i * q // 2, q // 2, 60 + i % 7, 100) for i in range(60)], tpq=q,
        tempos=((0, 90.0), (8 * q, 140.0), (14 * q, 60.0)),
        time_signatures=((0, 4, 4), (8 * q, 3, 4), (14 * q, 6, 8), (int(21.5 * q), 3, 4), (26 * q, 7, 8)))
    dec = tok.decode(tok.encode(score))
    assert [(t.time / dec.ticks_per_quarter, t.numerator, t.denominator) for t in dec.time_signatures] == [
        (0, 4, 4), (8, 3, 4), (14, 6, 8), (23, 3, 4)]
    tempos = [(t.time / dec.ticks_per_quarter, round(t.qpm, 2)) for t in dec.tempos]
    assert tempos == [(0, 90.32), (8, 139.73), (14, 60.11)]  # the nearest of the 64 tempo levels
    assert check_round_trip(tok, score).failures == []


# -- tracks ----------------------------------------------------------------------------------
def test_non_drum_tracks_merge_into_one_piano_and_drums_are_dropped(tok):
    s = Score(480)
    for program, is_drum, pitches in ((0, False, (60, 64)), (48, False, (67, 72)), (0, True, (36, 38, 42))):
        tr = Track(program=program, is_drum=is_drum)
        tr.notes = [Note(i * 480, 480, p, 100) for i, p in enumerate(pitches)]
        s.tracks.append(tr)
    s.tempos = [Tempo(0, 100.0)]
    piano = load_score(s.dumps_midi())
    assert len(piano.tracks) == 1
    assert (piano.tracks[0].program, piano.tracks[0].is_drum, piano.tracks[0].name) == (0, False, "Piano")
    assert sorted(n.pitch for n in piano.tracks[0].notes) == [60, 64, 67, 72]
    assert merge_to_piano(s).tracks[0].notes == piano.tracks[0].notes
    dec = tok.decode(tok.encode(s))
    assert [n.pitch for n in dec.tracks[0].notes] == [60, 67, 64, 72]
    assert (len(dec.tracks), dec.tracks[0].program, dec.tracks[0].is_drum) == (1, 0, False)


def test_real_multitrack_file_is_merged(data_dir):
    f = midi_files(data_dir, "pop909")[0]
    raw = Score(str(f))
    assert len(raw.tracks) == 3  # MELODY, BRIDGE, PIANO
    piano = load_score(f)
    assert len(piano.tracks) == 1 and len(piano.tracks[0].notes) == sum(len(t.notes) for t in raw.tracks)


# -- bad files -------------------------------------------------------------------------------
def test_corrupt_or_truncated_midi_raises_midi_read_error_naming_the_file(tok, data_dir, tmp_path):
    data = midi_files(data_dir, "pop909")[0].read_bytes()
    drums = Score(480)
    tr = Track(program=0, is_drum=True)
    tr.notes = [Note(0, 480, 36, 100)]
    drums.tracks.append(tr)
    cases = {
        "truncated.mid": data[: len(data) // 2],
        "one_byte_short.mid": data[:-1],
        "header_only.mid": data[:14],
        "garbage.mid": bytes(random.Random(0).randrange(256) for _ in range(300)),
        "empty.mid": b"",
        "drums_only.mid": drums.dumps_midi(),
    }
    for name, blob in cases.items():
        path = tmp_path / name
        path.write_bytes(blob)
        for read in (load_score, tok.encode):
            with pytest.raises(MidiReadError, match=name):
                read(path)
    with pytest.raises(MidiReadError, match="missing.mid"):
        load_score(tmp_path / "missing.mid")
    with pytest.raises(MidiReadError, match="<bytes>"):
        load_score(data[:100])
