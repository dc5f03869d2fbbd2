"""The engine must import neither torch nor Qt (inference never imports training)."""
import pkgutil
import subprocess
import sys

import engine


def test_engine_imports_without_torch_or_qt():
    modules = sorted(m.name for m in pkgutil.walk_packages(engine.__path__, "engine.")
                     if not m.name.endswith("__main__"))
    assert "engine.music.tokenizer" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = [m for m in ('torch', 'PyQt6', 'training', 'desktop') if m in sys.modules]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
