"""``moodroll generate`` / ``moodroll bench`` on a random-weight bundle: files have tempo, key
signature and the VA text; bad input gives one line on stderr, a non-zero exit, and no file."""
import json

import cv2
import mido
import numpy as np
import pytest

from engine.cli import main
from engine.model.controls import MusicalControls
from engine.model.filters import allowed_pitches
from engine.paths import DEFAULT_BUNDLE


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    d = tmp_path_factory.mktemp("pics")
    cv2.imwrite(str(d / "red.png"), np.full((60, 90, 3), (0, 0, 255), np.uint8))
    cv2.imwrite(str(d / "sky.jpg"), np.full((40, 40, 3), (255, 160, 60), np.uint8))
    (d / "broken.png").write_bytes(b"\x89PNG but not really")
    return d


def metas(path):
    m = mido.MidiFile(path)
    return m, [msg for tr in m.tracks for msg in tr if msg.is_meta]


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_generate_one_picture(random_bundle, pictures, tmp_path, capsys):
    out = tmp_path / "song.mid"
    rc, stdout, err = run(capsys, "generate", pictures / "red.png", "-o", out, "--bundle", random_bundle,
                          "--bars", 4, "--bpm", 92, "--key", "D dorian", "--seed", 5, "--valence", 7.5)
    assert rc == 2 and "both --valence and --arousal" in err and not out.exists()
    rc, stdout, err = run(capsys, "generate", pictures / "red.png", "-o", out, "--bundle", random_bundle,
                          "--bars", 4, "--bpm", 92, "--key", "D dorian", "--seed", 5)
    assert rc == 0, err
    midi, meta = metas(out)
    tempos = [mido.tempo2bpm(m.tempo) for m in meta if m.type == "set_tempo"]
    assert tempos and abs(tempos[0] - 92) < 0.01
    assert [m.key for m in meta if m.type == "key_signature"] == ["C"]  # D dorian shares C major's signature
    text = " ".join(m.text for m in meta if m.type == "text")
    assert "valence=" in text and "arousal=" in text and "source=red.png" in text
    pitches = {msg.note for tr in midi.tracks for msg in tr if msg.type == "note_on" and msg.velocity > 0}
    assert pitches and pitches <= set(allowed_pitches(MusicalControls(key="D dorian")))
    assert [p.name for p in tmp_path.iterdir()] == ["song.mid"]  # no temporary file left behind
    # same seed, same music
    again = tmp_path / "again.mid"
    assert run(capsys, "generate", pictures / "red.png", "-o", again, "--bundle", random_bundle,
               "--bars", 4, "--bpm", 92, "--key", "D dorian", "--seed", 5)[0] == 0
    note_msgs = lambda p: [m for tr in mido.MidiFile(p).tracks for m in tr if m.type in ("note_on", "note_off")]  # noqa
    assert note_msgs(out) == note_msgs(again)


def test_generate_several_and_va_only(random_bundle, pictures, tmp_path, capsys):
    folder = tmp_path / "out"
    rc, stdout, err = run(capsys, "generate", pictures / "red.png", pictures / "sky.jpg", "-o", folder,
                          "--bundle", random_bundle, "--bars", 2, "--valence", 2, "--arousal", 8)
    assert rc == 0, err
    assert sorted(p.name for p in folder.iterdir()) == ["red.mid", "sky.mid"]
    _, meta = metas(folder / "sky.mid")
    text = " ".join(m.text for m in meta if m.type == "text")
    assert "valence=2.00 arousal=8.00" in text
    assert any(m.type == "key_signature" for m in meta)  # estimated from the notes
    rc, stdout, err = run(capsys, "generate", "-o", tmp_path / "calm", "--valence", 7, "--arousal", 2,
                          "--bundle", random_bundle, "--bars", 2)
    assert rc == 0, err
    _, meta = metas(tmp_path / "calm.mid")
    assert "source=none" in " ".join(m.text for m in meta if m.type == "text")


@pytest.mark.parametrize("case", ["broken image", "missing image", "bad key", "corrupt bundle", "no input",
                                  "bad va"])
def test_bad_input_one_line_nothing_written(case, random_bundle, pictures, tmp_path, capsys):
    import shutil

    bundle = random_bundle
    args = [pictures / "red.png"]
    extra = []
    if case == "broken image":
        args = [pictures / "red.png", pictures / "broken.png"]  # the good one must not be written either
    elif case == "missing image":
        args = [pictures / "nope.jpg"]
    elif case == "bad key":
        extra = ["--key", "H minor"]
    elif case == "corrupt bundle":
        bundle = tmp_path / "bundle"
        shutil.copytree(random_bundle, bundle)
        p = bundle / "condition.onnx"
        p.write_bytes(p.read_bytes()[:-10])
    elif case == "no input":
        args = []
    elif case == "bad va":
        extra = ["--valence", "12", "--arousal", "3"]
    out = tmp_path / "out"
    out.mkdir()
    rc, stdout, err = run(capsys, "generate", *args, "-o", out, "--bundle", bundle, "--bars", 2, *extra)
    assert rc != 0
    assert err.startswith("moodroll: ") and err.count("\n") == 1, err
    assert list(out.iterdir()) == []
    word = {"broken image": "broken.png", "missing image": "nope.jpg", "bad key": "H minor",
            "corrupt bundle": "condition.onnx", "no input": "picture", "bad va": "valence"}[case]
    assert word in err


def test_bench_json_smoke(random_bundle, tmp_path, capsys):
    """The bench runs and writes its JSON (numbers are not asserted: tests never time things)."""
    out = tmp_path / "bench.json"
    rc, stdout, err = run(capsys, "bench", "--bundle", random_bundle, "--quick", "--skip", "torch", "realtime",
                          "--threads", 1, "--json", "--out", out)
    assert rc == 0, err
    result = json.loads(out.read_text())
    assert json.loads(stdout) == result
    assert set(result["tokens_per_s"]["ort_kv"]) == {"256", "1024"}
    for key in ("device", "decode_flops_fraction_of_peak", "generator_tokens_per_s"):
        assert key in result


def test_shipped_bundle_generates(tmp_path, capsys):
    if not (DEFAULT_BUNDLE / "manifest.json").is_file():
        pytest.skip("no shipped bundle in assets/models/default yet")
    rc, stdout, err = run(capsys, "generate", "-o", tmp_path / "x.mid", "--valence", 6, "--arousal", 6,
                          "--bars", 2, "--seed", 0)
    assert rc == 0, err
    assert len(mido.MidiFile(tmp_path / "x.mid").tracks) >= 1


@pytest.mark.parametrize("metre", ["3/4", "6/8"])
def test_time_signature_lock_puts_every_bar_in_the_chosen_metre(metre, random_bundle, tmp_path, capsys):
    """The metre is locked (default 4/4) so a file drops onto a DAW's bar grid."""
    import symusic

    out = tmp_path / "m.mid"
    rc, _, err = run(capsys, "generate", "-o", out, "--bundle", random_bundle, "--bars", 4, "--seed", 2,
                     "--valence", 5, "--arousal", 5, "--time-signature", metre)
    assert rc == 0, err
    num, den = (int(x) for x in metre.split("/"))
    sigs = symusic.Score(str(out)).time_signatures
    assert len(sigs) >= 1 and all((s.numerator, s.denominator) == (num, den) for s in sigs)
    rc, _, err = run(capsys, "generate", "-o", tmp_path / "bad.mid", "--bundle", random_bundle,
                     "--valence", 5, "--arousal", 5, "--time-signature", "4-4")
    assert rc == 2 and "time signature" in err and not (tmp_path / "bad.mid").exists()


def _held_twice(path) -> list:
    """(pitch, tick) where a key starts again while a note of that pitch still sounds."""
    held, bad, tick = {}, [], 0
    for msg in mido.merge_tracks(mido.MidiFile(path).tracks):
        tick += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            if held.get(msg.note, 0) > 0:
                bad.append((msg.note, tick))
            held[msg.note] = held.get(msg.note, 0) + 1
        elif msg.type in ("note_off", "note_on"):
            held[msg.note] = max(0, held.get(msg.note, 0) - 1)
    return bad


def test_written_files_never_hold_one_key_twice(random_bundle, tmp_path, capsys):
    """Long (legato) notes of one pitch used to overlap: readers then paired the note-offs
    differently (a take's note was 1.125 beats to pretty_midi, 2 to the Live bridge)."""
    for seed in range(4):
        out = tmp_path / f"s{seed}.mid"
        rc, _, err = run(capsys, "generate", "-o", out, "--valence", 7, "--arousal", 3, "--bars", 8,
                         "--seed", seed, "--bundle", random_bundle, "--bpm", 100)
        assert rc == 0, err
        assert _held_twice(out) == []


def test_release_before_repeat_ends_the_held_note_where_its_key_starts_again():
    import symusic

    from engine.music.tokenizer import release_before_repeat

    score = symusic.Score(480)
    track = symusic.Track()
    for t, d, p in [(0, 960, 60), (480, 480, 60), (0, 960, 64), (960, 240, 64)]:
        track.notes.append(symusic.Note(t, d, p, 80))
    score.tracks.append(track)
    track = release_before_repeat(score).tracks[0]
    assert sorted((n.pitch, n.time, n.duration) for n in track.notes) == [
        (60, 0, 480), (60, 480, 480), (64, 0, 960), (64, 960, 240)]  # touching notes stay as they are
