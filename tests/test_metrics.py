"""engine.music.metrics against MusPy itself, the paper's published numbers, and constructed music."""
import json
import math
import random
import subprocess
import sys

import mido
import muspy
import numpy as np
import pytest

from engine.music.metrics import REFERENCE, REFERENCE_FULL, analyze, analyze_file, estimate_key, groove_consistency, groove_consistency_bar, music_quality_loss, pitch_entropy, polyphony_rate, ticks_to_seconds
from engine.music.notes import make_notes, notes_from_score, notes_from_tokens, read_midi_notes
from training.paper_tables import AUTHOR_RESULTS, PAPER_ROWS


def write_midi(path, tracks, tpq=480, midi_type=1):
    """tracks: lists of (absolute tick, mido.Message) -> a MIDI file at path."""
    mf = mido.MidiFile(type=midi_type, ticks_per_beat=tpq)
    for events in tracks:
        tr = mido.MidiTrack()
        now = 0
        for t, msg in sorted(events, key=lambda e: e[0]):
            tr.append(msg.copy(time=t - now))
            now = t
        mf.tracks.append(tr)
    mf.save(str(path))
    return path


def on(t, p, v=80, ch=0):
    return (t, mido.Message("note_on", note=p, velocity=v, channel=ch))


def off(t, p, ch=0, zero_velocity=False):
    if zero_velocity:
        return (t, mido.Message("note_on", note=p, velocity=0, channel=ch))
    return (t, mido.Message("note_off", note=p, velocity=0, channel=ch))


def muspy_values(music):
    return (muspy.pitch_entropy(music), muspy.polyphony_rate(music, threshold=2),
            muspy.groove_consistency(music, measure_resolution=4),
            muspy.polyphony_rate(music, threshold=0),
            muspy.groove_consistency(music, measure_resolution=4 * music.resolution))


def our_values(notes):
    return (pitch_entropy(notes), polyphony_rate(notes, 2), groove_consistency(notes, 4),
            polyphony_rate(notes, 0), groove_consistency(notes, 4 * notes.resolution))


def diff(a, b):
    if math.isnan(a) or math.isnan(b):
        return 0.0 if (math.isnan(a) and math.isnan(b)) else math.inf
    return abs(a - b)


# -- MusPy agreement on real files ------------------------------------------------------------
def test_matches_muspy_on_real_files(data_dir):
    """PE, PR (threshold 2 and 0), GC (4 ticks and one 4/4 bar) equal MusPy's on 250 files."""
    rng = random.Random(20241029)
    picks = []
    for folder, n in (("eimg", 200), ("pop909", 30), ("vgmidi", 20)):
        files = sorted((data_dir / folder).rglob("*.mid"))
        assert len(files) >= n, f"{folder}: only {len(files)} MIDI files"
        picks += rng.sample(files, n)
    worst = np.zeros(5)
    for f in picks:
        ref = muspy_values(muspy.read_midi(f))
        ours = our_values(read_midi_notes(f))
        d = [diff(a, b) for a, b in zip(ours, ref)]
        assert max(d) <= 1e-9, f"{f}: ours {ours} != MusPy {ref}"
        worst = np.maximum(worst, d)
    print("max abs diff (PE, PR2, GC4, PR0, GCbar) over", len(picks), "files:", worst)


def test_matches_muspy_on_tricky_midi(tmp_path):
    """Velocity-0 note-offs, overlapping same-pitch notes (FIFO), stray note-offs, notes left
    open at end of track, drums, a control change after the last note, zero-length notes."""
    piano = [
        on(0, 60), off(480, 60, zero_velocity=True),
        on(0, 64), on(240, 64, 90), off(600, 64), off(700, 64),  # overlap: FIFO closes 0 first
        off(100, 67),  # note-off with no note-on: ignored
        on(960, 72), off(960, 72),  # zero-length note
        on(1000, 48), on(1000, 52), on(1000, 55), off(1500, 48), off(1500, 52), off(1500, 55),
        on(1800, 70),  # never closed: ends at the end of the track
        (2000, mido.MetaMessage("time_signature", numerator=3, denominator=4)),
        (2100, mido.MetaMessage("set_tempo", tempo=400000)),
        (2400, mido.MetaMessage("end_of_track")),
    ]
    drums = [on(0, 36, ch=9), off(10, 36, ch=9), on(480, 38, ch=9), off(490, 38, ch=9),
             on(480, 42, ch=9), off(485, 42, ch=9)]
    pedal = [on(30, 40, ch=1), off(90, 40, ch=1),
             (3000, mido.Message("control_change", control=64, value=0, channel=1))]
    path = write_midi(tmp_path / "tricky.mid", [piano, drums, pedal], tpq=96)
    ref = muspy_values(muspy.read_midi(path))
    notes = read_midi_notes(path)
    assert notes.length == 3000  # the pedal release extends the piece, as in MusPy
    assert [diff(a, b) for a, b in zip(our_values(notes), ref)] == [0.0] * 5

    # Type-0 file with everything on one track.
    path0 = write_midi(tmp_path / "type0.mid", [piano + drums], tpq=96, midi_type=0)
    ref0 = muspy_values(muspy.read_midi(path0))
    assert [diff(a, b) for a, b in zip(our_values(read_midi_notes(path0)), ref0)] == [0.0] * 5


def test_matches_muspy_on_random_notes():
    """Random notes (overlaps, unisons, zero lengths, drums) through MusPy's own Music."""
    rng = np.random.default_rng(7)
    for case in range(150):
        n = int(rng.integers(1, 40))
        start = rng.integers(0, 200, n)
        end = start + rng.integers(0, 60, n) * (rng.random(n) > 0.1)
        pitch = rng.integers(55, 67, n)  # narrow range: many unisons
        drum = rng.random(n) < 0.15
        length = int(end.max()) + int(rng.integers(0, 3)) * 7
        notes = make_notes(start, end, pitch, None, drum, resolution=int(rng.choice([4, 24, 480])),
                           length=length)
        tracks = []
        for is_drum in (False, True):
            sel = np.flatnonzero(drum == is_drum)
            if len(sel):
                tracks.append(muspy.Track(is_drum=is_drum, notes=[
                    muspy.Note(time=int(start[i]), pitch=int(pitch[i]), duration=int(end[i] - start[i]),
                               velocity=64) for i in sel]))
        if length > end.max():  # MusPy's end extended by an annotation (a control change)
            tracks[0].annotations.append(muspy.Annotation(time=length, annotation="cc"))
        music = muspy.Music(resolution=notes.resolution, tracks=tracks)
        assert [diff(a, b) for a, b in zip(our_values(notes), muspy_values(music))] == [0.0] * 5, case


def test_engine_metrics_does_not_import_muspy_or_torch():
    code = ("import sys, engine.music.metrics, engine.music.notes\n"
            "bad = [m for m in ('muspy', 'torch') if m in sys.modules]\n"
            "print(bad); sys.exit(1 if bad else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# -- the paper's Music_Quality_Loss -----------------------------------------------------------
def test_quality_loss_reproduces_every_author_result():
    """Every row of the authors' Results_music_Quality.txt from its three metric values."""
    for row in AUTHOR_RESULTS:
        got = music_quality_loss(row.polyphony_rate, row.pitch_entropy, row.groove_consistency,
                                 REFERENCE_FULL)
        # LSTM_enc2's printed loss is 9.2e-6 below its printed metrics' sum; all others exact.
        tol = 1e-5 if row.model == "LSTM_enc2" else 1e-12
        assert abs(got - row.music_quality_loss) <= tol, row


def test_quality_loss_reproduces_paper_rows():
    """Table rows have 4 decimals: rounding the inputs moves the loss by at most
    0.5e-4 * sum(1/ref) ~ 1.6e-4, plus 0.5e-4 for the printed loss."""
    bound = 0.5e-4 * sum(1 / r for r in REFERENCE) + 0.5e-4
    assert PAPER_ROWS
    for row in PAPER_ROWS:
        got = music_quality_loss(row.polyphony_rate, row.pitch_entropy, row.groove_consistency)
        assert abs(got - row.music_quality_loss) <= bound, row
    assert round(music_quality_loss(0.0317, 0.1204, 0.9978), 3) == 1.916
    assert music_quality_loss(*REFERENCE) == 0.0
    assert REFERENCE == tuple(round(r, 4) for r in REFERENCE_FULL)


# -- groove over real bars --------------------------------------------------------------------
def test_groove_bar_equals_muspy_formula_for_one_metre():
    """With 1 tick = one 16th and a constant 4/4, the bar version is MusPy's with 16 steps."""
    rng = np.random.default_rng(3)
    for _ in range(50):
        start = np.sort(rng.integers(0, 160, 30))
        start = np.append(start, 160 + rng.integers(0, 15))  # the last onset, in bar 10
        # MusPy counts length // 16 + 1 measures: keep the last note-off inside bar 10.
        end = np.minimum(start + 1, (start // 16 + 1) * 16 - 1)
        notes = make_notes(start, end, np.full(len(start), 60), resolution=4)
        assert groove_consistency_bar(notes) == pytest.approx(groove_consistency(notes, 16), abs=1e-15)


def test_groove_bar_follows_time_signature():
    pattern = [0, 6, 8]  # dotted quarter, eighth, half per 3/4 bar; 16ths at resolution 4
    start = np.array([b * 12 + p for b in range(8) for p in pattern])
    end = start + 2
    in_three = make_notes(start, end, np.full(len(start), 60), resolution=4,
                          time_signatures=[(0, 3, 4)])
    in_four = make_notes(start, end, np.full(len(start), 60), resolution=4)
    assert groove_consistency_bar(in_three) == 1.0
    assert groove_consistency_bar(in_four) < 0.9
    # MusPy's 4-tick "measures" cannot tell them apart.
    assert groove_consistency(in_three, 4) == groove_consistency(in_four, 4)
    # A quantised pattern at resolution 480 with slightly late onsets still counts as steady.
    humanised = make_notes(start * 120 + 7, end * 120, np.full(len(start), 60), resolution=480,
                           time_signatures=[(0, 3, 4)])
    assert groove_consistency_bar(humanised) == 1.0
    # A change of metre starts a new bar: 2 bars of 3/4, then 4/4 bars with the same beats.
    start2 = np.array([0, 4, 8, 12, 16, 20] + [24 + b * 16 + p for b in range(3) for p in (0, 4, 8, 12)])
    mixed = make_notes(start2, start2 + 1, np.full(len(start2), 60), resolution=4,
                       time_signatures=[(0, 3, 4), (24, 4, 4)])
    # 5 bars (12, 12, 16, 16, 16 steps). Neighbours: 3/4|3/4 same; 3/4|4/4 differ at step 12
    # only; 4/4 bars same. Normaliser max(12,12) + max(12,16) + 16 + 16 = 60.
    assert groove_consistency_bar(mixed) == pytest.approx(1 - 1 / 60, abs=1e-15)


# -- key estimate -----------------------------------------------------------------------------
def chord_progression(tonic, minor, beats=480):
    """I-IV-V-I (major) or i-iv-V-i (minor, harmonic V) as block chords with a bass note."""
    third = 3 if minor else 4
    chords = [(0, third, 7), (5, 5 + (3 if minor else 4), 12), (7, 11, 14), (0, third, 7)]
    start, end, pitch = [], [], []
    for i, chord in enumerate(chords):
        for iv in chord:
            start.append(i * beats)
            end.append((i + 1) * beats)
            pitch.append(60 + tonic + iv)
        start.append(i * beats)
        end.append((i + 1) * beats)
        pitch.append(48 + tonic + chord[0])
    return make_notes(start, end, pitch)


def scale(tonic, steps, beats=480):
    pitches = [60 + tonic + s for s in steps]
    dur = [2 if k in (0, len(pitches) - 1) else 1 for k in range(len(pitches))]  # tonic held longer
    t = np.concatenate([[0], np.cumsum(dur)[:-1]]) * beats
    return make_notes(t, t + np.array(dur) * beats, pitches)


def test_key_of_scales_and_progressions():
    assert estimate_key(scale(0, [0, 2, 4, 5, 7, 9, 11, 12])).name == "C major"
    assert estimate_key(scale(9, [0, 2, 3, 5, 7, 8, 11, 12])).name == "A minor"  # harmonic minor
    assert estimate_key(chord_progression(6, False)).name == "F# major"
    assert estimate_key(chord_progression(9, True)).name == "A minor"
    for tonic in range(12):
        for minor in (False, True):
            k = estimate_key(chord_progression(tonic, minor))
            assert (k.tonic, k.mode) == (tonic, "minor" if minor else "major")
            assert k.r > 0.7 and k.clarity > 0 and k.mode_clarity >= k.clarity


def test_key_undefined_and_weighting():
    assert estimate_key(make_notes([], [], [])) is None
    chromatic = make_notes(np.arange(12) * 10, np.arange(12) * 10 + 10, 60 + np.arange(12))
    assert estimate_key(chromatic) is None  # flat profile: no key
    # Duration weighting: a long G major triad outweighs several short C major notes.
    notes = make_notes([0, 0, 0, 100, 110, 120, 130, 140], [960] * 3 + [105, 115, 125, 135, 145],
                       [67, 71, 74, 60, 64, 65, 60, 64])
    assert estimate_key(notes).name == "G major"


# -- description, conversions, JSON -----------------------------------------------------------
def test_density_and_tempo_map():
    # 480 ticks per quarter; 120 BPM for 2 beats, then 60 BPM.
    notes = make_notes([0, 480, 960, 1440], [480, 960, 1440, 1920], [60, 62, 64, 65],
                       [40, 60, 80, 100], tempos=[(0, 120.0), (960, 60.0)])
    np.testing.assert_allclose(ticks_to_seconds(notes, [0, 960, 1920]), [0.0, 1.0, 3.0])
    row = analyze(notes)
    assert row["duration_s"] == pytest.approx(3.0)
    assert row["note_density"] == pytest.approx(4 / 3)  # notes per second
    assert row["notes_per_beat"] == pytest.approx(1.0)  # notes per quarter note
    assert row["mean_velocity"] == 70.0 and row["pitch_range"] == 5
    assert row["tempo_bpm"] == 120.0 and row["time_signature"] == "4/4"


def test_empty_and_json_safe(tmp_path):
    """A file with no notes gives null (not NaN) metrics and valid strict JSON."""
    path = write_midi(tmp_path / "empty.mid", [[(0, mido.MetaMessage("set_tempo", tempo=500000))]])
    row = analyze_file(path)
    assert "error" not in row
    assert row["pitch_entropy"] is None and row["polyphony_rate"] is None
    assert row["music_quality_loss"] is None and row["key"] is None and row["n_notes"] == 0
    json.loads(json.dumps(row), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


def test_analyze_file_keys_and_errors(tmp_path):
    path = write_midi(tmp_path / "c.mid", [[on(0, 60), off(480, 60), on(480, 64), off(960, 64),
                                            on(960, 67), off(1440, 67), on(1440, 72), off(1920, 72)]])
    row = analyze_file(path)
    for key in ("file", "pitch_entropy", "polyphony_rate", "groove_consistency",
                "groove_consistency_bar", "music_quality_loss", "note_density", "key"):
        assert key in row, key
    assert row["pitch_entropy"] == 2.0 and row["polyphony_rate"] == 0.0 and row["key"] == "C major"
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd this is not a MIDI file")
    err = analyze_file(bad)
    assert set(err) == {"file", "error"} and str(bad) in err["error"]
    assert "error" in analyze_file(tmp_path / "missing.mid")


def test_score_and_token_notes(tmp_path):
    """A symusic Score (ticks or quarters) and decoded tokens give the same Notes/metrics."""
    from symusic import Score

    from engine.music.tokenizer import Tokenizer

    events = []
    for i, (p, d) in enumerate([(60, 240), (64, 240), (67, 480), (72, 960)] * 4):
        events += [on(i * 480, p, 64 + i), off(i * 480 + d, p), on(i * 480, p - 24), off(i * 480 + 480, p - 24)]
    path = write_midi(tmp_path / "s.mid", [events])
    a = read_midi_notes(path)
    for score in (Score(str(path)), Score(str(path)).to("quarter")):
        b = notes_from_score(score)
        assert sorted(zip(a.start, a.end, a.pitch, a.velocity)) == sorted(zip(b.start, b.end, b.pitch, b.velocity))
        assert analyze(a) == analyze(b)
    tok = Tokenizer()
    c = notes_from_tokens(tok.encode(path), tok)
    assert len(c) == len(a) and sorted(c.pitch.tolist()) == sorted(a.pitch.tolist())
    assert pitch_entropy(c) == pitch_entropy(a)
    assert analyze(c)["key"] == analyze(a)["key"] == "C major"
