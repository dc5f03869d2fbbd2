"""The "Generate N variations" row above the takes list: count, Generate, progress, Cancel.

Drives :class:`desktop.variations.VariationsWorker` (its own QThread, sharing the
bridge's ONNX sessions) with the current picture, target emotion and controls; each finished
variation lands in the takes list. Works without a MIDI system (nothing is played).
"""
from __future__ import annotations

from PyQt6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QSpinBox, QWidget


class VariationsBar(QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.setObjectName("row")
        self.session, self.worker = session, None
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        self.count = QSpinBox()
        self.count.setRange(1, 32)
        self.count.setValue(4)
        self.count.setToolTip("How many variations to write")
        self.generateButton = QPushButton("Generate 4 variations")
        self.generateButton.setObjectName("variationsButton")
        self.generateButton.setToolTip("Write variations of the current picture and emotion as takes, offline "
                                       "(8 bars each, one seed after another)")
        self.count.valueChanged.connect(lambda n: self.generateButton.setText(f"Generate {n} variation" + "s" * (n > 1)))
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m")
        self.progress.hide()
        self.cancelButton = QPushButton("Cancel")
        self.cancelButton.setToolTip("Stop after the variation being written; the finished ones are kept")
        self.cancelButton.hide()
        for w in (self.count, self.generateButton, self.progress, self.cancelButton):
            lay.addWidget(w)
        lay.addStretch(1)
        self.generateButton.clicked.connect(self.start)
        self.cancelButton.clicked.connect(self.cancel)

    def start(self) -> None:
        from desktop.variations import VariationJob, VariationsWorker

        s, b = self.session, self.session.bridge
        if b.gen is None:
            s.win.show_message("warning", "the model is still loading: variations in a moment")
            return
        if s.store is None:
            s.win.show_message("error", "no takes folder: variations cannot be saved")
            return
        controls, bpm, _ = b.effective()
        v, a = b.va()
        try:
            job = VariationJob(n=self.count.value(), bars=8, rgb=b.picture_rgb, valence=v, arousal=a,
                               controls=controls, sampling=b.sampling, bpm=bpm, seed=b.sampling.seed,
                               source=s.source_name)
        except ValueError as e:
            s.win.show_message("error", str(e))
            return
        self.worker = w = VariationsWorker(job, s.store, runtime=b.gen.runtime, parent=self)
        w.progress.connect(self._progress)
        w.finished.connect(self._finished)
        w.failed.connect(lambda line: (s.win.show_message("error", line), self._idle()))
        self.progress.setRange(0, job.n)
        self.progress.setValue(0)
        self.progress.show(), self.cancelButton.show()
        self.generateButton.setEnabled(False)
        s.win.show_message("info", f"writing {job.n} variations…")
        w.start()

    def _progress(self, done: int, total: int) -> None:
        self.progress.setValue(done)

    def _finished(self, takes: list) -> None:
        panel = self.session.win.takes
        if self.session.win.panels_ready:
            shown = {t.path for t in panel.takes()}
            for t in takes:
                if t.path not in shown:
                    panel.add_take(t)
        cancelled = self.worker is not None and self.worker.cancelled
        self.session.win.show_message("info", f"{len(takes)} variation" + "s" * (len(takes) != 1) +
                                      (" written (cancelled)" if cancelled else " written to the takes list"))
        self._idle()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.cancelButton.setEnabled(False)

    def _idle(self) -> None:
        self.progress.hide(), self.cancelButton.hide()
        self.cancelButton.setEnabled(True)
        self.generateButton.setEnabled(True)

    def shutdown(self) -> None:
        if self.worker is not None and self.worker.running():
            self.worker.cancel()
            self.worker.wait(10000)
