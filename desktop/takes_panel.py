"""The takes list: every autosaved phrase, capture and variation, newest first, ready to drag
into a DAW.

Each row paints a mini piano roll of the take's notes beside its name, valence/arousal, key,
tempo and length (:class:`TakeDelegate`, plain QPainter on the palette's colours so it suits
the app's dark theme). Dragging rows out hands over ``text/uri-list`` file URLs of the
``.mid`` files (:meth:`TakesModel.mimeData`): what Ableton Live, Reaper, Logic, Bitwig and
file managers accept from a drop. Actions: Save As (copy anywhere), Reveal in folder, Send to
Live (emits ``sendToLive``; the DAW bridge does the rest), Delete (to the system trash, or
with a confirmation where there is none). Double-click or Enter emits ``takeActivated``.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PyQt6.QtCore import QAbstractListModel, QMimeData, QModelIndex, QRectF, QSize, Qt, QUrl, pyqtSignal
from PyQt6.QtGui import QAction, QColor, QDesktopServices, QFont, QKeySequence, QPainter, QPalette, QPen
from PyQt6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QListView, QMenu, QMessageBox,
                             QStyle, QStyledItemDelegate, QToolButton, QVBoxLayout, QWidget)

try:  # the app's named colours when the theme is there; else the palette alone
    from desktop.theme import ACCENT, WARM
except ImportError:  # pragma: no cover
    ACCENT, WARM = "#4cc2ff", "#ffb454"

ROW_H = 58
ROLL_W = 112


def describe(take) -> str:
    """One line of facts: ``V 6.5 · A 3.2 · C minor · 110 BPM · 8 bars · 0:17``."""
    return " · ".join(facts(take))


def facts(take) -> list[str]:
    """The facts of :func:`describe`, most important first."""
    parts = []
    if take.valence is not None:
        parts.append(f"V {take.valence:.1f} · A {take.arousal:.1f}")
    if take.key:
        parts.append(str(take.key))
    if take.bpm:
        parts.append(f"{take.bpm:.0f} BPM")
    if take.bars:
        parts.append(f"{take.bars} bar" + ("s" if take.bars != 1 else ""))
    if take.seconds is not None:
        s = int(round(take.seconds))
        parts.append(f"{s // 60}:{s % 60:02d}")
    return parts


def title(take, now: float | None = None) -> str:
    """``Take 20:31:05``: what made it and when (with the day when not today)."""
    import time

    kind = {"take": "Take", "capture": "Capture", "variation": "Variation"}.get(take.meta.kind, "Take")
    when = ""
    if take.created:
        t = time.localtime(take.created)
        today = time.localtime(now if now is not None else time.time())[:3] == t[:3]
        when = time.strftime("%H:%M:%S" if today else "%d %b %H:%M", t)
    return f"{kind} {when}" if when else take.path.stem


def reveal_command(path: Path) -> list[str] | None:
    """The command that shows ``path`` selected in the OS file manager (None: open the folder)."""
    if sys.platform == "darwin":
        return ["open", "-R", str(path)]
    if sys.platform == "win32":
        return ["explorer", f"/select,{path}"]
    return None  # Linux file managers differ; the folder is opened instead


class TakesModel(QAbstractListModel):
    """The takes, newest first; drags out as ``.mid`` file URLs."""

    TakeRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent=None):
        super().__init__(parent)
        self.takes: list = []

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt's names
        return 0 if parent.isValid() else len(self.takes)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.takes):
            return None
        t = self.takes[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return t.path.stem
        if role == Qt.ItemDataRole.ToolTipRole:
            src = f"\nfrom {t.source}" if t.source else ""
            return f"{t.path.name}\n{describe(t)}{src}\nDrag into your DAW, or double-click to open"
        if role == self.TakeRole:
            return t
        return None

    def flags(self, index):
        f = super().flags(index)
        return f | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else f

    def mimeTypes(self) -> list[str]:  # noqa: N802
        return ["text/uri-list"]

    def mimeData(self, indexes) -> QMimeData:  # noqa: N802
        """The selected takes' ``.mid`` files as file URLs (what DAWs accept from a drag)."""
        rows = sorted({i.row() for i in indexes if i.isValid()})
        md = QMimeData()
        md.setUrls([QUrl.fromLocalFile(str(self.takes[r].path.resolve())) for r in rows])
        return md

    def supportedDragActions(self):  # noqa: N802
        return Qt.DropAction.CopyAction

    # -- editing -----------------------------------------------------------------------------
    def set_takes(self, takes) -> None:
        self.beginResetModel()
        self.takes = sorted(takes, key=lambda t: t.created or 0.0, reverse=True)
        self.endResetModel()

    def add(self, take) -> int:
        """Insert (or replace, same path) a take at its place, newest first; returns its row."""
        for r, t in enumerate(self.takes):
            if t.path == take.path:
                self.takes[r] = take
                self.dataChanged.emit(self.index(r), self.index(r))
                return r
        r = 0
        while r < len(self.takes) and (self.takes[r].created or 0.0) > (take.created or 0.0):
            r += 1
        self.beginInsertRows(QModelIndex(), r, r)
        self.takes.insert(r, take)
        self.endInsertRows()
        return r

    def remove(self, path: Path) -> None:
        for r, t in enumerate(self.takes):
            if t.path == path:
                self.beginRemoveRows(QModelIndex(), r, r)
                del self.takes[r]
                self.endRemoveRows()
                return


class TakeDelegate(QStyledItemDelegate):
    """A row: mini piano roll | name over facts. Colours from the palette, notes in the accent."""

    def sizeHint(self, option, index) -> QSize:  # noqa: N802
        return QSize(200, ROW_H)

    def paint(self, p: QPainter, option, index) -> None:
        take = index.data(TakesModel.TakeRole)
        if take is None:
            return
        pal = option.palette
        r = option.rect.adjusted(4, 3, -4, -3)
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hover = bool(option.state & QStyle.StateFlag.State_MouseOver)
        if selected or hover:
            bg = pal.color(QPalette.ColorRole.Highlight)
            if not selected:
                bg.setAlpha(70)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(bg)
            p.drawRoundedRect(QRectF(r), 5, 5)
        roll = QRectF(r.left() + 6, r.top() + 5, ROLL_W, r.height() - 10)
        self._paint_roll(p, roll, take, pal)
        tx = int(roll.right()) + 12
        text_w = r.right() - tx - 6
        name_font = QFont(option.font)
        name_font.setBold(True)
        p.setFont(name_font)
        p.setPen(pal.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text))
        fm = p.fontMetrics()
        name = title(take)
        p.drawText(tx, r.top() + 6 + fm.ascent(), name)
        name_w = fm.horizontalAdvance(name)
        small = QFont(option.font)
        small.setPointSizeF(max(7.0, small.pointSizeF() * 0.86))
        p.setFont(small)
        dim = pal.color(QPalette.ColorRole.PlaceholderText)
        p.setPen(dim if not selected else pal.color(QPalette.ColorRole.HighlightedText))
        fm2 = p.fontMetrics()
        if take.source and text_w - name_w > 40:  # where it came from, right-aligned beside the name
            src = fm2.elidedText(str(take.source), Qt.TextElideMode.ElideMiddle, text_w - name_w - 16)
            p.drawText(QRectF(tx, r.top() + 6, text_w, fm.height()),
                       int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), src)
        shown = facts(take)  # as many whole facts as fit, most important first
        while len(shown) > 1 and fm2.horizontalAdvance(" · ".join(shown)) > text_w:
            shown.pop()
        line = fm2.elidedText(" · ".join(shown), Qt.TextElideMode.ElideRight, text_w)
        p.drawText(tx, r.bottom() - 7 - fm2.descent(), line)
        p.restore()

    @staticmethod
    def _paint_roll(p: QPainter, box: QRectF, take, pal) -> None:
        base = pal.color(QPalette.ColorRole.Base).darker(125)
        p.setPen(QPen(pal.color(QPalette.ColorRole.Mid), 0.6))
        p.setBrush(base)
        p.drawRoundedRect(box, 3, 3)
        notes = take.notes
        if notes is None or not len(notes):
            return
        length = max(int(notes.length), int(notes.end.max()), 1)
        lo, hi = int(notes.pitch.min()), int(notes.pitch.max())
        lo, hi = lo - 2, hi + 2  # a little air above and below
        inner = box.adjusted(3, 3, -3, -3)
        bars = take.bars or 0
        if bars > 1:  # faint bar lines
            grid = pal.color(QPalette.ColorRole.Mid)
            grid.setAlpha(90)
            p.setPen(QPen(grid, 0.5))
            for b in range(1, bars):
                x = inner.left() + inner.width() * b / bars
                p.drawLine(int(x), int(inner.top()), int(x), int(inner.bottom()))
        sx = inner.width() / length
        row_h = max(1.2, inner.height() / (hi - lo + 1))
        color = QColor(WARM if (take.valence or 5.0) >= 5.0 else ACCENT)
        p.setPen(Qt.PenStyle.NoPen)
        for s, e, pitch, vel in zip(notes.start.tolist(), notes.end.tolist(), notes.pitch.tolist(),
                                    notes.velocity.tolist()):
            c = QColor(color)
            c.setAlpha(110 + vel)
            p.setBrush(c)
            y = inner.bottom() - (pitch - lo + 1) * inner.height() / (hi - lo + 1)
            p.drawRect(QRectF(inner.left() + s * sx, y, max(1.0, (e - s) * sx), row_h))


class TakesView(QListView):
    """The list, with a hint painted while it is empty."""

    def paintEvent(self, e) -> None:  # noqa: N802
        super().paintEvent(e)
        if self.model() is not None and self.model().rowCount() == 0:
            p = QPainter(self.viewport())
            p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.viewport().rect().adjusted(16, 16, -16, -16),
                       Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       "Every phrase you play is saved here as a take.\n"
                       "Drag a take into Ableton Live or Reaper, or press Ctrl+E to capture the last bars.")


class TakesPanel(QWidget):
    """The takes list and its actions. ``store`` (an :class:`engine.takes.store.TakeStore`) may come
    later through :meth:`set_store`; without one the panel shows what it is given."""

    takeActivated = pyqtSignal(str)
    sendToLive = pyqtSignal(str)
    error = pyqtSignal(str)  # one line for the status bar (a failed export or delete)

    def __init__(self, store=None, parent=None):
        if isinstance(store, QWidget) and parent is None:  # TakesPanel(parent) also works
            store, parent = None, store
        super().__init__(parent)
        self.store = store
        self.model = TakesModel(self)
        self.view = TakesView(objectName="takesList")
        self.view.setModel(self.model)
        self.view.setItemDelegate(TakeDelegate(self.view))
        self.view.setUniformItemSizes(True)
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.setStyleSheet("QScrollBar::add-line, QScrollBar::sub-line { height: 0; width: 0; border: 0; }")
        self.view.setMouseTracking(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setDragEnabled(True)
        self.view.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.view.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.setToolTip("Your takes, newest first. Drag one (or several) into your DAW's arrangement")
        self.view.doubleClicked.connect(lambda i: self.takeActivated.emit(str(self.model.takes[i.row()].path)))
        self.view.customContextMenuRequested.connect(self._menu)
        self.view.selectionModel().selectionChanged.connect(self._update_actions)

        def action(text, tip, slot, key=None, name=None):
            a = QAction(text, self)
            a.setToolTip(tip)
            a.setStatusTip(tip)
            if key:
                a.setShortcut(QKeySequence(key))
                a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            a.triggered.connect(slot)
            if name:
                a.setObjectName(name)
            self.addAction(a)
            return a

        self.saveAsAction = action("Save As…", "Save a copy of the selected take anywhere (Ctrl+Shift+S)",
                                   self.save_as, "Ctrl+Shift+S", "saveAsAction")
        self.revealAction = action("Reveal", "Show the take's file in the file manager", self.reveal,
                                   name="revealAction")
        self.sendAction = action("Send to Live", "Put the selected take into the track selected in Ableton Live, in its first "
                                 "empty clip slot from the selected scene down (needs AbletonOSC)",
                                 self._send, name="sendToLiveAction")
        self.deleteAction = action("Delete", "Move the selected takes to the trash (Del)", self.delete_selected,
                                   QKeySequence.StandardKey.Delete, "deleteAction")
        self.openAction = action("Open", "Load the take (Enter)", self._activate, "Return")

        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.setSpacing(6)
        for a in (self.saveAsAction, self.revealAction, self.sendAction):
            bar.addWidget(self._button(a))
        bar.addStretch(1)
        bar.addWidget(self._button(self.deleteAction))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        lay.addWidget(self.view, 1)
        lay.addLayout(bar)
        self._update_actions()
        if store is not None:
            self.refresh()

    def _button(self, a: QAction) -> QToolButton:
        b = QToolButton()
        b.setDefaultAction(a)
        b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        return b

    # -- contents -----------------------------------------------------------------------------
    def set_store(self, store) -> None:
        self.store = store
        self.refresh()

    def refresh(self) -> None:
        """Read the takes folder again (cached per file, so cheap after the first time)."""
        if self.store is not None:
            self.set_takes(self.store.list())

    def set_takes(self, takes) -> None:
        self.model.set_takes(list(takes))
        self._update_actions()

    def add_take(self, take) -> None:
        """Show a new take (at the top when it is the newest) and select it."""
        r = self.model.add(take)
        self.view.setCurrentIndex(self.model.index(r))
        self.view.scrollTo(self.model.index(r))
        self._update_actions()

    def takes(self) -> list:
        return list(self.model.takes)

    def selected(self) -> list:
        rows = sorted({i.row() for i in self.view.selectionModel().selectedIndexes()})
        return [self.model.takes[r] for r in rows]

    def select(self, path) -> None:
        for r, t in enumerate(self.model.takes):
            if t.path == Path(path):
                self.view.setCurrentIndex(self.model.index(r))

    def _update_actions(self, *_):
        n = len(self.selected())
        for a in (self.saveAsAction, self.revealAction, self.sendAction, self.openAction):
            a.setEnabled(n == 1)
        self.deleteAction.setEnabled(n >= 1)

    def _menu(self, pos) -> None:
        if not self.view.indexAt(pos).isValid():
            return
        m = QMenu(self)
        for a in (self.openAction, self.saveAsAction, self.revealAction, self.sendAction, None, self.deleteAction):
            m.addSeparator() if a is None else m.addAction(a)
        m.exec(self.view.viewport().mapToGlobal(pos))

    # -- actions ------------------------------------------------------------------------------
    def _activate(self) -> None:
        sel = self.selected()
        if len(sel) == 1:
            self.takeActivated.emit(str(sel[0].path))

    def _send(self) -> None:
        sel = self.selected()
        if len(sel) == 1:
            self.sendToLive.emit(str(sel[0].path))

    def save_as(self) -> None:
        sel = self.selected()
        if len(sel) != 1:
            return
        dest, _ = QFileDialog.getSaveFileName(self, "Save take as", str(Path.home() / sel[0].path.name),
                                              "MIDI files (*.mid *.midi)")
        if dest:
            self.export(sel[0], dest)

    def export(self, take, dest) -> Path | None:
        """Copy a take to ``dest`` (atomically; ``.mid`` added when missing). None + ``error`` on failure."""
        from engine.takes.files import write_atomic

        dest = Path(dest)
        if dest.suffix.lower() not in (".mid", ".midi"):
            dest = dest.with_suffix(".mid")
        try:
            write_atomic(dest, Path(take.path).read_bytes())
        except OSError as e:
            self.error.emit(f"cannot export {Path(take.path).name}: {e}")
            return None
        return dest

    def reveal(self) -> None:
        sel = self.selected()
        if len(sel) != 1:
            return
        cmd = reveal_command(sel[0].path)
        try:
            if cmd is not None:
                subprocess.Popen(cmd)
                return
        except OSError:
            pass
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(sel[0].path.parent)))

    def delete_selected(self, confirm: bool = True) -> int:
        """Move the selected takes to the system trash; where there is none, delete them for good
        after a confirmation (``confirm=False`` skips it). Returns how many went."""
        from PyQt6.QtCore import QFile

        sel = self.selected()
        gone, stuck = 0, []
        for t in sel:
            try:
                QFile.moveToTrash(str(t.path))  # (ok, path in the trash); the file's absence tells
            except (OSError, TypeError):
                pass
        for t in sel:
            if not t.path.exists():
                self._forget(t.path)
                gone += 1
            else:
                stuck.append(t)
        if stuck:
            ask = (QMessageBox.question(self, "Delete takes", f"There is no trash here. Delete {len(stuck)} "
                                        "take(s) for good?") == QMessageBox.StandardButton.Yes) if confirm else True
            if ask:
                for t in stuck:
                    try:
                        Path(t.path).unlink(missing_ok=True)
                        self._forget(t.path)
                        gone += 1
                    except OSError as e:
                        self.error.emit(f"cannot delete {t.path.name}: {e.strerror or e}")
        self._update_actions()
        return gone

    def _forget(self, path: Path) -> None:
        self.model.remove(path)
