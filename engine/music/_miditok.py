"""Import MidiTok without pulling torch into the engine.

``import miditok`` tries ``from miditok import pytorch_data`` (which imports torch) inside a
``try/except ImportError``. The engine must stay torch-free, so when torch is not already
loaded we import MidiTok with a finder that refuses ``torch``; MidiTok then simply skips its
optional PyTorch helpers. Training code that has imported torch first is unaffected.
"""
from __future__ import annotations

import importlib.abc
import sys


class _RefuseTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):  # noqa: D102
        if fullname == "torch" or fullname.startswith("torch."):
            raise ImportError("moodroll.engine imports MidiTok without torch")
        return None


def _import_miditok():
    if "miditok" in sys.modules or "torch" in sys.modules:
        import miditok
        return miditok
    finder = _RefuseTorch()
    sys.meta_path.insert(0, finder)
    try:
        import miditok
    finally:
        sys.meta_path.remove(finder)
    return miditok


miditok = _import_miditok()
