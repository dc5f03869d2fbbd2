"""DESK-B's desktop panels with pytest-qt (offscreen): the controls panel (keyCombo, debounced
``changed``, QSettings, validation, tooltips), the takes panel (takesList file-URL mime data,
newest first, activation, export, delete, painted rows) and the variations worker (real
generation with the random bundle on a QThread: progress, finished, cancel, failed)."""
from __future__ import annotations

import io
from pathlib import Path

import mido
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import QSettings, Qt, QUrl  # noqa: E402
from PyQt6.QtGui import QColor  # noqa: E402
from PyQt6.QtWidgets import QCheckBox, QComboBox, QPushButton, QSlider, QSpinBox  # noqa: E402

from desktop.controls_panel import AUTO_KEY, ControlsPanel, key_names, note_name  # noqa: E402
from desktop.takes_panel import TakesPanel, describe  # noqa: E402
from engine.model.controls import MusicalControls
from engine.music.theory import SCALES, parse_key  # noqa: E402
from engine.model.sampling import DEFAULT_GUIDANCE  # noqa: E402
from engine.takes.store import TakeMeta, TakeStore  # noqa: E402


# -- controls -----------------------------------------------------------------------------------
@pytest.fixture
def controls(qtbot):
    w = ControlsPanel()
    qtbot.addWidget(w)
    return w


def test_key_combo_offers_auto_and_every_key_the_engine_accepts(controls):
    combo = controls.findChild(QComboBox, "keyCombo")
    assert combo is controls.keyCombo and combo.itemText(0) == AUTO_KEY and combo.itemData(0) is None
    assert combo.itemText(1) == "Follow Live" and combo.itemData(1) == "live"  # (tests/test_ableton_desktop.py)
    keys = [combo.itemData(i) for i in range(2, combo.count()) if combo.itemData(i)]
    assert keys == key_names() and len(keys) == 12 * 13
    for k in keys:
        parse_key(k)  # every entry is a key the engine understands
    assert {parse_key(k).name for k in keys} == set(SCALES)


def test_defaults_are_the_engines(controls):
    assert controls.controls() == MusicalControls(time_signature=(4, 4))
    s = controls.sampling()
    assert s.guidance == DEFAULT_GUIDANCE and s.temperature == 1.0 and s.seed is None


def test_a_burst_of_edits_emits_changed_once_with_the_new_values(controls, qtbot):
    seen = []
    controls.changed.connect(lambda: seen.append(controls.controls()))
    with qtbot.waitSignal(controls.changed, timeout=5000):
        controls.keyCombo.setCurrentIndex(controls.keyCombo.findData("D dorian"))
        for v in (12, 16, 22, 25):  # dragging the emotion strength slider
            controls.strength.slider.setValue(v)
        controls.density.slider.setValue(4)
        controls.polyphony.setValue(3)
        controls.low.setValue(48)
        controls.high.setValue(84)
    assert len(seen) == 1 and not controls._debounce.isActive()  # one burst, one ``changed``
    c = seen[0]
    assert (c.key, c.density, c.max_polyphony, c.pitch_range) == ("D dorian", 2.0, 3, (48, 84))
    assert controls.sampling().guidance == 2.5


def test_new_variation_picks_a_seed_and_emits_at_once(controls, qtbot):
    with qtbot.waitSignal(controls.changed, timeout=1000):
        qtbot.mouseClick(controls.seedButton, Qt.MouseButton.LeftButton)
    seed = controls.sampling().seed
    assert isinstance(seed, int) and str(seed) in controls.seedLabel.text()


def test_tempo_lock_and_sync(controls):
    controls.tempo.setValue(128)
    assert controls.controls().bpm is None and controls.start_bpm() == 128  # unlocked: the model suggests
    controls.tempoLock.setChecked(True)
    assert controls.controls().bpm == 128
    controls.set_tempo_enabled(False)  # synced to the DAW: its tempo rules
    assert not controls.tempo.isEnabled() and controls.controls().bpm is None
    controls.set_tempo_enabled(True)
    assert controls.controls().bpm == 128


def test_an_impossible_setting_is_refused_with_one_line(controls, qtbot):
    got = []
    controls.changed.connect(lambda: got.append(1))
    controls.keyCombo.setCurrentIndex(controls.keyCombo.findData("C major"))
    controls.low.setValue(61)  # C#4..C#4: no note of C major
    controls.high.setValue(61)
    assert not controls.errorLabel.isHidden() and "no note of C major" in controls.errorLabel.text()
    controls.flush()
    qtbot.wait(300)  # longer than the debounce: still nothing was emitted
    assert got == []
    controls.high.setValue(62)
    assert controls.errorLabel.isHidden()


def test_settings_round_trip_and_bad_values_fall_back(controls, qtbot, tmp_path):
    st = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    controls.keyCombo.setCurrentIndex(controls.keyCombo.findData("F# minor"))
    controls.variation.slider.setValue(7)
    controls.tempo.setValue(93)
    controls.tempoLock.setChecked(True)
    controls.new_seed()
    controls.save(st)
    st.sync()
    other = ControlsPanel()
    qtbot.addWidget(other)
    got = []
    other.changed.connect(lambda: got.append(1))
    other.load(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert other.controls() == controls.controls() and other.sampling() == controls.sampling()
    assert got == [] and not other._debounce.isActive()  # loading is not a user edit
    st.setValue("controls/key", "H major")
    st.setValue("controls/guidance", "loud")
    st.setValue("controls/low", "-5")
    st.sync()
    other.load(st)
    assert other.key() is None and other.sampling().guidance == DEFAULT_GUIDANCE
    assert other.controls().pitch_range[0] == 21  # clamped to the piano


def test_every_control_has_a_tooltip(controls):
    widgets = [w for t in (QComboBox, QSlider, QSpinBox, QCheckBox, QPushButton) for w in controls.findChildren(t)]
    assert len(widgets) >= 9
    assert all(w.toolTip() for w in widgets), [w.objectName() for w in widgets if not w.toolTip()]
    assert note_name(60) == "C4" and controls.low.text() == "A0"


# -- takes --------------------------------------------------------------------------------------
def midi_bytes(pitches=(60, 64, 67), beats=8) -> bytes:
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0)])
    for i in range(beats):
        tr.append(mido.Message("note_on", note=pitches[i % len(pitches)], velocity=90, time=0))
        tr.append(mido.Message("note_off", note=pitches[i % len(pitches)], velocity=0, time=480))
    mid.tracks.append(tr)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


@pytest.fixture
def store(tmp_path):
    t = [1_780_000_000.0]
    s = TakeStore(tmp_path / "takes", clock=lambda: t[0])
    for i, v in enumerate((2.0, 5.0, 8.0)):
        s.add_midi_bytes(midi_bytes(), TakeMeta(valence=v, arousal=4.0, key="C major", source=f"pic{i}.jpg"))
        t[0] += 10
    s.tick = t
    return s


@pytest.fixture
def panel(qtbot, store):
    p = TakesPanel(store)
    qtbot.addWidget(p)
    p.resize(480, 320)
    p.show()
    qtbot.waitExposed(p)
    return p


def test_takes_list_is_newest_first_and_drags_out_as_mid_file_urls(panel, store):
    view = panel.findChild(type(panel.view), "takesList")
    model = view.model()
    assert [t.source for t in panel.takes()] == ["pic2.jpg", "pic1.jpg", "pic0.jpg"]
    assert model.flags(model.index(0)) & Qt.ItemFlag.ItemIsDragEnabled and view.dragEnabled()
    assert "text/uri-list" in model.mimeTypes() and model.supportedDragActions() == Qt.DropAction.CopyAction
    md = model.mimeData([model.index(0), model.index(2)])
    urls = md.urls()
    assert len(urls) == 2 and all(u.isLocalFile() for u in urls) and md.hasUrls()
    paths = [Path(u.toLocalFile()) for u in urls]
    assert paths == [panel.takes()[0].path.resolve(), panel.takes()[2].path.resolve()]
    for p in paths:  # what the DAW gets is a readable .mid with the notes
        assert p.suffix == ".mid" and len([m for m in mido.MidiFile(p).tracks[0] if m.type == "note_on"]) == 8
    assert urls[0] == QUrl.fromLocalFile(str(paths[0]))


def test_a_new_take_goes_on_top_and_is_selected(panel, store):
    store.tick[0] += 100
    t = store.add_midi_bytes(midi_bytes((72,)), {"valence": 6.0, "arousal": 6.0, "source": "new"})
    panel.add_take(t)
    assert panel.takes()[0].path == t.path and panel.selected()[0].path == t.path
    panel.add_take(t)  # the same take again: replaced, not doubled
    assert len(panel.takes()) == 4
    assert describe(t).startswith("V 6.0 · A 6.0 · ") and "120 BPM" in describe(t) and "0:04" in describe(t)


def test_double_click_activates_and_send_to_live_emits(panel, qtbot):
    view = panel.view
    rect = view.visualRect(view.model().index(1))
    with qtbot.waitSignal(panel.takeActivated, timeout=2000) as sig:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert sig.args == [str(panel.takes()[1].path)]
    with qtbot.waitSignal(panel.sendToLive, timeout=2000) as sig:
        panel.sendAction.trigger()
    assert sig.args == [str(panel.takes()[1].path)]


def test_export_copies_the_take_and_reports_failure_in_one_line(panel, tmp_path, qtbot):
    take = panel.takes()[0]
    out = panel.export(take, tmp_path / "out" / "my groove")
    assert out == tmp_path / "out" / "my groove.mid" and out.read_bytes() == take.path.read_bytes()
    (tmp_path / "blocker").write_text("a file, not a folder")
    with qtbot.waitSignal(panel.error, timeout=1000) as sig:
        assert panel.export(take, tmp_path / "blocker" / "x.mid") is None
    assert sig.args[0].startswith("cannot export") and "\n" not in sig.args[0]


def test_delete_moves_the_selected_take_out_of_the_folder_and_the_list(panel, store, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the trash of this test only
    victim = panel.takes()[1]
    panel.select(victim.path)
    assert panel.delete_selected(confirm=False) == 1
    assert not victim.path.exists() and victim.path not in [t.path for t in panel.takes()]
    assert [t.path for t in store.list()] == [t.path for t in panel.takes()]


def test_rows_paint_a_mini_piano_roll_in_the_valence_colour(panel):
    from desktop.takes_panel import ACCENT, WARM

    img = panel.view.viewport().grab().toImage()

    def has(colour, row):
        rect = panel.view.visualRect(panel.model.index(row))
        want = QColor(colour)
        for x in range(rect.left(), rect.left() + 130):
            for y in range(rect.top(), rect.bottom()):
                c = img.pixelColor(x, y)
                if abs(c.red() - want.red()) + abs(c.green() - want.green()) + abs(c.blue() - want.blue()) < 90:
                    return True
        return False

    assert has(WARM, 0) and not has(ACCENT, 0)  # valence 8: warm notes
    assert has(ACCENT, 2) and not has(WARM, 2)  # valence 2: cool notes


def test_takes_panel_also_builds_with_only_a_parent(qtbot):
    from PyQt6.QtWidgets import QWidget

    parent = QWidget()
    qtbot.addWidget(parent)
    p = TakesPanel(parent)
    assert p.parent() is parent and p.store is None and p.takes() == []


# -- variations ---------------------------------------------------------------------------------
def _job(**kw):
    from desktop.variations import VariationJob

    return VariationJob(**{"n": 3, "bars": 2, "seed": 11, "source": "test",
                           "controls": MusicalControls(key="C minor", time_signature=(4, 4)), **kw})


def test_variations_are_generated_off_the_ui_thread_into_the_takes(qtbot, rt, tmp_path):
    from desktop.variations import VariationsWorker

    store = TakeStore(tmp_path)
    rgb = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    w = VariationsWorker(_job(rgb=rgb), store, runtime=rt)
    steps = []
    w.progress.connect(lambda d, n: steps.append((d, n)))
    with qtbot.waitSignal(w.finished, timeout=120_000) as sig:
        w.start()
    takes = sig.args[0]
    assert steps == [(1, 3), (2, 3), (3, 3)] and len(takes) == 3
    assert sorted(t.meta.seed for t in takes) == [11, 12, 13] and {t.meta.kind for t in takes} == {"variation"}
    assert {t.path for t in store.list()} == {t.path for t in takes}
    scale = parse_key("C minor")
    for t in takes:
        assert 1 <= t.valence <= 9 and t.key == "C minor" and t.source == "test"
        assert all(scale.contains(p) for p in t.notes.pitch.tolist())  # the key lock held
    assert w.wait(5000) and not w.running()


def test_cancel_stops_within_a_variation_and_keeps_what_was_made(qtbot, rt, tmp_path):
    from desktop.variations import VariationsWorker

    store = TakeStore(tmp_path)
    w = VariationsWorker(_job(n=50, bars=4, valence=3.0, arousal=7.0), store, runtime=rt)
    w.progress.connect(lambda d, n: w.cancel())  # Cancel as soon as the first one is there
    with qtbot.waitSignal(w.finished, timeout=120_000) as sig:
        w.start()
    assert w.cancelled and len(sig.args[0]) == 1 and len(store.list()) == 1
    assert w.wait(5000)


def test_a_broken_bundle_fails_with_one_line(qtbot, tmp_path):
    from desktop.variations import VariationJob, VariationsWorker

    w = VariationsWorker(_job(valence=5.0, arousal=5.0), TakeStore(tmp_path / "t"), bundle=tmp_path / "nothing",
                         device="cpu")
    with qtbot.waitSignal(w.failed, timeout=30_000) as sig:
        w.start()
    assert sig.args[0].startswith("variations failed:") and "\n" not in sig.args[0]
    assert w.wait(5000)
    with pytest.raises(ValueError, match="picture or a valence"):
        VariationJob()
    with pytest.raises(ValueError, match="1..100"):
        VariationJob(n=0, valence=5.0, arousal=5.0)
