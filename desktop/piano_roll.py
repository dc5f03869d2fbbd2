"""The live piano roll: what was played, what the decoder has already written, bar by bar.

The window scrolls with the playhead (a quarter of the way in from the left). Notes played
(``LiveStream.played_notes``) are drawn in the accent colour, brighter for louder; the
decoded look-ahead (from :class:`desktop.taps.LookaheadTee`) in a dimmer shade of it; bar
lines with their numbers; the current bar shaded. The main window feeds it from a timer
(:meth:`set_state`); it never reads engine objects itself.
"""
from __future__ import annotations

from collections import deque

from PyQt6.QtCore import QRectF, QSize, Qt
from PyQt6.QtGui import QFont, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from desktop import theme

BLACK_KEYS = {1, 3, 6, 8, 10}


class PianoRoll(QWidget):
    def __init__(self, parent=None, span_beats: float = 16.0):
        super().__init__(parent)
        self.setObjectName("pianoRoll")
        self.setMinimumSize(360, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("Live piano roll: bright = played, dim = already decoded (the next bar or so), "
                        "shaded = the bar now playing; the line is now")
        self.span = span_beats
        self.playhead = 0.0
        self.beats_per_bar = 4.0
        self.played: list = []  # (onset, pitch, velocity, duration)
        self.lookahead: deque = deque(maxlen=512)
        self.bars: list[float] = []
        self.pitch_lo, self.pitch_hi = 48, 84

    def sizeHint(self) -> QSize:
        return QSize(720, 300)

    def clear(self) -> None:
        self.played, self.bars, self.playhead = [], [], 0.0
        self.lookahead.clear()
        self.update()

    def set_playhead(self, playhead: float) -> None:
        """Only the playhead moved (nothing new decoded or played): scroll."""
        self.playhead = playhead
        self.update()

    def set_state(self, playhead: float, played: list, new_lookahead: list = (), bars: list = (),
                  beats_per_bar: float = 4.0) -> None:
        """New notes: ``played`` (onset, pitch, velocity, duration), oldest first; ``new_lookahead``
        decoded since the last call; ``bars`` decoded bar-line beats."""
        self.playhead, self.beats_per_bar = playhead, beats_per_bar
        self.played = list(played[-512:])  # far more than one screen holds
        self.lookahead.extend(new_lookahead)
        if bars:
            self.bars = sorted(set(self.bars[-64:]) | set(bars))[-64:]
        visible = [n for n in list(self.lookahead) + self.played if n[0] + n[3] >= playhead - self.span]
        if visible:  # the rows follow the register on screen: at once outwards, gently back in
            lo, hi = min(n[1] for n in visible) - 3, max(n[1] for n in visible) + 3
            if hi - lo < 24:
                mid = (lo + hi) // 2
                lo, hi = mid - 12, mid + 12
            lo, hi = max(21, lo), min(108, hi)
            self.pitch_lo = lo if lo < self.pitch_lo else self.pitch_lo + (lo - self.pitch_lo + 1) // 2
            self.pitch_hi = hi if hi > self.pitch_hi else self.pitch_hi - (self.pitch_hi - hi + 1) // 2
        self.update()

    # -- geometry -------------------------------------------------------------------------------
    def window(self) -> tuple[float, float]:
        start = self.playhead - self.span * 0.55  # history on the left, the look-ahead on the right
        return start, start + self.span

    def _x(self, beat: float, r: QRectF, start: float) -> float:
        return r.left() + (beat - start) / self.span * r.width()

    def _y(self, pitch: int, r: QRectF) -> float:
        n = self.pitch_hi - self.pitch_lo + 1
        return r.top() + (self.pitch_hi - pitch) / n * r.height()

    # -- painting -----------------------------------------------------------------------------
    def paintEvent(self, _e) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        full = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(QPen(theme.qcolor(theme.BORDER), 1))
        p.setBrush(theme.qcolor(theme.PANEL))
        p.drawRoundedRect(full, 6, 6)
        r = full.adjusted(48, 20, -6, -6)  # octave labels and keys on the left, bar numbers on top
        start, end = self.window()
        rows = self.pitch_hi - self.pitch_lo + 1
        row_h = r.height() / rows
        small = QFont(self.font())
        small.setPointSizeF(7.5)
        p.setFont(small)
        for pitch in range(self.pitch_lo, self.pitch_hi + 1):  # black-key rows darker, C labelled
            y = self._y(pitch, r)
            if pitch % 12 in BLACK_KEYS:
                p.fillRect(QRectF(r.left(), y, r.width(), row_h), theme.qcolor("#181b21"))
                p.fillRect(QRectF(full.left() + 26, y, 11, row_h), theme.qcolor("#2a2e37"))
            else:
                p.fillRect(QRectF(full.left() + 26, y + 0.5, 18, max(1.0, row_h - 1)), theme.qcolor("#aeb3bd", 170))
            if pitch % 12 == 0:
                p.setPen(theme.qcolor(theme.DIM))
                p.drawText(QRectF(full.left() + 2, y - 6, 22, row_h + 12),
                           Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"C{pitch // 12 - 1}")
        bars = [b for b in self.bars if start - self.beats_per_bar <= b <= end]
        # beyond the last decoded bar line (or before the first): the metre's grid goes on
        bpb = self.beats_per_bar
        last = bars[-1] if bars else (start // bpb) * bpb
        while last + bpb <= end:
            last += bpb
            bars.append(last)
        first = bars[0]
        while first - bpb >= start - bpb:
            first -= bpb
            bars.insert(0, first)
        current = max((b for b in bars if b <= self.playhead), default=None)
        if current is not None:
            nxt = min((b for b in bars if b > current), default=current + self.beats_per_bar)
            x0, x1 = self._x(current, r, start), self._x(nxt, r, start)
            p.fillRect(QRectF(max(x0, r.left()), r.top(), min(x1, r.right()) - max(x0, r.left()), r.height()),
                       theme.qcolor(theme.ACCENT, 18))
        for b in bars:
            x = self._x(b, r, start)
            if r.left() <= x <= r.right():
                p.setPen(QPen(theme.qcolor(theme.BORDER), 1))
                p.drawLine(int(x), int(r.top()), int(x), int(r.bottom()))
                p.setPen(theme.qcolor(theme.DIM))
                p.drawText(QRectF(x + 3, full.top() + 3, 40, 14), Qt.AlignmentFlag.AlignLeft,
                           str(int(round(b / self.beats_per_bar)) + 1))
        p.setPen(QPen(theme.qcolor(theme.GRID), 1, Qt.PenStyle.DotLine))
        beat = float(int(start))
        while beat <= end:
            x = self._x(beat, r, start)
            if r.left() <= x <= r.right() and beat not in bars:
                p.drawLine(int(x), int(r.top()), int(x), int(r.bottom()))
            beat += 1.0
        p.setClipRect(r)
        played_keys = {(round(n[0], 3), n[1]) for n in self.played}
        p.setPen(Qt.PenStyle.NoPen)
        for onset, pitch, vel, dur in list(self.lookahead):
            if onset > self.playhead and (round(onset, 3), pitch) not in played_keys and onset < end:
                self._note(p, r, start, onset, pitch, dur, theme.qcolor(theme.ACCENT_DIM, 235))
        for onset, pitch, vel, dur in self.played:
            if onset + dur >= start and onset <= end:
                self._note(p, r, start, onset, pitch, dur, theme.qcolor(theme.ACCENT, 110 + min(145, int(vel * 1.15))))
        p.setClipping(False)
        x = self._x(self.playhead, r, start)
        p.setPen(QPen(theme.qcolor(theme.TEXT, 200), 1.5))
        p.drawLine(int(x), int(r.top()), int(x), int(r.bottom()))
        p.end()

    def _note(self, p: QPainter, r: QRectF, start: float, onset: float, pitch: int, dur: float, color) -> None:
        if not self.pitch_lo <= pitch <= self.pitch_hi:
            return
        x0 = self._x(onset, r, start)
        x1 = self._x(onset + max(dur, 0.0625), r, start)
        y = self._y(pitch, r)
        h = max(2.0, r.height() / (self.pitch_hi - self.pitch_lo + 1) - 1)
        p.setBrush(color)
        p.drawRoundedRect(QRectF(x0, y + 0.5, max(2.0, x1 - x0 - 1), h), 2, 2)
