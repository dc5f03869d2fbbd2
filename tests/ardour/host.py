"""A headless Ardour for the tests: ``ardour7-lua`` running tests/ardour/session.lua on a JACK
server of its own (dummy driver, synchronous mode, 256 frames).

Ardour 7.3 on JACK 1.9.21 can break the server while a session loads: its main thread
(releasing the JACK timebase) and its auto-connect thread (a port's pretty name, JACK
metadata) send requests on the one client channel at once, and jackd reads a garbled request
and drops the client ("CheckSize error", then "JACK HALTED"). It happens at load or never, so
:meth:`ArdourHost.start` tries again on a fresh server (measured: about one load in three).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tools.bench.realtime import JackServer

SCRIPT = Path(__file__).resolve().parent / "session.lua"
CLIENT = "Ardour Test"  # Ardour's JACK client name (never the server's: that would remove its socket)
PERIOD = 256


def available() -> bool:
    return shutil.which("ardour7-lua") is not None and JackServer.available()


def create_session(folder: Path, bpm: float) -> Path:
    """A session (Ardour's own dummy backend, no JACK): ``bpm`` in 4/4, a MIDI track "Moodroll"."""
    r = subprocess.run(["ardour7-lua", str(SCRIPT), "create", str(folder), folder.name, repr(float(bpm))],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout[-2000:] + r.stderr[-2000:]
    return folder


class ArdourHost:
    """The session running in Ardour on a private JACK server; ``roll()``, ``stop()`` -> notes."""

    def __init__(self, session: Path, attempts: int = 6):
        self.session, self.attempts = session, attempts
        self.server: JackServer | None = None
        self.proc: subprocess.Popen | None = None
        self.input = ""  # the track's MIDI input port, "Ardour Test:Moodroll/midi_in 1"
        self.clock_out = f"{CLIENT}:MIDI Clock out"
        self.tries = 0

    def _reply(self) -> list[str]:
        lines = []
        for line in iter(self.proc.stdout.readline, ""):
            line = line.rstrip("\n")
            if line == "ok":
                return lines
            if line.startswith("error") or line.startswith("Error:"):
                raise RuntimeError(f"Ardour: {line}")
            lines.append(line)
        raise RuntimeError("Ardour exited: " + "\n".join(lines[-20:]))

    def start(self) -> "ArdourHost":
        last = ""
        for self.tries in range(1, self.attempts + 1):
            self.server = JackServer(period=PERIOD, sync=True).start()
            self.proc = subprocess.Popen(["ardour7-lua", str(SCRIPT), "run", str(self.session), self.session.name, CLIENT],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True)
            try:
                lines = self._reply()
                if not any("JACK" in line and ("ERROR" in line or "HALTED" in line) for line in lines):
                    self.input = next(line.split(" ", 1)[1] for line in lines if line.startswith("input "))
                    return self
                last = "\n".join(lines[-5:])
            except RuntimeError as e:
                last = str(e)
            self.close()
        raise RuntimeError(f"Ardour did not start on JACK in {self.attempts} tries: {last}")

    def command(self, cmd: str) -> list[str]:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self._reply()

    def roll(self) -> None:
        self.command("roll")

    def stop(self) -> list[tuple[float, float, int, int]]:
        """Stop; the recorded notes as (quarter notes from the session start, length, pitch, velocity)."""
        out = []
        for line in self.command("stop"):
            if line.startswith("note "):
                q, length, pitch, vel = line.split()[1:]
                out.append((float(q), float(length), int(pitch), int(vel)))
        return out

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(30)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
