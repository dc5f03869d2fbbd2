"""Put one measured section into a bundle's model card and refresh its manifest.

    python -m training.card_section --bundle assets/models/default --title "Emotion training and selection" \
        --select runs/emotion/select.json --va-search runs/va_head/search.json --notes FILE.md

The card's earlier sections (``training.model_card`` renders them from the training runs) stay as
they are; a section whose ``## `` title matches is replaced, otherwise it is appended. The
section is rendered from the JSON the measuring commands wrote (``training.select_emotion``,
``training.va_head_search``), with a free-text notes file (what changed, commands) around them.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from engine.model.bundle import write_manifest


def _f(x, nd=3) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


def select_table(results: dict) -> list[str]:
    """Judge r on the VA grid per bundle, attributes on (and off where measured)."""
    from training.select_emotion import summary
    rows = ["| bundle | attributes | judge valence r | judge arousal r | Music_Quality_Loss | degenerate | clips |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, res in results.items():
        for key in ("on", "off"):
            if key in res:
                s = summary(res[key])
                rows.append(f"| {name} | {key} | {_f(s['judge_r_valence'])} | {_f(s['judge_r_arousal'])} | "
                            f"{_f(s['mql'])} | {s['degenerate']} | {s['clips']} |")
    return rows


def va_search_table(rows: list[dict]) -> list[str]:
    out = ["| encoder | head | valence r | valence MAE | arousal r | arousal MAE |",
           "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        out.append(f"| {r['encoder']} | {r['head']} | {_f(r['valence_r'])} | {_f(r['valence_mae'])} | "
                   f"{_f(r['arousal_r'])} | {_f(r['arousal_mae'])} |")
    return out


def put_section(card: str, title: str, body: str) -> str:
    """Replace the ``## title`` section of ``card`` (up to the next ``## ``) or append it."""
    section = f"## {title}\n\n{body.strip()}\n"
    pat = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pat.search(card):
        return pat.sub(lambda _: section + "\n", card, count=1).rstrip() + "\n"
    return card.rstrip() + "\n\n" + section


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="write one measured section into a bundle's model card")
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--title", required=True)
    ap.add_argument("--notes", help="Markdown placed first (what changed, why)")
    ap.add_argument("--select", help="training.select_emotion JSON")
    ap.add_argument("--va-search", help="training.va_head_search JSON")
    ap.add_argument("--tail", help="Markdown placed last (commands)")
    args = ap.parse_args(argv)
    parts = [Path(args.notes).read_text()] if args.notes else []
    if args.select:
        parts += ["VA-only 5 × 5 grid (2..8), 2 clips per point, 15 s, emotion strength 2, heard VA by "
                  "`engine.emotion.judge` (`training.select_emotion`):", "", *select_table(json.loads(Path(args.select).read_text()))]
    if args.va_search:
        parts += ["", "Picture → VA on the OASIS hold-out (148 pictures, `split_oasis` seed 0; "
                  "`training.va_head_search`):", "", *va_search_table(json.loads(Path(args.va_search).read_text()))]
    if args.tail:
        parts += ["", Path(args.tail).read_text()]
    card_path = Path(args.bundle) / "model_card.md"
    card_path.write_text(put_section(card_path.read_text(), args.title, "\n".join(parts)))
    write_manifest(Path(args.bundle))
    print(f"wrote {card_path}")


if __name__ == "__main__":
    main()
