"""Frozen entry point of both packaged programs (PyInstaller runs this as __main__).

Started as ``moodroll-app`` (the Windows/macOS windowed executable, or the Linux link to the
one executable) it runs the desktop app, otherwise the ``moodroll`` command line.
"""
import multiprocessing
import sys
from pathlib import Path


def program() -> str:
    name = Path(sys.argv[0]).name.lower()
    return "app" if name.startswith("moodroll-app") or name == "moodroll.app" else "cli"


if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen child process must not rerun the program
    if program() == "app":
        from desktop.app import main

        sys.exit(main())
    from engine.cli import main

    try:  # a frozen program has no entry-point metadata: the app's command is passed in
        from desktop.command import register
        commands = [("app", register)]
    except ImportError:  # the CLI-only build
        commands = []
    sys.exit(main(commands=commands))
