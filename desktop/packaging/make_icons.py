"""Render assets/icons/moodroll.svg to the PNG sizes, the Windows .ico and the macOS .icns.

The SVG is the one source; Qt's SVG renderer draws each size (so small sizes are rendered,
not downscaled blurs) and Pillow packs them into .ico/.icns. Run once after editing the SVG:
``.venv/bin/python desktop/packaging/make_icons.py`` (the outputs are committed).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parents[2] / "assets" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)


def render(svg: Path, size: int, out: Path) -> None:
    from PyQt6.QtCore import Qt
    from PyQt6.QtGui import QImage, QPainter
    from PyQt6.QtSvg import QSvgRenderer

    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    QSvgRenderer(str(svg)).render(painter)
    painter.end()
    if not image.save(str(out)):
        raise OSError(f"cannot write {out}")


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PyQt6.QtGui import QGuiApplication

    app = QGuiApplication(sys.argv[:1])  # noqa: F841 (Qt needs an application to paint)
    svg = ICONS / "moodroll.svg"
    pngs = {}
    for size in SIZES:
        pngs[size] = ICONS / f"moodroll-{size}.png"
        render(svg, size, pngs[size])
    big = Image.open(pngs[1024]).convert("RGBA")
    ico_sizes = [s for s in SIZES if s <= 256]
    Image.open(pngs[256]).save(ICONS / "moodroll.ico", sizes=[(s, s) for s in ico_sizes])
    big.save(ICONS / "moodroll.icns")
    print(f"wrote {len(pngs)} PNGs, moodroll.ico, moodroll.icns in {ICONS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
