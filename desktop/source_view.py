"""The source: the picture (drop, Ctrl+O, paste) or the live webcam frame, with its estimated VA.

``dropZone`` accepts picture files dropped from the desktop or a browser (file URLs) and
shows the picture or the latest camera frame. ``webcamButton`` starts and stops the camera;
its menu chooses which (camera 0-3 or a video file, which then plays as a camera, looped).
Decoding never happens here: paths and pasted bytes go out as signals to the bridge.
"""
from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QBuffer, QIODevice, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QImage, QPixmap
from PyQt6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QMenu, QPushButton, QSizePolicy, QToolButton,
                             QVBoxLayout, QWidget)

from engine.picture.webcam import NO_OPENCV, capture_available

IMAGE_FILTER = "Pictures (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff);;All files (*)"
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm);;All files (*)"


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class DropZone(QLabel):
    fileDropped = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("dropZone")
        self.setAcceptDrops(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(220, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setWordWrap(True)
        self.setToolTip("Drop a picture here (or Ctrl+O, or paste with Ctrl+V)")
        self._pixmap: QPixmap | None = None
        self._hint()

    def _hint(self) -> None:
        self.setText("Drop a picture here\nCtrl+O to open · Ctrl+V to paste")
        self.setStyleSheet("QLabel#dropZone { border: 1px dashed #3a404b; border-radius: 6px; color: #8b919d; "
                           "background: #1c1f26; }")

    def show_rgb(self, rgb: np.ndarray) -> None:
        self._pixmap = QPixmap.fromImage(rgb_to_qimage(rgb))
        self.setStyleSheet("QLabel#dropZone { border: 1px solid #2e333d; border-radius: 6px; background: #101216; }")
        self._rescale()

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is not None:
            self.setPixmap(self._pixmap.scaled(self.size() - QSize(4, 4), Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation))

    def dragEnterEvent(self, e) -> None:
        if e.mimeData().hasUrls() or e.mimeData().hasImage():
            e.acceptProposedAction()

    def dragMoveEvent(self, e) -> None:
        if e.mimeData().hasUrls() or e.mimeData().hasImage():
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:
        md = e.mimeData()
        for url in md.urls():
            if url.isLocalFile():
                self.fileDropped.emit(url.toLocalFile())
                e.acceptProposedAction()
                return
        if md.hasImage():
            self.parent().paste_image(md.imageData())
            e.acceptProposedAction()


class SourceView(QWidget):
    imageChosen = pyqtSignal(object, str)  # path (str) or encoded bytes, a name to show
    cameraToggled = pyqtSignal(object)  # the camera source (int or video path) to start, None = stop

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        self.dropZone = DropZone(self)
        self.caption = QLabel("no picture yet")
        self.caption.setObjectName("caption")
        row = QHBoxLayout()
        row.setSpacing(6)
        self.openButton = QPushButton("Open…")
        self.openButton.setToolTip("Open a picture (Ctrl+O)")
        self.webcamButton = QToolButton()
        self.webcamButton.setObjectName("webcamButton")
        self.webcamButton.setText("◉  Webcam")
        self.webcamButton.setCheckable(True)
        self.webcamButton.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.webcamButton.setToolTip("Follow the webcam (the arrow chooses the camera, or a video file)")
        self.camera_source: int | str = 0
        menu = QMenu(self.webcamButton)
        for i in range(4):
            menu.addAction(f"Camera {i}", lambda i=i: self.set_camera(i, start=True))
        menu.addSeparator()
        menu.addAction("Video file as camera…", self._choose_video)
        self.webcamButton.setMenu(menu)
        self.webcamButton.clicked.connect(self._webcam_clicked)
        if not capture_available():  # the installed program leaves OpenCV out
            self.webcamButton.setEnabled(False)
            self.webcamButton.setToolTip(NO_OPENCV)
        self.openButton.clicked.connect(self.choose_file)
        row.addWidget(self.openButton)
        row.addWidget(self.webcamButton)
        row.addStretch(1)
        row.addWidget(self.caption)
        lay.addWidget(self.dropZone, 1)
        lay.addLayout(row)
        self.dropZone.fileDropped.connect(lambda p: self.imageChosen.emit(p, p.rsplit("/", 1)[-1]))

    # -- pictures -------------------------------------------------------------------------------
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a picture", "", IMAGE_FILTER)
        if path:
            self.imageChosen.emit(path, path.rsplit("/", 1)[-1])

    def paste_image(self, image) -> None:
        """A QImage (clipboard or dropped image data) -> PNG bytes for the engine to decode."""
        img = QImage(image)
        if img.isNull():
            return
        buf = QBuffer()
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        img.save(buf, "PNG")
        self.imageChosen.emit(bytes(buf.data()), "pasted picture")

    def show_picture(self, rgb: np.ndarray, v: float, a: float, name: str) -> None:
        self.dropZone.show_rgb(rgb)
        self.set_va_caption(v, a, name)

    def set_va_caption(self, v: float, a: float, name: str) -> None:
        self.caption.setText(f"{name} · valence {v:.1f} · arousal {a:.1f}")

    # -- webcam -------------------------------------------------------------------------------
    def set_camera(self, source, start: bool = False) -> None:
        self.camera_source = source
        self.webcamButton.setText(f"◉  Camera {source}" if isinstance(source, int) else "◉  Video")
        if start:
            self.webcamButton.setChecked(True)
            self.cameraToggled.emit(source)

    def _choose_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "A video to use as the camera", "", VIDEO_FILTER)
        if path:
            self.set_camera(path, start=True)

    def _webcam_clicked(self, checked: bool) -> None:
        self.cameraToggled.emit(self.camera_source if checked else None)

    def set_camera_running(self, running: bool) -> None:
        self.webcamButton.blockSignals(True)
        self.webcamButton.setChecked(running)
        self.webcamButton.blockSignals(False)
