"""The Moodroll window: picture or webcam in, emotion plane, live piano roll, transport, takes.

``MainWindow()`` builds everything with no arguments (the shipped bundle, the stored
QSettings); tests inject a bundle folder, a QSettings file, the MIDI API and port names.
The window shows at once; the model loads on the bridge's worker with a progress bar. Every
engine object lives in :class:`desktop.bridge.EngineBridge`; this file only wires widgets
to it and reads its state with two timers (30 Hz for the roll, 4 Hz for status).

Run: ``moodroll app`` or ``python -m desktop``.
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QGuiApplication, QKeySequence
from PyQt6.QtWidgets import (QApplication, QFrame, QHBoxLayout, QLabel, QMainWindow, QProgressBar, QSizePolicy,
                             QSplitter, QToolButton, QVBoxLayout, QWidget)

from desktop import theme
from desktop.bridge import EngineBridge
from desktop.emotion_plane import EmotionPlane
from desktop.piano_roll import PianoRoll
from desktop.session import Session
from desktop.source_view import SourceView
from desktop.transport_bar import TransportBar
from desktop.variations_bar import VariationsBar

APP_NAME = "Moodroll"


def default_settings() -> QSettings:
    return QSettings(APP_NAME, APP_NAME)


def default_takes_dir() -> Path:
    from PyQt6.QtCore import QStandardPaths

    music = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MusicLocation) or str(Path.home())
    return Path(music) / "Moodroll Takes"


def _panel(*widgets, title: str | None = None, margins: int = 10, corner: QWidget | None = None) -> QFrame:
    f = QFrame()
    f.setObjectName("panel")
    lay = QVBoxLayout(f)
    lay.setContentsMargins(margins, margins, margins, margins)
    lay.setSpacing(8)
    if title:
        t = QLabel(title.upper())
        t.setObjectName("dim")
        if corner is None:
            lay.addWidget(t)
        else:  # a small control at the right of the title row
            row = QHBoxLayout()
            row.setContentsMargins(0, 0, 0, 0)
            row.addWidget(t)
            row.addStretch(1)
            row.addWidget(corner)
            lay.addLayout(row)
    for w in widgets:
        lay.addWidget(w, 1 if isinstance(w, (EmotionPlane, PianoRoll, SourceView)) else 0)
    return f



def _loading(text: str) -> QLabel:
    """What stands in a panel's place while the engine is imported."""
    lab = QLabel(text)
    lab.setObjectName("dim")
    return lab

class MainWindow(QMainWindow):
    panelsReady = pyqtSignal()  # the controls and takes panels are built (after the engine imported)
    _engine_imported = pyqtSignal()

    def __init__(self, bundle=None, settings: QSettings | None = None, midi_api: str | None = None,
                 port_name: str = "Moodroll", clock_name: str = "Moodroll Clock In",
                 takes_dir: str | Path | None = None, threads: int | None = None, load: bool = True):
        super().__init__()
        self.t_created = time.perf_counter()
        self.settings = settings if settings is not None else default_settings()
        self.setWindowTitle("Moodroll — picture to piano")
        self.bridge = EngineBridge(bundle, midi_api=midi_api, port_name=port_name, clock_name=clock_name,
                                   threads=threads, parent=self)
        self._build()
        takes = takes_dir or self.settings.value("takes_folder", "") or default_takes_dir()
        self.session = Session(self, Path(takes))
        self.show_takes_folder(self.session.takes_dir)
        self.variations = VariationsBar(self.session)
        self._takes_box.layout().insertWidget(1, self.variations)
        self._connect()
        self._restore()
        self._load_panels()
        self._roll_timer = QTimer(self, interval=33, timeout=self.session.tick)
        self._status_timer = QTimer(self, interval=250, timeout=self.session.slow_tick)
        self._roll_timer.start()
        self._status_timer.start()
        if load:
            self.bridge.load_model()
            self.bridge.list_ports()

    # -- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        self.transport = TransportBar()
        self.source = SourceView()
        self.pad = EmotionPlane()
        self.roll = PianoRoll()
        self.attributesLabel = QLabel("—")
        self.attributesLabel.setObjectName("attributes")
        self.attributesLabel.setToolTip("What the music is asked for now: key · tempo · density "
                                        "(from the target emotion and your controls)")
        self.heardLabel = QLabel("heard: —")
        self.heardLabel.setObjectName("dim")
        self.heardLabel.setToolTip("The emotion a listener would hear in the last bars played "
                                   "(a music → valence/arousal judge fitted on human ratings)")
        self.panels_ready = False
        self.controls = _loading("loading the controls…")  # the real panels once the engine is imported
        self.takes = _loading("loading the takes…")

        header = QWidget()
        hl = QHBoxLayout(header)
        hl.setContentsMargins(12, 10, 12, 4)
        title = QLabel("MOODROLL")
        title.setObjectName("title")
        hl.addWidget(title)
        hl.addSpacing(18)
        hl.addWidget(self.transport, 1)

        plane_info = QWidget()
        plane_info.setObjectName("row")
        pl = QHBoxLayout(plane_info)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(self.attributesLabel)
        pl.addStretch(1)
        pl.addWidget(self.heardLabel)
        left = QSplitter(Qt.Orientation.Vertical)
        left.setObjectName("leftSplitter")
        left.addWidget(_panel(self.source, title="Source"))
        left.addWidget(_panel(self.pad, plane_info, title="Emotion"))
        left.setSizes([260, 420])

        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.setObjectName("bottomSplitter")
        self._controls_box = _panel(self.controls, title="Controls")
        bottom.addWidget(self._controls_box)
        self.takesFolderButton = QToolButton(text="Folder…", objectName="takesFolderButton")
        self.takesFolderButton.setAutoRaise(True)  # a quiet control in the title row, not a big button
        self.takesFolderButton.setStyleSheet("QToolButton { padding: 0px 6px; font-size: 8pt; }")
        self.takesFolderButton.clicked.connect(lambda: self.session.choose_takes_folder())
        self._takes_box = _panel(self.takes, title="Takes", corner=self.takesFolderButton)
        bottom.addWidget(self._takes_box)
        bottom.setSizes([520, 480])
        right = QSplitter(Qt.Orientation.Vertical)
        right.setObjectName("rightSplitter")
        right.addWidget(_panel(self.roll, title="Live piano roll", margins=8))
        right.addWidget(bottom)
        right.setSizes([380, 300])
        main = QSplitter(Qt.Orientation.Horizontal)
        main.setObjectName("mainSplitter")
        main.addWidget(left)
        main.addWidget(right)
        main.setSizes([360, 900])
        self.splitters = (main, left, right, bottom)

        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(header)
        body = QWidget()
        bl = QVBoxLayout(body)
        bl.setContentsMargins(10, 6, 10, 10)
        bl.addWidget(main)
        cl.addWidget(body, 1)
        self.setCentralWidget(central)

        self.statusLabel = QLabel("starting")
        self.statusLabel.setObjectName("statusLabel")
        # a long message is cut at the window's edge (whole in the tooltip), never widens the window
        self.statusLabel.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.portLabel = QLabel("")
        self.portLabel.setObjectName("dim")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setFixedWidth(180)
        self.progress.setFormat("model %p%")
        sb = self.statusBar()
        sb.setSizeGripEnabled(False)
        sb.addWidget(self.statusLabel, 1)
        sb.addPermanentWidget(self.portLabel)
        sb.addPermanentWidget(self.progress)
        self.resize(1360, 860)

        for text, keys, slot in (("Open picture…", QKeySequence.StandardKey.Open, self.source.choose_file),
                                 ("Paste picture", QKeySequence.StandardKey.Paste, self.paste),
                                 ("Quit", QKeySequence.StandardKey.Quit, self.close)):
            act = QAction(text, self)
            act.setShortcut(keys)
            act.triggered.connect(slot)
            self.addAction(act)

    def _connect(self) -> None:
        b, t, s = self.bridge, self.transport, self.session
        b.loadProgress.connect(self._progress)
        b.modelReady.connect(s.model_ready)
        b.modelFailed.connect(s.model_failed)
        b.message.connect(self.show_message)
        b.streamStatus.connect(s.stream_status)
        b.playingChanged.connect(s.playing_changed)
        b.pictureAnalyzed.connect(s.picture_analyzed)
        b.cameraVA.connect(s.camera_va)
        b.cameraRunning.connect(self.source.set_camera_running)
        b.portsListed.connect(s.ports_listed)
        t.playClicked.connect(s.play)
        t.stopClicked.connect(s.stop)
        t.syncToggled.connect(s.sync_toggled)
        t.portChosen.connect(s.port_chosen)
        t.captureClicked.connect(s.capture)
        t.previewToggled.connect(s.preview_toggled)
        b.previewChanged.connect(s.preview_changed)
        self.source.imageChosen.connect(lambda src, name: self.open_image(src, name))
        self.source.cameraToggled.connect(s.camera_toggled)
        self.pad.targetChanged.connect(s.target_changed)

    # -- the panels that need the engine ---------------------------------------------------------
    def _load_panels(self) -> None:
        """The controls and takes panels import the engine (miditok: seconds). The window shows
        first with placeholders; a thread imports the engine; the panels are built after."""
        self._engine_imported.connect(self._install_panels)
        if all(m in sys.modules for m in ("engine.model.controls", "engine.takes.store", "engine.music.events")):
            self._install_panels()
            return

        def imports():
            import engine.model.controls  # noqa: F401
            import engine.music.events  # noqa: F401
            import engine.takes.store  # noqa: F401

            self._engine_imported.emit()

        threading.Thread(target=imports, name="moodroll-imports", daemon=True).start()

    def _install_panels(self) -> None:
        if self.panels_ready:
            return
        from desktop.controls_panel import ControlsPanel
        from desktop.takes_panel import TakesPanel

        s = self.session
        for attr, box, make in (("controls", self._controls_box, ControlsPanel),
                                ("takes", self._takes_box, TakesPanel)):
            old, new = getattr(self, attr), make(parent=self)
            box.layout().replaceWidget(old, new)
            box.layout().setStretchFactor(new, 1)
            old.deleteLater()
            setattr(self, attr, new)
        self.takes.error.connect(lambda line: self.show_message("error", line))
        self.takes.takeActivated.connect(lambda path: self.show_message("info", f"{path}: drag it into the DAW, "
                                                                        "or Save As"))
        self.takes.sendToLive.connect(s.send_to_live)
        self.controls.changed.connect(s.controls_changed)
        self.panels_ready = True
        s.panels_installed(self.settings)
        self.panelsReady.emit()

    # -- public -------------------------------------------------------------------------------
    def open_image(self, path, name: str | None = None) -> None:
        """What a drop does: decode and analyse on the worker, then show it with its VA."""
        self.bridge.open_image(str(path) if isinstance(path, Path) else path, name)

    def paste(self) -> None:
        md = QGuiApplication.clipboard().mimeData()
        if md is None:
            return
        if md.hasImage():
            self.source.paste_image(md.imageData())
        elif md.hasUrls() and md.urls()[0].isLocalFile():
            self.open_image(md.urls()[0].toLocalFile())

    def show_takes_folder(self, path) -> None:
        self.takesFolderButton.setToolTip(f"Takes are saved in {path}. Click to choose another folder")

    def show_message(self, level: str, text: str) -> None:
        color = {"error": theme.STOP, "warning": theme.WARM}.get(level, theme.TEXT)
        self.statusLabel.setStyleSheet(f"color: {color};")
        self.statusLabel.setText(text)
        self.statusLabel.setToolTip(text)

    def _progress(self, pct: int, what: str) -> None:
        self.progress.setValue(pct)
        self.progress.setToolTip(what)
        if pct < 100:
            self.show_message("info", f"loading the model: {what}")
        else:
            self.progress.hide()

    # -- settings -----------------------------------------------------------------------------
    def _restore(self) -> None:
        st = self.settings
        geo = st.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        for sp in self.splitters:
            state = st.value(f"window/{sp.objectName()}")
            if state is not None:
                sp.restoreState(state)
        self.session.restore(st)

    def save_settings(self) -> None:
        st = self.settings
        st.setValue("window/geometry", self.saveGeometry())
        for sp in self.splitters:
            st.setValue(f"window/{sp.objectName()}", sp.saveState())
        self.session.save(st)
        st.sync()

    def closeEvent(self, e) -> None:
        """Save settings; stop playing with all notes off; close ports and the camera."""
        self._roll_timer.stop()
        self._status_timer.stop()
        try:
            self.save_settings()
        finally:
            self.variations.shutdown()
            self.session.close()
            self.bridge.shutdown()
        super().closeEvent(e)


def main(argv: list[str] | None = None) -> int:
    """``moodroll app`` / ``python -m desktop`` / ``moodroll-app``."""
    import argparse

    p = argparse.ArgumentParser(prog="moodroll app", description="The Moodroll desktop app.")
    p.add_argument("--bundle", help="model bundle folder (default: the shipped one)")
    p.add_argument("--midi-api", help="jack, alsa, coremidi or winmm (default: the platform's)")
    p.add_argument("image", nargs="?", help="a picture to start with")
    args = p.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    theme.apply(app)
    win = MainWindow(bundle=args.bundle, midi_api=args.midi_api)
    win.show()
    if args.image:
        win.open_image(args.image)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
