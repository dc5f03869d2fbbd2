"""Where the installed size goes: the PyInstaller folder's files grouped by component (MiB).

    python desktop/packaging/sizes.py [dist/moodroll]      # a Markdown table, largest first

build.sh prints it after every build; docs/install.md quotes it.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

# (component, pattern on the path inside the folder); the first match wins.
PARTS = [
    ("OpenCV (cv2 + its FFmpeg, OpenBLAS, codecs)", r"(^|/)(cv2|opencv_python\w*\.libs)/"),
    ("Qt 6 + PyQt6", r"(^|/)PyQt6/"),
    ("NumPy (+ its OpenBLAS)", r"(^|/)numpy(\.libs)?/"),
    ("ONNX Runtime, CPU", r"(^|/)onnxruntime/"),
    ("the model (assets/models/default)", r"^_internal/assets/models/"),
    ("examples, icons", r"^_internal/assets/"),
    ("MidiTok's imports (tokenizers, huggingface_hub, yaml)", r"(^|/)(tokenizers|huggingface_hub|yaml|_yaml)/"),
    ("pretty_midi (its SoundFont: the app's preview)", r"(^|/)pretty_midi/"),
    ("symusic", r"(^|/)symusic/"),
    ("Python 3.11 runtime", r"(^|/)(libpython[\d.]+\.so[\d.]*|python3\.\d+/|base_library\.zip|lib-dynload/)"),
    ("OpenSSL", r"(^|/)lib(ssl|crypto)[\w.-]*\.so"),
    ("the executable (its archive holds all Python code)", r"^moodroll(\.exe)?$"),
]


def sizes(folder: Path) -> list[tuple[str, float]]:
    totals: dict[str, int] = {}
    for f in folder.rglob("*"):
        if f.is_file() and not f.is_symlink():
            rel = f.relative_to(folder).as_posix()
            part = next((name for name, pat in PARTS if re.search(pat, rel)), "other libraries and packages")
            totals[part] = totals.get(part, 0) + f.stat().st_size
    return sorted(((k, v / 2**20) for k, v in totals.items()), key=lambda kv: -kv[1])


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "dist/moodroll")
    rows = sizes(folder)
    print("| part | MiB |\n| --- | ---: |")
    for name, mib in rows:
        print(f"| {name} | {mib:.1f} |")
    total = sum(m for _, m in rows)
    print(f"| **all files** | **{total:.1f}** ({total * 2**20 / 1e6:.0f} MB) |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
