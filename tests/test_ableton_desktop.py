"""The app's Key menu "Follow Live", against AbletonOSC's own code under the Live host stand-in
(tests/live_host/): choosing it never waits for Live (the answers come on the AbletonOSC
client's thread and reach the panel as a queued signal), Live's key becomes the panel's key
lock and a ``changed`` (heard from the next bar), a change in Live follows, older Live is one
line and the automatic key, and the choice is remembered."""
import os

import pytest

pytest.importorskip("PyQt6")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt6.QtCore import QSettings  # noqa: E402

from desktop.controls_panel import FOLLOW_LIVE, ControlsPanel  # noqa: E402
from tests.live_host import LiveProcess, copy_abletonosc  # noqa: E402
from tests.test_osc_server import free_port  # noqa: E402


@pytest.fixture(scope="module")
def abletonosc(tmp_path_factory):
    return copy_abletonosc(tmp_path_factory.mktemp("remote_scripts_app"))


def _panel(qtbot, live, monkeypatch):
    monkeypatch.setattr("engine.daw.ableton.LIVE_PORT", live.port)
    monkeypatch.setattr("engine.daw.ableton.REPLY_PORT", live.reply_port)
    w = ControlsPanel()
    qtbot.addWidget(w)
    return w


@pytest.fixture()
def live(abletonosc):
    host = LiveProcess(abletonosc, free_port(), free_port())
    yield host
    assert "Traceback" not in host.close()


def test_follow_live_takes_live_s_key_without_waiting(qtbot, live, monkeypatch):
    w = _panel(qtbot, live, monkeypatch)
    live.set_key(2, "Dorian")
    with qtbot.waitSignal(w.changed, timeout=10000):
        w.keyCombo.setCurrentIndex(w.keyCombo.findData("live"))
        # the UI thread went on at once: Live's answer can only arrive through the event loop
        assert w.following_live and w.key() is None and w.liveLabel.text() == "asking Live for its key…"
    qtbot.waitUntil(lambda: w.key() == "D dorian", timeout=10000)  # (the menu's own edit may emit first)
    assert w.controls().key == "D dorian"
    assert w.keyCombo.itemText(1) == f"{FOLLOW_LIVE}: D dorian" and w.liveLabel.text() == "Live's key: D dorian"
    with qtbot.waitSignal(w.changed, timeout=10000):
        live.set_key(9, "Minor")  # root then scale: the panel ends on Live's key
    qtbot.waitUntil(lambda: w.key() == "A minor", timeout=10000)
    with qtbot.waitSignal(w.changed, timeout=10000):
        live.set_key(9, "Kumoi")
    qtbot.waitUntil(lambda: w.key() is None, timeout=10000)
    assert w.key() is None and "a scale Moodroll has not got" in w.liveLabel.text()
    assert w.keyCombo.itemText(1) == f"{FOLLOW_LIVE} (auto)"
    w.keyCombo.setCurrentIndex(w.keyCombo.findData("E major"))
    assert w.key() == "E major" and not w.following_live and w.liveLabel.isHidden()
    qtbot.waitUntil(lambda: live.state()["listening"] == {}, timeout=10000)  # it stopped listening


def test_older_live_is_one_line_and_the_choice_is_remembered(qtbot, abletonosc, monkeypatch, tmp_path):
    old = LiveProcess(abletonosc, free_port(), free_port(), version=11)
    try:
        w = _panel(qtbot, old, monkeypatch)
        w.keyCombo.setCurrentIndex(w.keyCombo.findData("live"))
        qtbot.waitUntil(lambda: w.liveLabel.text().startswith("Live did not say its key"), timeout=10000)
        assert w.key() is None and w.controls().key is None and "\n" not in w.liveLabel.text()
        settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
        w.save(settings)
        w.stop_following_live()
        other = ControlsPanel()
        qtbot.addWidget(other)
        other.load(settings)
        assert other.following_live and other.keyCombo.currentText().startswith(FOLLOW_LIVE)
        qtbot.waitUntil(lambda: other.liveLabel.text().startswith("Live did not say"), timeout=10000)
        other.stop_following_live()
    finally:
        assert "Traceback" not in old.close()


def test_a_busy_reply_port_is_one_line(qtbot, live, monkeypatch):
    import socket

    w = _panel(qtbot, live, monkeypatch)
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", live.reply_port))  # another AbletonOSC client holds the port
    try:
        w.keyCombo.setCurrentIndex(w.keyCombo.findData("live"))
        assert w.liveLabel.text().startswith("cannot follow Live's key: cannot open the AbletonOSC reply port")
        assert w.key() is None
    finally:
        busy.close()
