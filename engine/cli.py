"""The ``moodroll`` command line.

Each subcommand is a small function here that parses its arguments and calls into the
engine; errors the user can fix (bad file, unknown port, corrupt bundle) print one clear
line on stderr and exit non-zero.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


class UserError(Exception):
    """An error with a message meant for the user (one line, no traceback)."""


def cmd_metrics(args) -> int:
    from engine.metrics import analyze_file

    failed = 0
    for f in args.files:
        row = analyze_file(f)
        failed += "error" in row
        print(json.dumps(row), flush=True)
    return 1 if failed and failed == len(args.files) else 0


def cmd_demo(args) -> int:
    """The README's main job: until a trained bundle ships, summarise an example MIDI."""
    from engine.metrics import analyze_file
    from engine.paths import EXAMPLES
    from engine.tokenizer import Tokenizer

    midi = Path(args.midi) if args.midi else EXAMPLES / "example.mid"
    tok = Tokenizer()
    ids = tok.encode(midi)
    print(f"tokenizer: MidiTok REMI, vocabulary {tok.vocab_size} tokens")
    print(f"{midi.name}: {len(ids)} tokens; first: {' '.join(tok.tokens(ids[:12]))}")
    print(json.dumps(analyze_file(midi), indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="moodroll", description="Picture -> emotion-matched piano MIDI.")
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("metrics", help="music metrics of MIDI files, one JSON object per line")
    m.add_argument("files", nargs="+")
    m.set_defaults(func=cmd_metrics)

    d = sub.add_parser("demo", help="tokenise and analyse an example MIDI file")
    d.add_argument("midi", nargs="?")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"moodroll: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
