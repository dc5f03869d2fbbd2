"""The ``/moodroll/*`` OSC control server: steer a live session from a DAW, a controller or a script.

Two threads of its own, neither of them the playback thread:

* the **receive thread** (:class:`engine.daw.oscio.OscSocket`) parses each datagram, checks
  it against :data:`engine.daw.protocol.MESSAGES` and calls the quick methods of the
  :class:`~engine.daw.protocol.Controllable` (they only queue steering for the next bar);
* the **worker thread** runs the slow ones — ``set_image`` (decode the picture, run the
  image encoder) and ``capture`` (write a file) — from a small bounded queue, so a flood of
  requests is refused with an error instead of piling up.

Every bad datagram (not OSC, unknown address, wrong count or types, out of range, a path that
is not a picture, a failing method) gets exactly one line on ``/moodroll/error`` sent to the
address it came from, and changes nothing. Binds 127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

from engine.daw.oscio import LOOPBACK, OscSocket
from engine.errors import first_line
from engine.daw.protocol import DEFAULT_PORT, ERROR, MAX_PICTURE_BYTES, MESSAGES, Controllable, check_args

MAX_ERROR_CHARS = 300


class OscControlServer:
    """Serves :data:`MESSAGES` to ``target`` on UDP ``host:port`` (``port=0``: any free port)."""

    def __init__(self, target: Controllable, host: str = LOOPBACK, port: int = DEFAULT_PORT,
                 queue_size: int = 4):
        missing = [m.method for m in MESSAGES.values() if not callable(getattr(target, m.method, None))]
        if missing:
            raise TypeError(f"the OSC target lacks {', '.join(missing)}")
        self.target = target
        self.socket = OscSocket(host, port, self._on_message, self._error, name="osc-server",
                                what="the OSC control")
        self.host, self.port = self.socket.host, self.socket.port
        self.handled = 0  # messages that did what they asked
        self.refused = 0  # error lines sent
        self._jobs: queue.Queue = queue.Queue(maxsize=queue_size)
        self._closed = threading.Event()
        self._worker = threading.Thread(target=self._work, name="moodroll-osc-worker", daemon=True)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "OscControlServer":
        self._worker.start()
        self.socket.start()
        return self

    def close(self) -> None:
        self._closed.set()
        self.socket.close()
        try:
            self._jobs.put_nowait(None)
        except queue.Full:
            pass
        if self._worker.is_alive():
            self._worker.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- the receive thread ----------------------------------------------------------------------
    def _on_message(self, address: str, args: list, sender: tuple, t: float) -> None:
        msg = MESSAGES.get(address)
        if msg is None:
            self._error(f"unknown address {address[:60]!r} (see docs/protocol.md)", sender)
            return
        try:
            values = check_args(msg, args)
        except ValueError as e:
            self._error(f"{address}: {e}", sender)
            return
        if msg.slow:
            try:
                self._jobs.put_nowait((msg, values, sender))
            except queue.Full:
                self._error(f"{address}: busy ({self._jobs.maxsize} requests waiting); try again", sender)
            return
        self._call(msg, values, sender)

    def _call(self, msg, values: list, sender: tuple) -> None:
        try:
            result = getattr(self.target, msg.method)(*values)
        except ValueError as e:
            self._error(f"{msg.address}: {first_line(e)}", sender)
            return
        except Exception as e:  # noqa: BLE001 - a broken target must not take the server down
            self._error(f"{msg.address}: failed ({type(e).__name__}: {first_line(e)})", sender)
            return
        self.handled += 1
        if msg.method == "status":
            self.socket.send(msg.address, result.args(), sender)
        elif msg.method == "set_image":
            self.socket.send(msg.address, [values[0], float(result[0]), float(result[1])], sender)
        elif msg.method == "capture":
            self.socket.send(msg.address, [values[0], str(result)], sender)

    def _error(self, line: str, sender: tuple) -> None:
        self.refused += 1
        self.socket.send(ERROR, [line.splitlines()[0][:MAX_ERROR_CHARS] if line else "error"], sender)

    # -- the worker thread -----------------------------------------------------------------------
    def _work(self) -> None:
        while not self._closed.is_set():
            job = self._jobs.get()
            if job is None:
                return
            msg, values, sender = job
            if msg.method == "set_image":
                problem = _picture_problem(values[0])
                if problem:
                    self._error(f"{msg.address}: {problem}", sender)
                    continue
            self._call(msg, values, sender)


def _picture_problem(path: str) -> str | None:
    """Why ``path`` cannot be a picture we read (before decoding it), or None."""
    p = Path(path).expanduser()
    try:
        if not p.is_file():
            return f"cannot read image {path}: no such file"
        size = os.stat(p).st_size
    except (OSError, ValueError) as e:
        return f"cannot read image {path}: {getattr(e, 'strerror', None) or e}"
    if size > MAX_PICTURE_BYTES:
        return f"cannot read image {path}: {size >> 20} MiB is too large for a picture"
    return None
