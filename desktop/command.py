"""``moodroll app``: registered by entry point (pyproject ``moodroll.commands``; the frozen program passes
it to :func:`engine.cli.main`), so the engine never imports the app. Qt is imported only when it runs."""
from __future__ import annotations


def register(sub, UserError) -> None:
    def cmd_app(args) -> int:
        try:
            from desktop.app import main as app_main
        except ImportError as e:
            raise UserError(f"the desktop app needs PyQt6: pip install 'moodroll[desktop]' ({e})") from None
        argv = (["--bundle", args.bundle] if args.bundle else []) + (["--midi-api", args.midi_api] if args.midi_api else [])
        return app_main(argv + ([args.image] if args.image else []))

    ap = sub.add_parser("app", help="the desktop app: drop a picture or start the webcam, play into the DAW")
    ap.add_argument("image", nargs="?", help="a picture to start with")
    ap.add_argument("--bundle", help="model bundle folder (default: assets/models/default)")
    ap.add_argument("--midi-api", help="jack, alsa, coremidi or winmm (default: the platform's)")
    ap.set_defaults(func=cmd_app)
