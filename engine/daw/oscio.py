"""One UDP socket, read by its own thread; every datagram parsed into OSC messages by python-osc.

Why not python-osc's own servers: they drop a datagram that is not OSC without telling
anyone, and Moodroll answers every bad datagram with one line on ``/moodroll/error`` to its
sender. So :class:`OscSocket` reads datagrams itself, parses them with python-osc's
:class:`~pythonosc.osc_packet.OscPacket` (bundles are flattened, nested ones too) and calls

    ``on_message(address, args, sender, t)``  for each message, ``t`` = arrival on :func:`time.monotonic`
    ``on_bad(reason, sender)``               for a datagram that is not OSC
    ``on_tick(now)``                         before every read (at least every 0.2 s)

on the socket's thread. Nothing a handler raises stops the thread (it is counted in
``errors`` and passed to ``on_bad``). :meth:`send` builds a message with python-osc and sends
it from the same socket, so a peer that answers the sender's address reaches us.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Callable, Sequence

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

MAX_DATAGRAM = 65536
RECEIVE_BUFFER = 1 << 21


class _QuietPythonOsc(logging.Filter):
    """python-osc logs a warning on the root logger for every odd datagram it parses; we answer
    those ourselves (one error line to the sender), so a flood of junk must not flood stderr."""

    folder = os.path.dirname(os.path.abspath(OscPacket.__module__ and __import__("pythonosc").__file__))

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.WARNING and record.pathname.startswith(self.folder))


logging.getLogger().addFilter(_QuietPythonOsc())
LOOPBACK = "127.0.0.1"


class OscPortError(OSError):
    """A UDP port that cannot be opened; the message is one line for the user."""


def build(address: str, args: Sequence = ()) -> bytes:
    """One OSC message as bytes (python-osc infers the types: int i, float f, str s, bool T/F)."""
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def parse(data: bytes) -> list[tuple[str, list]]:
    """A datagram -> ``[(address, args), ...]``; raises ValueError (one line) if it is not OSC."""
    try:
        return [(m.message.address, list(m.message.params)) for m in OscPacket(data).messages]
    except Exception as e:  # ParseError, and whatever odd bytes make the parser trip over
        raise ValueError(f"not an OSC packet ({type(e).__name__})") from None


class OscSocket:
    """A bound UDP socket and the thread that reads it (see the module docstring)."""

    def __init__(self, host: str = LOOPBACK, port: int = 0,
                 on_message: Callable[[str, list, tuple, float], None] | None = None,
                 on_bad: Callable[[str, tuple], None] | None = None, name: str = "osc",
                 what: str = "OSC", on_tick: Callable[[float], None] | None = None):
        self.on_message, self.on_bad, self.on_tick, self.name = on_message, on_bad, on_tick, name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:  # room for a burst (the default holds ~250 small datagrams); the OS may give less
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        except OSError:
            pass
        try:
            self.sock.bind((host, int(port)))
        except (OSError, OverflowError, ValueError) as e:
            self.sock.close()
            why = "in use by another program" if getattr(e, "errno", None) in (98, 48, 10048) else (
                getattr(e, "strerror", None) or str(e))
            raise OscPortError(f"cannot open {what} port {host}:{port}: {why}") from None
        self.sock.settimeout(0.2)  # the thread checks for close() this often
        self.host, self.port = self.sock.getsockname()[:2]
        self.received = 0  # datagrams read
        self.errors = 0  # datagrams that were not OSC, or whose handler raised
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"moodroll-{name}", daemon=True)

    def start(self) -> "OscSocket":
        self._thread.start()
        return self

    def send(self, address: str, args: Sequence, to: tuple) -> bool:
        """Send one message to ``to`` = (host, port); False (never raises) when it cannot be sent."""
        try:
            self.sock.sendto(build(address, args), to)
            return True
        except (OSError, ValueError, TypeError, OverflowError):
            return False

    def close(self) -> None:
        self._closed.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(2)
        self.sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def _run(self) -> None:
        recv, monotonic = self.sock.recvfrom, time.monotonic
        while not self._closed.is_set():
            if self.on_tick is not None:
                try:
                    self.on_tick(monotonic())
                except Exception:  # noqa: BLE001
                    self.errors += 1
            try:
                data, sender = recv(MAX_DATAGRAM)
            except socket.timeout:
                continue
            except OSError:  # e.g. Windows reports an unreachable earlier receiver here; or closed
                if self._closed.is_set():
                    return
                continue
            t = monotonic()
            self.received += 1
            try:
                messages = parse(data)
            except ValueError as e:
                self._bad(str(e), sender)
                continue
            for address, args in messages:
                try:
                    if self.on_message is not None:
                        self.on_message(address, args, sender, t)
                except Exception as e:  # noqa: BLE001 - a handler bug must not end the thread
                    self._bad(f"{address}: internal error ({type(e).__name__}: {e})".splitlines()[0], sender)

    def _bad(self, reason: str, sender: tuple) -> None:
        self.errors += 1
        if self.on_bad is not None:
            try:
                self.on_bad(reason, sender)
            except Exception:
                pass
