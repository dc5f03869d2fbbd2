"""The emotion plane: valence (x) by arousal (y), 1-9, where the user steers the mood.

Shows the picture's (or webcam's) estimate as a warm ring, the target puck (filled while the
user overrides it, hollow while it follows the picture: double-click returns to following),
quadrant words (tense, happy, sad, calm) and a fading trail of the VA *heard in what was
played*, one point per bar. Painted with QPainter; emits ``targetChanged`` with a (v, a)
tuple, or None when the user returns to following the picture.
"""
from __future__ import annotations

from collections import deque

from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QFont, QPainter, QPainterPath, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from desktop import theme

LO, HI = 1.0, 9.0
QUADRANTS = (("tense", 0.25, 0.25), ("happy", 0.75, 0.25), ("sad", 0.25, 0.75), ("calm", 0.75, 0.75))


class EmotionPlane(QWidget):
    targetChanged = pyqtSignal(object)  # (valence, arousal) or None = follow the picture

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("vaPad")
        self.setMinimumSize(220, 220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Emotion plane: valence (unpleasant → pleasant) × arousal (calm → excited).\n"
                        "Drag to steer the music (from the next bar); double-click to follow the picture again.\n"
                        "Ring: the picture's estimate · dot: your target · green trail: what the music sounds like.")
        self.picture_va: tuple[float, float] | None = None
        self.target_va: tuple[float, float] | None = None  # user override
        self.trail: deque = deque(maxlen=24)  # heard VA, one per bar

    def sizeHint(self) -> QSize:
        return QSize(300, 300)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, w: int) -> int:
        return w

    # -- state --------------------------------------------------------------------------------
    @property
    def following(self) -> bool:
        return self.target_va is None

    @property
    def puck_va(self) -> tuple[float, float] | None:
        return self.target_va or self.picture_va

    def set_picture_va(self, v: float, a: float) -> None:
        self.picture_va = (float(v), float(a))
        self.update()

    def set_target(self, va: tuple[float, float] | None, emit: bool = True) -> None:
        self.target_va = None if va is None else (_clamp(va[0]), _clamp(va[1]))
        self.update()
        if emit:
            self.targetChanged.emit(self.target_va)

    def add_heard(self, v: float, a: float) -> None:
        self.trail.append((_clamp(v), _clamp(a)))
        self.update()

    def clear_trail(self) -> None:
        self.trail.clear()
        self.update()

    # -- geometry -------------------------------------------------------------------------------
    def plane_rect(self) -> QRectF:
        m = 26.0
        side = max(10.0, min(self.width(), self.height()) - 2 * m + 8)
        x = (self.width() - side) / 2 + 6
        return QRectF(x, m - 8, side, side)

    def pos_of(self, v: float, a: float) -> QPointF:
        r = self.plane_rect()
        return QPointF(r.left() + (v - LO) / (HI - LO) * r.width(), r.bottom() - (a - LO) / (HI - LO) * r.height())

    def va_at(self, p: QPointF) -> tuple[float, float]:
        r = self.plane_rect()
        v = LO + (p.x() - r.left()) / r.width() * (HI - LO)
        a = LO + (r.bottom() - p.y()) / r.height() * (HI - LO)
        return _clamp(v), _clamp(a)

    # -- input --------------------------------------------------------------------------------
    def mousePressEvent(self, e) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            self.set_target(self.va_at(e.position()))

    def mouseMoveEvent(self, e) -> None:
        if e.buttons() & Qt.MouseButton.LeftButton:
            self.set_target(self.va_at(e.position()))

    def mouseDoubleClickEvent(self, e) -> None:
        self.set_target(None)

    # -- painting -----------------------------------------------------------------------------
    def paintEvent(self, _e) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = self.plane_rect()
        p.setPen(QPen(theme.qcolor(theme.BORDER), 1))
        p.setBrush(theme.qcolor(theme.PANEL))
        p.drawRoundedRect(r, 6, 6)
        grid = QPen(theme.qcolor(theme.GRID), 1)
        for k in range(2, 9):
            f = (k - LO) / (HI - LO)
            grid.setStyle(Qt.PenStyle.SolidLine if k == 5 else Qt.PenStyle.DotLine)
            grid.setColor(theme.qcolor(theme.BORDER if k == 5 else theme.GRID))
            p.setPen(grid)
            x = r.left() + f * r.width()
            y = r.bottom() - f * r.height()
            p.drawLine(QPointF(x, r.top() + 1), QPointF(x, r.bottom() - 1))
            p.drawLine(QPointF(r.left() + 1, y), QPointF(r.right() - 1, y))
        f = QFont(self.font())
        f.setPointSizeF(11)
        f.setWeight(QFont.Weight.DemiBold)
        p.setFont(f)
        p.setPen(theme.qcolor(theme.DIM, 150))
        for word, fx, fy in QUADRANTS:
            c = QPointF(r.left() + fx * r.width(), r.top() + fy * r.height())
            p.drawText(QRectF(c.x() - 50, c.y() - 12, 100, 24), Qt.AlignmentFlag.AlignCenter, word)
        small = QFont(self.font())
        small.setPointSizeF(8)
        p.setFont(small)
        p.setPen(theme.qcolor(theme.DIM))
        p.drawText(QRectF(r.left(), r.bottom() + 2, r.width(), 16), Qt.AlignmentFlag.AlignCenter, "valence →")
        p.save()
        p.translate(r.left() - 6, r.center().y())
        p.rotate(-90)
        p.drawText(QRectF(-r.height() / 2, -14, r.height(), 14), Qt.AlignmentFlag.AlignCenter, "arousal →")
        p.restore()
        for k in (1, 5, 9):
            pt = self.pos_of(k, LO)
            p.drawText(QRectF(pt.x() - 10, r.bottom() + 2, 20, 14),
                       Qt.AlignmentFlag.AlignLeft if k == 1 else (Qt.AlignmentFlag.AlignRight if k == 9
                                                                  else Qt.AlignmentFlag.AlignHCenter), "" if k == 5 else str(k))
        self._paint_trail(p)
        if self.picture_va is not None:
            c = self.pos_of(*self.picture_va)
            p.setPen(QPen(theme.qcolor(theme.WARM), 2.2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawEllipse(c, 9, 9)
        puck = self.puck_va
        if puck is not None:
            c = self.pos_of(*puck)
            if self.following:
                p.setPen(QPen(theme.qcolor(theme.ACCENT), 2))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawEllipse(c, 5, 5)
            else:
                p.setPen(QPen(theme.qcolor("#0b1620"), 1.5))
                p.setBrush(QBrush(theme.qcolor(theme.ACCENT)))
                p.drawEllipse(c, 7, 7)
        p.end()

    def _paint_trail(self, p: QPainter) -> None:
        pts = [self.pos_of(*va) for va in self.trail]
        if not pts:
            return
        n = len(pts)
        if n > 1:
            path = QPainterPath(pts[0])
            for q in pts[1:]:
                path.lineTo(q)
            p.setPen(QPen(theme.qcolor(theme.HEARD, 90), 1.5))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(path)
        p.setPen(Qt.PenStyle.NoPen)
        for i, q in enumerate(pts):
            alpha = int(60 + 195 * (i + 1) / n)
            p.setBrush(theme.qcolor(theme.HEARD, alpha))
            p.drawEllipse(q, 3.5 if i == n - 1 else 2.5, 3.5 if i == n - 1 else 2.5)


def _clamp(x: float) -> float:
    return float(min(HI, max(LO, x)))
