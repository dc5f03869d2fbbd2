"""The dark theme: muted greys that sit beside a DAW, one accent for what is live.

Colours are named once here and used by the painted widgets (emotion plane, piano roll) and
the style sheet, so the whole window agrees.
"""
from __future__ import annotations

from PyQt6.QtGui import QColor, QFont, QPalette

from engine.paths import ASSETS

BG = "#15171c"  # window
PANEL = "#1c1f26"  # panels, painted widgets
RAISED = "#252932"  # buttons, inputs
BORDER = "#2e333d"
GRID = "#2a2e37"
TEXT = "#d8dbe2"
DIM = "#8b919d"
ACCENT = "#4cc2ff"  # live: playhead, played notes, the puck
ACCENT_DIM = "#2a5f7d"  # decoded look-ahead
WARM = "#ffb454"  # the picture's estimate
HEARD = "#7ee0a1"  # what the music sounds like (heard VA trail)
PLAY = "#37c871"
STOP = "#e0555f"


def qcolor(hex_: str, alpha: int = 255) -> QColor:
    c = QColor(hex_)
    c.setAlpha(alpha)
    return c


ICONS = (ASSETS / "icons").as_posix()  # Qt style sheets want forward slashes, also on Windows

STYLE = f"""
QWidget {{ background: {BG}; color: {TEXT}; font-size: 10pt; }}
QToolTip {{ background: {RAISED}; color: {TEXT}; border: 1px solid {BORDER}; padding: 4px; }}
QFrame#panel, QGroupBox {{ background: {PANEL}; border: 1px solid {BORDER}; border-radius: 6px; }}
QGroupBox {{ margin-top: 14px; padding-top: 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; color: {DIM}; }}
QLabel, QWidget#row {{ background: transparent; }}
QLabel#statusLabel {{ padding: 2px 8px; }}
QLabel#title {{ font-size: 15pt; font-weight: 600; letter-spacing: 1px; }}
QLabel#dim, QLabel#caption {{ color: {DIM}; }}
QLabel#attributes {{ color: {TEXT}; font-weight: 600; }}
QPushButton, QToolButton, QComboBox, QSpinBox, QDoubleSpinBox, QLineEdit {{
  background: {RAISED}; border: 1px solid {BORDER}; border-radius: 5px; padding: 5px 10px; }}
QPushButton:hover, QToolButton:hover, QComboBox:hover {{ border-color: {ACCENT_DIM}; }}
QPushButton:pressed, QToolButton:pressed {{ background: {BORDER}; }}
QPushButton:checked, QToolButton:checked {{ background: {ACCENT_DIM}; border-color: {ACCENT}; }}
QPushButton:disabled, QToolButton:disabled {{ color: #5a606b; }}
QPushButton#playButton {{ background: #1f3a2b; border-color: {PLAY}; color: #dff7e8; font-weight: 600; min-width: 74px; }}
QPushButton#playButton:checked {{ background: {PLAY}; color: #0d1a12; }}
QPushButton#stopButton {{ min-width: 60px; }}
QSpinBox, QDoubleSpinBox {{ padding-right: 20px; }}
QSpinBox::up-button, QDoubleSpinBox::up-button, QSpinBox::down-button, QDoubleSpinBox::down-button {{
  subcontrol-origin: border; width: 18px; background: {RAISED}; border-left: 1px solid {BORDER}; }}
QSpinBox::up-button, QDoubleSpinBox::up-button {{ subcontrol-position: top right; border-top-right-radius: 5px; }}
QSpinBox::down-button, QDoubleSpinBox::down-button {{ subcontrol-position: bottom right; border-bottom-right-radius: 5px; }}
QSpinBox::up-button:hover, QDoubleSpinBox::up-button:hover, QSpinBox::down-button:hover,
QDoubleSpinBox::down-button:hover {{ background: {BORDER}; }}
QSpinBox::up-arrow, QDoubleSpinBox::up-arrow {{ image: url({ICONS}/arrow-up.svg); width: 8px; height: 5px; }}
QSpinBox::down-arrow, QDoubleSpinBox::down-arrow, QComboBox::down-arrow {{
  image: url({ICONS}/arrow-down.svg); width: 8px; height: 5px; }}
QToolButton[popupMode="1"] {{ padding-right: 24px; }}
QToolButton::menu-button {{ width: 20px; border: none; border-left: 1px solid {BORDER};
  border-top-right-radius: 5px; border-bottom-right-radius: 5px; }}
QToolButton::menu-button:hover {{ background: {BORDER}; }}
QToolButton::menu-arrow {{ image: url({ICONS}/arrow-down.svg); width: 8px; height: 5px; }}
QComboBox {{ padding-right: 24px; }}
QComboBox::drop-down {{ subcontrol-origin: padding; subcontrol-position: center right; width: 22px; border: none; }}
QComboBox QAbstractItemView {{ background: {RAISED}; selection-background-color: {ACCENT_DIM}; }}
QProgressBar {{ background: {RAISED}; border: 1px solid {BORDER}; border-radius: 4px; height: 10px;
  text-align: center; color: {DIM}; font-size: 8pt; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 3px; }}
QSlider::groove:horizontal {{ height: 4px; background: {BORDER}; border-radius: 2px; }}
QSlider::handle:horizontal {{ background: {ACCENT}; width: 12px; margin: -5px 0; border-radius: 6px; }}
QSplitter::handle {{ background: {BG}; }}
QListView, QListWidget, QTreeView {{ background: {PANEL}; border: 1px solid {BORDER}; border-radius: 6px; }}
QListView::item:selected, QListWidget::item:selected {{ background: {ACCENT_DIM}; }}
QStatusBar {{ background: {PANEL}; border-top: 1px solid {BORDER}; }}
QMenu {{ background: {RAISED}; border: 1px solid {BORDER}; }}
QMenu::item:selected {{ background: {ACCENT_DIM}; }}
QScrollBar:vertical {{ background: {PANEL}; width: 10px; }}
QScrollBar::handle:vertical {{ background: {BORDER}; border-radius: 4px; }}
"""


def apply(app) -> None:
    """Dark palette (for native parts the style sheet does not reach) + the style sheet."""
    app.setStyle("Fusion")
    pal = QPalette()
    for role, hex_ in ((QPalette.ColorRole.Window, BG), (QPalette.ColorRole.Base, PANEL),
                       (QPalette.ColorRole.AlternateBase, RAISED), (QPalette.ColorRole.Button, RAISED),
                       (QPalette.ColorRole.Text, TEXT), (QPalette.ColorRole.WindowText, TEXT),
                       (QPalette.ColorRole.ButtonText, TEXT), (QPalette.ColorRole.Highlight, ACCENT_DIM),
                       (QPalette.ColorRole.HighlightedText, TEXT), (QPalette.ColorRole.ToolTipBase, RAISED),
                       (QPalette.ColorRole.ToolTipText, TEXT), (QPalette.ColorRole.PlaceholderText, DIM)):
        pal.setColor(role, QColor(hex_))
    app.setPalette(pal)
    font = QFont(app.font())
    font.setPointSizeF(10)
    app.setFont(font)
    app.setStyleSheet(STYLE)
