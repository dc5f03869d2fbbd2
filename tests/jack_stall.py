"""A measurement, not a test: how long a stalled JACK client freezes another process's Python.

    python -m tests.jack_stall        # about 40 s; prints one line per server mode

Client B (another process) is stopped with SIGSTOP for 3 s, then killed. Meanwhile this process
opens and closes a JACK client every 50 ms (python-rtmidi, as a reconnecting port would) and a
plain Python thread ticks every 5 ms. python-rtmidi holds the GIL while libjack opens or closes
a client, and libjack waits for the server, which waits for B: every Python thread in this
process stops. Measured 2026-12-02 (2-core box, 256 frames): the ticker's longest gap 7.0 s with
``--sync`` and 10.0 s without; one open/close took 19 s. Calls on an open client (``get_ports``)
stayed under 10 ms. Findings in docs/reliability.md section 7.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

CLIENT_B = ("import rtmidi, time; m = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, 'B'); m.open_virtual_port('b'); "
            "print('ok', flush=True); time.sleep(60)")


def measure(sync: bool) -> tuple[float, float]:
    """(longest gap of a 5-ms Python ticker, longest client open+close) in seconds."""
    import rtmidi

    from tools.bench.realtime import JackServer

    with JackServer(period=256, sync=sync):
        b = subprocess.Popen([sys.executable, "-c", CLIENT_B], stdout=subprocess.PIPE, text=True)
        b.stdout.readline()
        gaps, calls, stop = [0.0], [0.0], threading.Event()

        def ticker():
            t = time.monotonic()
            while not stop.is_set():
                time.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - t)
                t = now

        def reopen():
            while not stop.is_set():
                t = time.monotonic()
                c = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, "probe")
                c.get_ports()
                c.delete()
                calls.append(time.monotonic() - t)
                time.sleep(0.05)

        threads = [threading.Thread(target=ticker), threading.Thread(target=reopen)]
        for t in threads:
            t.start()
        time.sleep(1)
        os.kill(b.pid, signal.SIGSTOP)
        time.sleep(3)
        os.kill(b.pid, signal.SIGCONT)
        time.sleep(1)
        b.kill()
        b.wait()
        time.sleep(2)
        stop.set()
        for t in threads:
            t.join()
        return max(gaps), max(calls)


if __name__ == "__main__":
    for sync in (True, False):
        gap, call = measure(sync)
        print(f"{'--sync' if sync else 'async '}: longest Python thread gap {gap:.2f} s, longest client open+close {call:.2f} s")
