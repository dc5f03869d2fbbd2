"""Two Link peers in this process: "the other app" (plain aalink) and Moodroll's LinkTransport.

Run only inside a loopback-only network namespace (tests/test_link.py starts it under
``unshare -rn``): it refuses to run where any interface other than ``lo`` exists, so Link's
multicast never reaches a real network. Prints one JSON line of what it saw.
"""
from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
import warnings


def _wait(pred, timeout: float = 10.0) -> float | None:
    """Seconds until ``pred()`` held (polled every 1 ms), or None."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(0.001)
    return time.monotonic() - t0


def _phase_errors_ms(app, follower, n: int = 200) -> list[float]:
    """|the follower's bar phase - the app's| at the same instants, in ms at the app's tempo."""
    from engine.daw.link import _beat_now

    out = []
    for _ in range(n):
        beat, t = _beat_now(app)
        mine = follower.beat_at(t)
        if mine is None:
            out.append(float("inf"))
            continue
        d = (mine - beat) % app.quantum  # peers' beats agree modulo the quantum (Link aligns phase)
        out.append(min(d, app.quantum - d) * 60000.0 / app.tempo)
        time.sleep(0.005)
    return out


def main() -> None:
    names = [n for _, n in socket.if_nameindex()]
    if names != ["lo"]:
        sys.exit(f"refusing to run Link outside a loopback-only namespace (interfaces: {names})")
    import aalink

    from engine.daw.link import LinkTransport, _beat_now

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        app = aalink.Link(123.0, asyncio.new_event_loop())
    app.quantum, app.start_stop_sync_enabled, app.enabled = 4, True, True
    # A session that was there before Moodroll: when two sessions meet Link keeps the one founded
    # more than 0.5 s earlier (closer than that, a random session id decides).
    time.sleep(1.0)
    follower = LinkTransport(bpm=90.0).start()  # Moodroll's own tempo differs: joining must not change the session's
    r: dict = {}
    try:
        r["join_s"] = _wait(lambda: follower.peers > 0 and abs(follower.link.tempo - 123.0) < 1e-3)
        # Link shares a start or stop when it happens, not the state a joining peer finds: the
        # other app presses play once Moodroll is in the session.
        app.playing = True
        r["start_s"] = _wait(lambda: follower.running)
        time.sleep(0.2)
        r["tempo_after_join"] = [app.tempo, follower.bpm]
        r["phase_ms"] = _phase_errors_ms(app, follower)
        beat, t = _beat_now(app)
        nb = follower.next_bar(t)
        r["next_bar"] = nb
        r["app_beat_at_bar_time"] = beat + (follower.time_of(nb) - t) * app.tempo / 60.0  # the app's beat then
        app.tempo = 140.0
        r["tempo_converge_ms"] = None if (s := _wait(lambda: abs(follower.bpm - 140.0) < 1e-3)) is None else s * 1000
        time.sleep(0.1)
        r["phase_ms_140"] = _phase_errors_ms(app, follower, 100)
        app.playing = False
        r["stop_s"] = _wait(lambda: not follower.running)
        app.playing = True
        r["restart_s"] = _wait(lambda: follower.running)
        r["tempo_end"] = [app.tempo, follower.bpm]
    finally:
        follower.close()
        app.enabled = False
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
