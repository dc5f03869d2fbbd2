"""``moodroll bench``: registered by entry point (pyproject ``moodroll.commands``), so the engine's CLI
does not import the measuring harness and the installed program can leave it out."""
from __future__ import annotations

import json
from pathlib import Path


def register(sub, UserError) -> None:
    def cmd_bench(args) -> int:
        """Decoding speed, latencies and timing (tools/bench/run.py); one JSON object."""
        from engine.errors import first_line
        from engine.takes.files import write_atomic
        from tools.bench.run import run_bench

        try:
            result = run_bench(bundle=args.bundle, quick=args.quick, skip=set(args.skip or ()), device=args.device,
                               threads=args.threads)
        except ValueError as e:
            raise UserError(first_line(e)) from None
        text = json.dumps(result, indent=None if args.json else 1)
        if args.out:
            write_atomic(Path(args.out), (text + "\n").encode())
        print(text)
        return 0

    b = sub.add_parser("bench", help="decoding speed, first-note latency, timing error: one JSON object")
    b.add_argument("--json", action="store_true", help="compact one-line JSON")
    b.add_argument("--out", help="also write the JSON to this file")
    b.add_argument("--bundle", help="model bundle folder (default: assets/models/default)")
    b.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    b.add_argument("--skip", nargs="*", choices=("torch", "realtime", "flops", "batched", "int8", "larger"),
                   help="leave parts out")
    b.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    b.add_argument("--threads", type=int, help="intra-op threads for ONNX Runtime and torch (default: half the cores)")
    b.set_defaults(func=cmd_bench)
