"""The transport bar: Play / Stop, Sync to DAW (with the detected tempo and lock), the output
port, and Capture last N bars. Only widgets and signals; the main window wires them to the bridge.
"""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QKeySequence, QShortcut
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

VIRTUAL = "Moodroll (virtual port)"


class TransportBar(QWidget):
    playClicked = pyqtSignal()
    stopClicked = pyqtSignal()
    syncToggled = pyqtSignal(bool)
    portChosen = pyqtSignal(object)  # None = our virtual port, else an existing port's name
    captureClicked = pyqtSignal(int)  # bars
    previewToggled = pyqtSignal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(8)
        self.playButton = QPushButton("▶  Play")
        self.playButton.setObjectName("playButton")
        self.playButton.setCheckable(True)
        self.playButton.setToolTip("Play into the MIDI port (Space)")
        self.stopButton = QPushButton("■  Stop")
        self.stopButton.setObjectName("stopButton")
        self.stopButton.setToolTip("Stop: every note ends at once, the phrase is saved as a take (Space)")
        self.syncButton = QPushButton("Sync to DAW")
        self.syncButton.setObjectName("syncButton")
        self.syncButton.setCheckable(True)
        self.syncButton.setToolTip("Follow the DAW's tempo and bar lines: in the DAW, send MIDI clock to "
                                   "'Moodroll Clock In' and press play there")
        self.syncLabel = QLabel("own tempo")
        self.syncLabel.setObjectName("dim")
        self.syncLabel.setMinimumWidth(124)
        self.portCombo = QComboBox()
        self.portCombo.setObjectName("portCombo")
        self.portCombo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.portCombo.setMinimumContentsLength(14)  # long port names elide instead of widening the window
        self.portCombo.setMaximumWidth(280)
        self.portCombo.setToolTip("Where the notes go: Moodroll's own virtual port (arm a MIDI track on it in "
                                  "the DAW), or an existing port")
        self.portCombo.addItem(VIRTUAL, None)
        self.previewButton = QPushButton("Preview sound")
        self.previewButton.setObjectName("previewButton")
        self.previewButton.setCheckable(True)
        self.previewButton.setToolTip("Hear the notes through this computer's speakers (a General MIDI piano); "
                                      "leave it off when the DAW plays them")
        self.barsSpin = QSpinBox()
        self.barsSpin.setRange(1, 64)
        self.barsSpin.setValue(8)
        self.barsSpin.setSuffix(" bars")
        self.barsSpin.setFixedWidth(92)
        self.barsSpin.setToolTip("How many of the last bars Capture keeps")
        self.captureButton = QPushButton("Capture last 8 bars")
        self.captureButton.setObjectName("captureButton")
        self.captureButton.setToolTip("Keep the last bars played as a take (Ctrl+E)")
        self.barsSpin.valueChanged.connect(lambda n: self.captureButton.setText(f"Capture last {n} bars"))
        for w in (self.playButton, self.stopButton):
            lay.addWidget(w)
        lay.addSpacing(6)
        lay.addWidget(self.syncButton)
        lay.addWidget(self.syncLabel)
        lay.addStretch(1)
        port_label = QLabel("Out")
        port_label.setObjectName("dim")
        lay.addWidget(port_label)
        lay.addWidget(self.portCombo)
        lay.addWidget(self.previewButton)
        lay.addSpacing(6)
        lay.addWidget(self.barsSpin)
        lay.addWidget(self.captureButton)

        self.playButton.clicked.connect(self._play_clicked)
        self.stopButton.clicked.connect(self.stopClicked)
        self.syncButton.toggled.connect(self.syncToggled)
        self.previewButton.toggled.connect(self.previewToggled)
        self.portCombo.activated.connect(lambda i: self.portChosen.emit(self.portCombo.itemData(i)))
        self.captureButton.clicked.connect(lambda: self.captureClicked.emit(self.barsSpin.value()))
        QShortcut(QKeySequence(Qt.Key.Key_Space), self.window() or self, activated=self.toggle,
                  context=Qt.ShortcutContext.ApplicationShortcut)
        QShortcut(QKeySequence("Ctrl+E"), self, activated=self.captureButton.click,
                  context=Qt.ShortcutContext.ApplicationShortcut)

    def _play_clicked(self) -> None:
        self.playButton.setChecked(True)  # stays lit until the engine says it stopped
        self.playClicked.emit()

    def toggle(self) -> None:
        (self.stopButton if self.playButton.isChecked() else self.playButton).click()

    def set_playing(self, playing: bool) -> None:
        self.playButton.setChecked(playing)
        self.playButton.setText("▶  Playing" if playing else "▶  Play")

    def set_ports(self, names: list[str], chosen: str | None) -> None:
        self.portCombo.blockSignals(True)
        self.portCombo.clear()
        self.portCombo.addItem(VIRTUAL, None)
        for n in names:
            self.portCombo.addItem(n, n)
            self.portCombo.setItemData(self.portCombo.count() - 1, n, Qt.ItemDataRole.ToolTipRole)  # the whole name
        i = 0
        if chosen:
            # the MIDI system lists "client:port" (JACK) or "client:port 128:0" (ALSA): match loosely
            hits = [k for k, n in enumerate(names) if n == chosen] or \
                   [k for k, n in enumerate(names) if chosen.lower() in n.lower()]
            if hits:
                i = hits[0] + 1
                self.portCombo.setItemData(i, chosen)  # keep the name the user chose
            else:
                self.portCombo.addItem(f"{chosen} (not found)", chosen)
                i = self.portCombo.count() - 1
        self.portCombo.setCurrentIndex(max(0, i))
        self.portCombo.blockSignals(False)

    def set_preview(self, on: bool) -> None:
        self.previewButton.blockSignals(True)
        self.previewButton.setChecked(on)
        self.previewButton.blockSignals(False)

    def set_sync_state(self, status: str, bpm: float | None, locked: bool) -> None:
        if not self.syncButton.isChecked():
            self.syncLabel.setText("own tempo")
        elif locked and bpm:
            self.syncLabel.setText(f"● locked · {bpm:.1f} BPM")
        elif bpm:
            self.syncLabel.setText(f"○ {bpm:.1f} BPM · waiting for play")
        else:
            self.syncLabel.setText("○ waiting for MIDI clock")
        self.syncLabel.setToolTip(status or "Sync to DAW is off: Moodroll plays at its own tempo")
