"""The desktop app remembers its settings, and survives a port that vanishes while playing
(real JACK ports on the private dummy server; the random test bundle)."""
import pytest
from PyQt6.QtCore import QSettings

from tools.bench.realtime import Recorder

pytest.importorskip("pytestqt")

LONG = 120_000


def test_port_tempo_mode_controls_takes_folder_and_layout_come_back(qtbot, tmp_path, jack_server):
    from desktop.app import MainWindow

    ini = str(tmp_path / "settings.ini")
    win = MainWindow(settings=QSettings(ini, QSettings.Format.IniFormat), midi_api="jack",
                     clock_name="Moodroll Clock settings", takes_dir=tmp_path / "mytakes", load=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.panels_ready, timeout=LONG)
    win.transport.set_ports(["Some Synth:in"], None)
    win.transport.portCombo.setCurrentIndex(1)
    win.transport.portCombo.activated.emit(1)
    win.transport.syncButton.click()
    qtbot.waitUntil(lambda: win.bridge.follower is not None, timeout=LONG)
    keys = win.controls.keyCombo
    keys.setCurrentIndex(keys.findData("E minor"))
    win.transport.barsSpin.setValue(4)
    win.close()

    again = MainWindow(settings=QSettings(ini, QSettings.Format.IniFormat), midi_api="jack",
                       clock_name="Moodroll Clock settings2", load=False)
    qtbot.addWidget(again)
    qtbot.waitUntil(lambda: again.panels_ready, timeout=LONG)
    assert again.bridge.port_choice == "Some Synth:in"
    assert again.transport.portCombo.currentData() == "Some Synth:in"
    assert again.transport.syncButton.isChecked() and again.bridge.sync
    assert again.controls.keyCombo.currentData() == "E minor"
    assert again.transport.barsSpin.value() == 4
    assert again.session.takes_dir == tmp_path / "mytakes"
    for key in ("window/geometry", "window/mainSplitter", "window/rightSplitter"):  # the layout
        assert again.settings.value(key) is not None
    again.close()


def test_a_port_that_vanishes_is_shown_saved_and_reconnected(qtbot, tmp_path, random_bundle, jack_server):
    from desktop.app import MainWindow

    name = "Vanishing Synth"
    synth = Recorder(None, api="jack", name=name)
    st = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    st.setValue("port", name)
    win = MainWindow(bundle=random_bundle, settings=st, midi_api="jack", port_name="Moodroll vanish",
                     takes_dir=tmp_path / "takes", threads=1)
    qtbot.addWidget(win)
    shown = []  # every status line, so a later one (the take saved) cannot hide the error from the test
    show = win.show_message
    win.show_message = lambda level, text: (shown.append((level, text)), show(level, text))
    win.show()
    qtbot.waitUntil(lambda: win.bridge.gen is not None and win.panels_ready, timeout=LONG)
    try:
        win.transport.playButton.click()
        qtbot.waitUntil(lambda: win.bridge.stream is not None and len(win.bridge.stream.played_bars) >= 3,
                        timeout=LONG)
        assert synth.note_ons()
        synth.close()
        synth.input.close()  # the synth quits: its port is gone
        qtbot.waitUntil(lambda: any(lv == "error" and "disappeared" in t for lv, t in shown), timeout=LONG)
        before = win.statusLabel.text()
        win.session.stream_status("playing bar 9 at 120.0 BPM (own tempo)")  # the bar-by-bar line
        assert win.statusLabel.text() == before  # does not bury the port's error while it is gone
        assert "○" in win.portLabel.text()
        qtbot.waitUntil(lambda: any(t.meta.kind == "take" for t in win.takes.takes()), timeout=LONG)
        assert win.bridge.stream.running  # the music goes on; nothing is lost
        synth = Recorder(None, api="jack", name=name)  # it comes back
        qtbot.waitUntil(lambda: "●" in win.portLabel.text() and "reconnected" in win.portLabel.text(),
                        timeout=LONG)
        assert synth.wait_for(lambda r: len(r.note_ons()) >= 2, timeout=LONG / 1000)
        win.transport.stopButton.click()
        assert synth.wait_for(lambda r: r.sounding() == set(), timeout=10)
    finally:
        win.close()
        synth.close()
