"""Virtual time and an in-memory MIDI port: the real playback code, run exactly and fast.

:class:`VirtualTime` is a time source for :class:`engine.live.decoder.LiveStream` (the protocol of
:class:`engine.live.clock.SystemTime`: ``now``, ``wait_until``, ``idle``, ``notify``, ``started``)
whose clock moves only when :meth:`VirtualTime.run` moves it, and only once every thread of the
stream is waiting (for a time, or for another thread's progress). So decoding takes no virtual
time, every event is sent exactly at its due time, and the outcome of a run does not depend on
how busy the machine is: the scheduling tests (tests/test_scheduling.py) and the soak
(tests/soak.py) assert exact times. Things that happen at a moment (a DAW's MIDI clock fed to
:meth:`engine.live.clock.ClockFollower.handle`, a steering call, a pause) are scheduled with
:meth:`VirtualTime.call_at` and run by :meth:`run` in time order, while every thread waits.

:class:`MemoryOutput` has the interface of :class:`engine.live.ports.MidiOutput` (``send``,
``note_on``, ``note_off``, ``all_notes_off``, ``sounding``, ``connected``, ``status``, ``close``)
and keeps what it was sent as ``(time, bytes)``: a sink for a preview, for tests and for the soak
(:meth:`MemoryOutput.vanish` / :meth:`restore` play a receiver that quits and comes back).
"""
from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from typing import Callable, Sequence

from engine.live.ports import heard, note_ons
from engine.live.sinks import Sink

INF = float("inf")


class VirtualTime:
    """A virtual monotonic clock that advances when every participating thread waits.

    ``timeout_s`` bounds (in real seconds) how long :meth:`run` waits for a thread that never
    comes to wait (a bug, or a source that really blocks): it raises TimeoutError, never hangs.
    """

    def __init__(self, start: float = 1000.0, timeout_s: float = 60.0):
        self._now = float(start)
        self.timeout_s = timeout_s
        self._cv = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._waiting: dict[int, float] = {}  # thread ident -> deadline (INF: until notified)
        self._calls: list = []  # heap of (time, seq, fn)
        self._seq = 0
        self.advances = 0  # how often the clock moved (a cost figure for the soak)

    # -- the time source protocol (any thread) ---------------------------------------------
    def now(self) -> float:
        return self._now

    def started(self, thread: threading.Thread) -> None:
        """``thread`` takes part: time does not move while it runs."""
        with self._cv:
            self._threads.append(thread)

    def wait_until(self, t: float, stop: threading.Event | None = None) -> bool:
        """Wait until virtual time ``t``; may return early (False) when another thread calls
        :meth:`notify` or ``stop`` is set, so callers loop and re-check."""
        return self._block(t, stop)

    def idle(self, seconds: float | None, stop: threading.Event | None = None) -> None:
        """Wait for another thread's progress (:meth:`notify`), at most ``seconds`` of virtual
        time (None: no limit; the waiter then never moves time by itself)."""
        self._block(INF if seconds is None else self._now + seconds, stop)

    def notify(self) -> None:
        """Wake every waiting thread to re-check (time does not move)."""
        with self._cv:
            me = threading.get_ident()
            for ident in [i for i in self._waiting if i != me]:
                del self._waiting[ident]
            self._cv.notify_all()

    def _block(self, deadline: float, stop: threading.Event | None) -> bool:
        me = threading.get_ident()
        with self._cv:
            if self._now >= deadline:
                return True
            if stop is not None and stop.is_set():
                return False
            self._waiting[me] = deadline
            self._cv.notify_all()  # the driver may be waiting for this
            while me in self._waiting:
                self._cv.wait(0.05)
                if stop is not None and stop.is_set():
                    self._waiting.pop(me, None)
            return self._now >= deadline

    # -- driving (the test's thread) ------------------------------------------------------
    def call_at(self, t: float, fn: Callable[[], object]) -> None:
        """Run ``fn()`` (in :meth:`run`'s thread) when virtual time reaches ``t``, before any
        waiting thread wakes; calls at the same time run in the order they were added."""
        with self._cv:
            heapq.heappush(self._calls, (float(t), self._seq, fn))
            self._seq += 1

    def _quiet(self) -> bool:
        self._threads = [t for t in self._threads if t.is_alive()]
        return all(t.ident in self._waiting for t in self._threads)

    def _settle(self, deadline: float) -> None:
        """Wait (real time) until every participating thread waits."""
        while not self._quiet():
            if time.monotonic() > deadline:
                busy = [t.name for t in self._threads if t.ident not in self._waiting]
                raise TimeoutError(f"virtual time: threads never came to wait: {', '.join(busy)}")
            self._cv.wait(0.01)

    def run(self, until: float | None = None, stop_when: Callable[[], bool] | None = None) -> float:
        """Move time on, event by event, until virtual time ``until``, or until ``stop_when()``
        is true (checked whenever every thread waits), or until nothing can happen any more.
        Returns the virtual time reached; every thread is waiting (or finished) on return."""
        real_deadline = time.monotonic() + self.timeout_s
        while True:
            with self._cv:
                self._settle(real_deadline)
                if stop_when is not None and stop_when():
                    return self._now
                nxt = min(min(self._waiting.values(), default=INF), self._calls[0][0] if self._calls else INF)
                if until is not None and nxt > until:
                    self._now = max(self._now, until)
                    return self._now
                if nxt == INF:
                    return self._now
                self._now = max(self._now, nxt)
                self.advances += 1
                due = []
                while self._calls and self._calls[0][0] <= self._now:
                    due.append(heapq.heappop(self._calls)[2])
            for fn in due:  # outside the lock: a call may steer, pause or notify
                fn()
            with self._cv:
                for ident in [i for i, d in self._waiting.items() if d <= self._now]:
                    del self._waiting[ident]
                self._cv.notify_all()
            if due:
                self.notify()

    def advance(self, seconds: float) -> float:
        return self.run(until=self._now + seconds)


class MemoryOutput(Sink):
    """An output port in memory: everything sent is kept as ``(time, bytes)`` in ``messages``
    (``maxlen`` bounds it for endless use, e.g. a preview); times from ``time_source.now``
    (default :func:`time.monotonic`). Like :class:`engine.live.ports.MidiOutput` it never raises
    from :meth:`send` and answers False while the receiver is gone."""

    api = "memory"
    virtual = True

    def __init__(self, name: str = "Moodroll (memory)", time_source=None, maxlen: int | None = None):
        self._init_notes()
        self.name = self.full_name = name
        self._now = time_source.now if time_source is not None else time.monotonic
        self.messages: deque = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self.received: set[tuple[int, int]] = set()  # what the receiver is sounding now
        self.sent = self.failed = 0
        self.connected, self._closed = True, False
        self.status = f"in-memory port {name!r} open"

    def send(self, message: Sequence[int]) -> bool:
        if not self.connected:
            self.failed += 1
            return False
        m = tuple(message)
        with self._lock:
            self.messages.append((self._now(), m))
            self.received = heard(self.received, m)
        self.sent += 1
        return True

    # -- the receiver coming and going (what a synth quitting does to a real port) ------------
    def vanish(self) -> None:
        """The receiver quits: nothing is delivered until :meth:`restore`; its notes die with it."""
        self.connected = False
        self.sounding.clear()
        with self._lock:
            self.received = set()
        self.status = f"MIDI port {self.name!r} disappeared; nothing is sent until it returns"

    def restore(self) -> None:
        if not self._closed:
            self.connected = True
            self.status = f"reconnected: in-memory port {self.name!r} open"

    def check(self) -> bool:
        return self.connected

    # -- reading ------------------------------------------------------------------------------
    def snapshot(self) -> list[tuple[float, tuple]]:
        with self._lock:
            return list(self.messages)

    def note_ons(self) -> list[tuple[float, int, int]]:
        return note_ons(self.snapshot())

    def receiver_sounding(self) -> set[tuple[int, int]]:
        """``(channel, pitch)`` the receiver would still be playing (kept up to date per message,
        so it is right even when ``maxlen`` has dropped old messages)."""
        with self._lock:
            return set(self.received)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def close(self) -> None:
        if not self._closed and self.connected:
            self.all_notes_off()
        self._closed, self.connected = True, False
        self.status = "closed"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

