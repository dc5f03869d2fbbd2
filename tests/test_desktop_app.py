"""The desktop app (desktop/): the real window, offscreen, on real JACK ports (private dummy server).

Playing windows use the random test bundle (fast); the picture, webcam and error tests use the
shipped bundle, whose image encoder gives different pictures different VA. Every wait is on a
state (qtbot.waitUntil / Recorder.wait_for) with a generous timeout that only bounds a hang.
"""
import shutil
import sys

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PyQt6.QtGui import QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import QApplication

from tools.bench.realtime import Recorder
from engine.paths import EXAMPLES

pytest.importorskip("pytestqt")

LONG = 120_000  # ms: bounds a hang only


def make_window(qtbot, tmp_path, bundle, tag, port=None, **settings):
    from desktop.app import MainWindow

    st = QSettings(str(tmp_path / f"{tag}.ini"), QSettings.Format.IniFormat)
    if port:
        st.setValue("port", port)
    for k, v in settings.items():
        st.setValue(k, v)
    win = MainWindow(bundle=bundle, settings=st, midi_api="jack", port_name=f"Moodroll {tag}",
                     clock_name=f"Moodroll Clock {tag}", takes_dir=tmp_path / f"takes-{tag}", threads=1)
    qtbot.addWidget(win)
    win.show()
    return win


def wait_model(qtbot, win):
    qtbot.waitUntil(lambda: win.bridge.gen is not None or "could not be loaded" in win.statusLabel.text(),
                    timeout=LONG)
    assert win.bridge.gen is not None, win.statusLabel.text()
    qtbot.waitUntil(lambda: win.panels_ready, timeout=LONG)


def drop(widget, path):
    """What a file dragged from the desktop does: DragEnter (accepted), then Drop."""
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, md, Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, md, Qt.MouseButton.NoButton,
                    Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, ev)


@pytest.fixture(autouse=True, scope="module")
def _portaudio_closed_before_jack():
    """The preview synth's PortAudio joins the private JACK server as a client; release it
    while that server still runs (PortAudio aborts at exit when its JACK server is gone)."""
    yield
    sd = sys.modules.get("sounddevice")
    if sd is not None and getattr(sd, "_initialized", 0):
        try:
            sd._terminate()
        except sd.PortAudioError:
            pass


@pytest.fixture
def synth(jack_server, request):
    rec = Recorder(None, api="jack", name=f"Desk Synth {request.node.name[-18:]}")
    yield rec
    rec.close()


@pytest.fixture
def shipped(jack_server):
    from engine.model.bundle import load_bundle

    return load_bundle(None).path


def test_drop_a_picture_shows_its_va_on_the_pad(qtbot, tmp_path, shipped):
    from engine.picture.image import load_image

    win = make_window(qtbot, tmp_path, None, "drop")  # MainWindow's default: the shipped bundle
    assert win.bridge.bundle_path is None
    wait_model(qtbot, win)
    zone, pad = win.findChild(type(win.source.dropZone), "dropZone"), win.findChild(type(win.pad), "vaPad")
    assert pad.picture_va is None
    drop(zone, EXAMPLES / "storm.jpg")
    qtbot.waitUntil(lambda: pad.picture_va is not None, timeout=LONG)
    _, want = win.bridge.gen.analyze_image(load_image(EXAMPLES / "storm.jpg"))
    assert pad.picture_va == pytest.approx(want, abs=1e-4)
    assert f"valence {want[0]:.1f}" in win.source.caption.text()
    drop(zone, EXAMPLES / "sunrise.jpg")
    _, sun = win.bridge.gen.analyze_image(load_image(EXAMPLES / "sunrise.jpg"))
    qtbot.waitUntil(lambda: pad.picture_va == pytest.approx(sun, abs=1e-4), timeout=LONG)
    assert abs(sun[0] - want[0]) > 0.2  # two pictures, two moods: the pad really moved


def test_bad_picture_and_missing_camera_are_one_line_in_the_window(qtbot, tmp_path, shipped):
    win = make_window(qtbot, tmp_path, None, "errors")
    wait_model(qtbot, win)
    bad = tmp_path / "holiday.jpg"
    bad.write_bytes(b"this is not a picture")
    win.open_image(bad)
    qtbot.waitUntil(lambda: "cannot read image" in win.statusLabel.text(), timeout=LONG)
    assert "not a decodable picture" in win.statusLabel.text() and "\n" not in win.statusLabel.text()
    win.source.set_camera(57, start=True)
    qtbot.waitUntil(lambda: "cannot open camera 57" in win.statusLabel.text(), timeout=LONG)
    assert not win.source.webcamButton.isChecked()


def test_corrupt_bundle_is_a_message_not_a_crash(qtbot, tmp_path, random_bundle, jack_server):
    bad = tmp_path / "bundle"
    shutil.copytree(random_bundle, bad)
    with open(bad / "decoder_step.onnx", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00garbage\x00")
    win = make_window(qtbot, tmp_path, bad, "corrupt")
    qtbot.waitUntil(lambda: "could not be loaded" in win.statusLabel.text(), timeout=LONG)
    assert "decoder_step.onnx" in win.statusLabel.text()
    win.transport.playButton.click()  # Play without a model: a message, nothing else
    qtbot.waitUntil(lambda: "still loading" in win.statusLabel.text(), timeout=LONG)


def test_play_reaches_another_port_stop_and_close_leave_nothing_sounding(qtbot, tmp_path, random_bundle, synth):
    from desktop.preview import PreviewSynth

    win = make_window(qtbot, tmp_path, random_bundle, "play", port=synth.input.name)
    wait_model(qtbot, win)
    win.bridge.set_preview(PreviewSynth(start=False))  # the preview sound on (rendering offline, no audio device)
    win.transport.set_preview(True)
    play, stop = win.findChild(type(win.transport.playButton), "playButton"), win.transport.stopButton
    qtbot.mouseClick(play, Qt.MouseButton.LeftButton)
    assert synth.wait_for(lambda r: len(r.note_ons()) >= 5, timeout=LONG / 1000)
    # the notes go to another program's port: the preview steps aside (desktop/preview_rule.py)
    qtbot.waitUntil(lambda: win.bridge.preview is None and not win.transport.previewButton.isChecked(), timeout=LONG)
    assert win.session.preview_rule.switched_off
    qtbot.waitUntil(lambda: len(win.roll.played) > 0, timeout=LONG)  # the roll shows them
    qtbot.mouseClick(stop, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not play.isChecked(), timeout=LONG)
    assert synth.wait_for(lambda r: r.sounding() == set(), timeout=10)
    # Play again (Space), then close the window while it plays: all notes off
    n = len(synth.note_ons())
    qtbot.keyClick(win, Qt.Key.Key_Space)
    assert synth.wait_for(lambda r: len(r.note_ons()) > n + 3, timeout=LONG / 1000)
    assert win.bridge.stream.running
    win.close()
    assert synth.wait_for(lambda r: r.sounding() == set(), timeout=10)
    assert not win.bridge.stream.running


def test_moving_the_puck_changes_the_condition_from_the_next_bar(qtbot, tmp_path, random_bundle, synth):
    win = make_window(qtbot, tmp_path, random_bundle, "puck", port=synth.input.name)
    wait_model(qtbot, win)
    win.transport.playButton.click()
    assert synth.wait_for(lambda r: len(r.note_ons()) >= 3, timeout=LONG / 1000)
    pad = win.pad
    target = pad.pos_of(8.0, 2.0).toPoint()
    qtbot.mouseClick(pad, Qt.MouseButton.LeftButton, pos=target)
    want = pad.target_va
    assert want is not None and want == pytest.approx((8.0, 2.0), abs=0.1)
    gen, tee = win.bridge.gen, win.bridge.tee
    # at the engine: a token sampled under the new condition
    qtbot.waitUntil(lambda: any(va == want for _, va in list(tee.log)), timeout=LONG)
    assert gen.condition.va == want
    log = list(tee.log)
    first = next(i for i, (_, va) in enumerate(log) if va == want)
    assert first > 0 and log[first - 1][1] != want  # before: the old condition
    assert log[first - 1][0] == gen.tokenizer.groups.bar  # the new one starts right after a Bar
    assert all(va == want for _, va in log[first:])  # and stays
    # double-click: back to following the picture (here none: the neutral point)
    qtbot.mouseDClick(pad, Qt.MouseButton.LeftButton, pos=target)
    assert pad.following
    qtbot.waitUntil(lambda: gen.condition.va == (5.0, 5.0), timeout=LONG)
    win.transport.stopButton.click()
    assert synth.wait_for(lambda r: r.sounding() == set(), timeout=10)


def test_a_far_emotion_ramps_the_tempo_bar_by_bar_instead_of_jumping(qtbot, tmp_path, random_bundle, synth):
    """One tempo per piece: the puck moved far keeps the tempo, then it ramps <= 4 % a bar."""
    from engine.emotion.attributes import attributes_for

    win = make_window(qtbot, tmp_path, random_bundle, "ramp", port=synth.input.name)
    wait_model(qtbot, win)
    win.transport.playButton.click()
    b = win.bridge
    qtbot.waitUntil(lambda: b.stream is not None and b.stream.running, timeout=LONG)
    start = b.stream.bpm
    assert start == pytest.approx(attributes_for(5.0, 5.0).bpm, abs=1)  # no picture: the neutral point
    assert attributes_for(8.5, 8.5).bpm > start * 1.3  # far away
    qtbot.mouseClick(win.pad, Qt.MouseButton.LeftButton, pos=win.pad.pos_of(8.5, 8.5).toPoint())
    assert start - 1e-6 <= b.stream.bpm <= start * 1.04 + 1e-6  # no jump (at most one ramp step)
    bars = b.stream.bar_lines_played
    qtbot.waitUntil(lambda: b.stream.bar_lines_played >= bars + 2 and b.stream.bpm > start + 1, timeout=LONG)
    ramped, steps = b.stream.bpm, b.stream.bar_lines_played - bars
    assert start < ramped <= start * 1.04 ** steps + 1e-6
    assert f"{ramped:.0f} BPM" in win.attributesLabel.text()
    win.transport.stopButton.click()
    assert synth.wait_for(lambda r: r.sounding() == set(), timeout=10)


def test_sync_to_daw_follows_a_clock_from_another_port(qtbot, tmp_path, random_bundle, synth):
    from tests.jack import DawClock

    win = make_window(qtbot, tmp_path, random_bundle, "sync", port=synth.input.name)
    wait_model(qtbot, win)
    sync = win.findChild(type(win.transport.syncButton), "syncButton")
    sync.click()
    qtbot.waitUntil(lambda: win.bridge.follower is not None, timeout=LONG)
    win.transport.playButton.click()
    daw = DawClock(win.bridge.clock_name, 132.0, name="Desk DAW")
    try:
        daw.run(lead_ticks=24, ticks=24 * 400)
        f = win.bridge.follower
        qtbot.waitUntil(lambda: f.ready and "locked" in win.transport.syncLabel.text(), timeout=LONG)
        shown = float(win.transport.syncLabel.text().split("·")[1].split("BPM")[0])  # "● locked · 132.0 BPM"
        assert shown == pytest.approx(132.0, rel=0.02)  # the label shows the lock; precision: moodroll bench
        assert synth.wait_for(lambda r: len(r.note_ons()) >= 3, timeout=LONG / 1000)
        s = win.bridge.stream
        assert s.follower is win.bridge.follower and s.bpm == pytest.approx(132.0, rel=0.02)
        assert "following the DAW" in s.status or s.status.startswith("playing")
    finally:
        daw.stop()
        win.transport.stopButton.click()
        qtbot.waitUntil(lambda: not win.transport.playButton.isChecked(), timeout=LONG)
    assert synth.wait_for(lambda r: r.sounding() == set(), timeout=10)


def test_webcam_button_with_a_video_file_moves_the_va(qtbot, tmp_path, shipped):
    size = (160, 120)
    frames = [cv2.resize(cv2.imread(str(EXAMPLES / f"{n}.jpg")), size) for n in ("sunrise", "storm")]
    video = tmp_path / "scene.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    for i in range(40):  # 2 s of each picture, looped by the app
        w.write(frames[i // 20])
    w.release()
    win = make_window(qtbot, tmp_path, None, "webcam")
    wait_model(qtbot, win)
    seen = []
    win.bridge.cameraVA.connect(lambda v, a: seen.append((v, a)))
    win.source.set_camera(str(video))
    button = win.findChild(type(win.source.webcamButton), "webcamButton")
    button.click()
    qtbot.waitUntil(lambda: len(seen) >= 2 and np.ptp(np.array(seen)[:, 0]) > 0.3, timeout=LONG)
    assert win.pad.picture_va == pytest.approx(seen[-1], abs=1e-6)
    qtbot.waitUntil(lambda: win.source.dropZone.pixmap() is not None and not win.source.dropZone.pixmap().isNull(),
                    timeout=LONG)  # the live frame is shown
    button.click()  # off
    qtbot.waitUntil(lambda: win.bridge.webcam is None, timeout=LONG)


def _takes(win, kind):
    return [t for t in win.takes.takes() if t.meta.kind == kind]


def test_capture_adds_a_take_whose_url_is_the_played_notes_and_stop_autosaves(qtbot, tmp_path, random_bundle,
                                                                              synth):
    import mido

    win = make_window(qtbot, tmp_path, random_bundle, "capture", port=synth.input.name)
    wait_model(qtbot, win)
    win.transport.playButton.click()
    qtbot.waitUntil(lambda: win.bridge.stream is not None and len(win.bridge.stream.played_bars) >= 4,
                    timeout=LONG)
    win.transport.stopButton.click()
    qtbot.waitUntil(lambda: not win.transport.playButton.isChecked(), timeout=LONG)
    s = win.bridge.stream
    qtbot.waitUntil(lambda: len(_takes(win, "take")) == 1, timeout=LONG)  # Stop saved the phrase
    bars = list(s.played_bars)
    win.transport.barsSpin.setValue(2)
    qtbot.keyClick(win, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(_takes(win, "capture")) == 1, timeout=LONG)
    view = win.findChild(type(win.takes.view), "takesList")
    model = view.model()
    row = next(r for r in range(model.rowCount()) if model.takes[r].meta.kind == "capture")
    urls = model.mimeData([model.index(row)]).urls()
    assert len(urls) == 1 and urls[0].isLocalFile() and urls[0].toLocalFile().endswith(".mid")
    mid = mido.MidiFile(urls[0].toLocalFile())
    tick, got = 0, []
    for msg in mido.merge_tracks(mid.tracks):
        tick += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            got.append((tick, msg.note, msg.velocity))
    start, end = bars[-3][1], bars[-1][1]  # the last 2 complete bars
    want = [(round((b - start) * mid.ticks_per_beat), p, v) for b, p, v, _ in s.played_notes if start <= b < end]
    assert got and sorted(got) == sorted(want)
    auto = _takes(win, "take")[0]
    assert auto.bars == len(bars) - 1 and auto.path.is_file()


def window_without_midi(qtbot, tmp_path, bundle, tag):
    """The window on a MIDI API this machine lacks (ALSA): no ports, everything offline works."""
    from desktop.app import MainWindow

    st = QSettings(str(tmp_path / f"{tag}.ini"), QSettings.Format.IniFormat)
    win = MainWindow(bundle=bundle, settings=st, midi_api="alsa", takes_dir=tmp_path / "takes", threads=1)
    qtbot.addWidget(win)
    win.show()
    wait_model(qtbot, win)
    return win, st


def test_no_midi_system_says_how_to_get_one_and_variations_still_work(qtbot, tmp_path, random_bundle):
    win, _ = window_without_midi(qtbot, tmp_path, random_bundle, "nomidi")
    qtbot.waitUntil(lambda: "modprobe snd-seq" in win.statusLabel.text() or "JACK" in win.statusLabel.text(),
                    timeout=LONG)
    win.variations.count.setValue(2)
    win.variations.generateButton.click()
    qtbot.waitUntil(lambda: len(_takes(win, "variation")) == 2, timeout=LONG)
    assert all(t.path.is_file() and len(t.notes) > 0 for t in _takes(win, "variation"))


def test_another_takes_folder_lists_its_takes_saves_there_and_a_bad_one_keeps_the_old(qtbot, tmp_path, random_bundle):
    import shutil

    win, st = window_without_midi(qtbot, tmp_path, random_bundle, "folder")
    button = win.findChild(type(win.takesFolderButton), "takesFolderButton")
    assert str(tmp_path / "takes") in button.toolTip()
    other = tmp_path / "Project Takes"
    other.mkdir()
    shutil.copy(EXAMPLES / "example.mid", other / "earlier.mid")  # a take already there
    win.session.set_takes_dir(other)
    qtbot.waitUntil(lambda: win.session.store is not None and win.session.store.folder == other, timeout=LONG)
    qtbot.waitUntil(lambda: [t.path.name for t in win.takes.takes()] == ["earlier.mid"], timeout=LONG)
    assert st.value("takes_folder") == str(other) and str(other) in button.toolTip()
    win.variations.count.setValue(1)
    win.variations.generateButton.click()
    qtbot.waitUntil(lambda: len(_takes(win, "variation")) == 1, timeout=LONG)
    assert _takes(win, "variation")[0].path.parent == other  # written where the user chose
    not_a_folder = tmp_path / "a file"
    not_a_folder.write_text("x")
    win.session.set_takes_dir(not_a_folder)
    qtbot.waitUntil(lambda: "takes are still saved in" in win.statusLabel.text(), timeout=LONG)
    assert win.session.store.folder == other and st.value("takes_folder") == str(other)
    assert "\n" not in win.statusLabel.text()


def test_without_opencv_the_camera_button_is_greyed_out_and_says_why(qtbot, monkeypatch):
    import desktop.source_view as sv
    from engine.picture.webcam import NO_OPENCV

    monkeypatch.setattr(sv, "capture_available", lambda: False)  # as in the installed program
    view = sv.SourceView()
    qtbot.addWidget(view)
    assert not view.webcamButton.isEnabled()
    assert view.webcamButton.toolTip() == NO_OPENCV
    monkeypatch.setattr(sv, "capture_available", lambda: True)
    again = sv.SourceView()
    qtbot.addWidget(again)
    assert again.webcamButton.isEnabled()
