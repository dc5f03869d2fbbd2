"""moodroll generate --slideshow / --video (engine.emotion.slideshow) on the random-weight bundle:
one file, a marker at each change exactly on a bar line, one fixed tempo that makes each picture
a whole number of bars, and one clear line for bad input."""
import cv2
import mido
import numpy as np
import pytest

from engine.cli import main
from engine.emotion.slideshow import add_markers, generate_slideshow, slideshow_bpm


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("show")
    rng = np.random.default_rng(0)
    for i, colour in enumerate([(30, 30, 200), (200, 220, 40), (20, 20, 20)]):
        img = np.clip(np.full((64, 96, 3), colour) + rng.normal(0, 20, (64, 96, 3)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{i:02d}.png"), img)
    (folder / "notes.txt").write_text("not a picture")
    return folder


def meta(path):
    out, t = [], 0
    for msg in mido.MidiFile(str(path)).tracks[0]:
        t += msg.time
        if msg.is_meta:
            out.append((t, msg))
    return out


def test_slideshow_bpm_makes_whole_bars():
    for seconds in (2.0, 3.0, 5.0, 7.5):
        for planned in (60.0, 100.0, 170.0):
            bpm = slideshow_bpm(planned, seconds)
            bars = seconds * bpm / 60 / 4
            assert 50 <= bpm <= 190 and abs(bars - round(bars)) < 1e-9


def test_slideshow_markers_at_bar_lines(random_bundle, pictures, tmp_path):
    r = generate_slideshow(tmp_path / "show.mid", folder=pictures, seconds=2.0, bundle=random_bundle, seed=1,
                           device="cpu")
    bars_per_picture = round(2.0 * r.bpm / 240)
    assert [b for b, _ in r.markers] == [0, bars_per_picture, 2 * bars_per_picture]
    events = meta(r.path)
    markers = [(t, m.text) for t, m in events if m.type == "marker"]
    assert [t for t, _ in markers] == [b * 4 * 480 for b, _ in r.markers]
    assert [text.split(" · ")[0] for _, text in markers] == ["00.png", "01.png", "02.png"]
    tempi = [m.tempo for _, m in events if m.type == "set_tempo"]
    assert len(tempi) == 1 and mido.tempo2bpm(tempi[0]) == pytest.approx(r.bpm, rel=1e-4)
    assert r.bars == 3 * bars_per_picture
    from engine.music.notes import read_midi_notes

    n = read_midi_notes(r.path)
    assert n.start.max() < r.bars * 4 * 480  # every note starts inside the piece's bars (3 x 2 s)


def test_video_follows_scenes(random_bundle, tmp_path):
    path = tmp_path / "v.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (96, 64))
    for k in range(60):
        w.write(np.full((64, 96, 3), (250, 250, 250) if k < 30 else (0, 0, 40), np.uint8))
    w.release()
    r = generate_slideshow(tmp_path / "v.mid", video=path, bundle=random_bundle, seed=2, device="cpu")
    assert r.markers[0][0] == 0 and len(r.markers) >= 1
    assert all(t % 1920 == 0 for t, m in meta(r.path) if m.type == "marker")


def test_add_markers_keeps_events():
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack([mido.Message("note_on", note=60, velocity=80, time=0),
                         mido.Message("note_off", note=60, velocity=0, time=3000)])
    mid.tracks.append(tr)
    import io
    buf = io.BytesIO()
    mid.save(file=buf)
    out = mido.MidiFile(file=io.BytesIO(add_markers(buf.getvalue(), [(1920, "b")])))
    abs_t, got = 0, []
    for m in out.tracks[0]:
        abs_t += m.time
        got.append((abs_t, m.type))
    assert got == [(0, "note_on"), (1920, "marker"), (3000, "note_off"), (3000, "end_of_track")]


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main(["generate", "--slideshow", str(tmp_path), "-o", str(tmp_path / "x.mid")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no pictures" in err
    assert main(["generate", "--video", str(tmp_path / "none.mp4"), "-o", str(tmp_path / "x.mid")]) == 2
    assert "no such file" in capsys.readouterr().err
