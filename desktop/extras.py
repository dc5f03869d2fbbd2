"""The panels another engineer builds (controls, takes, preview synth, variations), loaded if present.

Each loader returns the real widget when its module imports, else a clearly marked
placeholder that says what is missing, so the window always builds. Adapters for their
interfaces live here too, so the rest of the app does not care which version it got.
"""
from __future__ import annotations

from PyQt6.QtWidgets import QLabel


def _placeholder(what: str, module: str, err: Exception) -> QLabel:
    lab = QLabel(f"{what} are not available in this build\n({module}: {type(err).__name__}: {err})")
    lab.setObjectName("dim")
    lab.setWordWrap(True)
    return lab


def loading(text: str) -> QLabel:
    """What stands in a panel's place while the engine is imported."""
    lab = QLabel(text)
    lab.setObjectName("dim")
    return lab


def controls_panel(parent=None):
    """DESK-B's ControlsPanel: signal ``changed``; ``controls()``, ``sampling()``, ``load``/``save``."""
    try:
        from desktop.controls_panel import ControlsPanel
    except ImportError as e:
        return _placeholder("The musical controls", "desktop/controls_panel.py", e)
    return ControlsPanel(parent)


def takes_panel(parent=None):
    """DESK-B's TakesPanel: the ``takesList`` with file-URL drags, ``add_take``."""
    try:
        from desktop.takes_panel import TakesPanel
    except ImportError as e:
        return _placeholder("Takes", "desktop/takes_panel.py", e)
    return TakesPanel(parent)


def preview_module():
    """DESK-B's preview synth module (``available() -> (ok, reason)``), or None."""
    try:
        from desktop import preview
    except ImportError:
        return None
    return preview
