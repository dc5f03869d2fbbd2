"""Print the packaged build's requirements, one per line, from pyproject.toml.

The bundle ships the engine's core dependencies and the ``desktop`` extra, nothing of
``training`` (no torch, timm, onnx exporter, matplotlib). The changes: the CPU ``onnxruntime``
wheel instead of ``onnxruntime-gpu`` (docs/install.md argues why), and no OpenCV (:data:`LEFT_OUT`:
pictures are read through Pillow; webcam and video input, which need it, say so in one line).
Otherwise build.sh installs exactly what pyproject.toml lists, and a new desktop dependency
reaches the bundle without editing this folder.
"""
from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
BUILD_TOOLS = ["pyinstaller>=6.10"]
# OpenCV is 131 MB installed (its own FFmpeg and OpenBLAS), over half the 250 MB aim; the engine
# needs it only for capture (engine/picture/webcam.py).
LEFT_OUT = ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless")


def requirements(pyproject: Path = PYPROJECT) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    out = []
    for req in project["dependencies"] + project["optional-dependencies"].get("desktop", []):
        name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].lower()
        if name in ("onnxruntime-gpu", "onnxruntime"):
            continue  # one runtime, added below, for every platform
        if name in LEFT_OUT:
            continue
        out.append(req)
    spec = next(r for r in project["dependencies"] if r.lower().startswith("onnxruntime"))
    version = re.search(r"(>=|==|~=)[^;,\s]+", spec)
    out.append("onnxruntime" + (version.group(0) if version else ""))
    return out + BUILD_TOOLS


if __name__ == "__main__":
    sys.stdout.write("\n".join(requirements()) + "\n")
