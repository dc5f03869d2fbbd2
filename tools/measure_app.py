"""Measure the app as a user meets it: time to window, time to first note, UI-thread stalls.

    python -m tools.measure_app [--bundle DIR] [--seconds 60] [--image PICTURE] [--shot docs/figures/app.png]

Runs the real window (offscreen or under xvfb-run) on a private JACK server with a receiving
port, and prints one JSON object:

* ``time_to_window_s``: the app's start (importing Qt and the app included) -> the window's
  first paint, the model still loading (``process_start_to_window_s`` adds the private JACK
  server's start-up and this script's imports);
* ``model_ready_s``: the same start -> the model loaded (background thread);
* ``first_note_s``: Play pressed -> the first note-on arriving at the receiving port;
* ``ui_stall_max_ms`` / ``ui_stall_p99_ms``: a 5 ms QTimer heartbeat on the UI thread while
  playing for ``--seconds``; a stall is how late a beat came beyond its 5 ms period;
* ``notes_received``, ``stuck_after_stop`` (notes still sounding after Stop; must be 0).

With ``--shot`` it also saves ``widget.grab()`` of the window while playing.
"""
from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402


def main(argv=None) -> int:
    args = _parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from tools.bench.realtime import JackServer

    with JackServer():
        t_app = time.perf_counter()  # the app's own start: JACK (not part of the app) is up
        run = _open_window(args)
        work = _time_app_timers(run.win)
        _wait(run.app, lambda: "t" in run.painted, 30)
        model_ready = _load_model(run)
        run.win.open_image(args.image)
        _wait(run.app, lambda: run.win.pad.picture_va is not None, 60)
        t_play, first_note = _play(run, args)
        gaps = _heartbeats_while_playing(run, args)
        _stop(run)
        out = _results(args, run, work, gaps, t_app=t_app, model_ready=model_ready,
                       t_play=t_play, first_note=first_note)
        run.win.close()
        run.synth.close()
    print(json.dumps(out))
    return 0


def _parse_args(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.measure_app")
    p.add_argument("--bundle")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--image", default=str(Path(__file__).resolve().parent.parent / "assets/examples/sunrise.jpg"))
    p.add_argument("--shot", help="save a screenshot of the playing window here (PNG)")
    p.add_argument("--threads", type=int)
    p.add_argument("--target", nargs=2, type=float, metavar=("V", "A"),
                   help="drag the puck to this valence/arousal once playing (for the screenshot)")
    return p.parse_args(argv)


@dataclass
class _Run:
    """The app under measurement and what keeps its Qt objects alive until the end."""

    app: object  # the QApplication
    win: object  # the desktop.app.MainWindow
    synth: object  # the receiving port (tools.bench.realtime.Recorder)
    settings: object  # the window's QSettings, in a temporary folder
    painted: dict  # "t": the time of the window's first paint
    first_paint: object  # the event filter that records it


def _open_window(args) -> _Run:
    """Import Qt and the app, show the window (settings and takes in a temporary folder) and
    open the receiving port its output is set to; the first paint is timed."""
    from PyQt6.QtCore import QObject, QSettings
    from PyQt6.QtWidgets import QApplication

    from tools.bench.realtime import Recorder

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from desktop import theme
    from desktop.app import MainWindow

    theme.apply(app)
    tmp = Path(tempfile.mkdtemp(prefix="moodroll-measure-"))
    settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("port", "Measure Synth")
    synth = Recorder(None, api="jack", name="Measure Synth")
    win = MainWindow(bundle=args.bundle, settings=settings, midi_api="jack", port_name="Moodroll measure",
                     takes_dir=tmp / "takes", threads=args.threads)
    painted = {}

    class FirstPaint(QObject):
        def eventFilter(self, obj, ev):
            if ev.type() == ev.Type.Paint and "t" not in painted:
                painted["t"] = time.perf_counter()
            return False

    f = FirstPaint()
    win.installEventFilter(f)
    win.show()
    return _Run(app, win, synth, settings, painted, f)


def _time_app_timers(win) -> dict[str, list[float]]:
    """Time the app's own timer callbacks (ms): a stall longer than the longest of them is the
    thread waiting for the CPU or the GIL, not the app's work."""
    work = {"tick": [], "slow_tick": [], "tick_cpu": []}
    for timer, name in ((win._roll_timer, "tick"), (win._status_timer, "slow_tick")):
        fn = getattr(win.session, name)

        def timed(fn=fn, name=name):
            t, c = time.perf_counter(), time.thread_time()
            fn()
            work[name].append((time.perf_counter() - t) * 1000.0)
            if name == "tick":  # CPU time of the UI thread itself: the app's own cost
                work["tick_cpu"].append((time.thread_time() - c) * 1000.0)

        timer.timeout.disconnect()
        timer.timeout.connect(timed)
    return work


def _wait(app, pred, timeout) -> bool:
    """Run the event loop until ``pred()`` or ``timeout`` seconds; returns ``pred()``."""
    from PyQt6.QtCore import QEventLoop

    end = time.monotonic() + timeout
    while not pred() and time.monotonic() < end:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.002)
    return pred()


def _load_model(run: _Run) -> float:
    """Wait for the model (loaded on a background thread); returns when it was ready."""
    ready = {}
    run.win.bridge.modelReady.connect(lambda _n: ready.setdefault("t", time.perf_counter()))
    assert _wait(run.app, lambda: run.win.bridge.gen is not None, 300), "the model did not load"
    ready.setdefault("t", time.perf_counter())
    return ready["t"]


def _play(run: _Run, args) -> tuple[float, float]:
    """Press Play; returns when it was pressed and the seconds to the first note-on received."""
    t_play = time.perf_counter()
    t_play_mono = time.monotonic()
    run.win.transport.playButton.click()
    assert _wait(run.app, lambda: run.synth.note_ons(), 60), "no note arrived"
    first_note = run.synth.note_ons()[0][0] - t_play_mono
    if args.target:
        run.win.pad.set_target(tuple(args.target))
    return t_play, first_note


def _heartbeats_while_playing(run: _Run, args) -> list[float]:
    """A 5 ms heartbeat on the UI thread for ``--seconds`` of playing (the screenshot taken half
    way, at most 25 s in); returns each beat's lateness beyond its period (ms), sorted."""
    from PyQt6.QtCore import QEventLoop, QTimer

    app, win = run.app, run.win
    gaps, last = [], [time.perf_counter()]

    def beat():
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000.0 - 5.0)
        last[0] = now

    hb = QTimer(interval=5, timeout=beat)
    hb.setTimerType(hb.timerType().PreciseTimer)
    hb.start()
    shot_at = time.monotonic() + min(args.seconds * 0.5, 25.0)
    end = time.monotonic() + args.seconds
    shot_done = False
    while time.monotonic() < end:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.001)
        if args.shot and not shot_done and time.monotonic() >= shot_at:
            last_before = time.perf_counter()
            win.grab().save(args.shot)
            shot_done = True
            last[0] += time.perf_counter() - last_before  # the screenshot is not the app's stall
    hb.stop()
    gaps.sort()
    return gaps


def _stop(run: _Run) -> None:
    """Press Stop and wait for the button and for every note to end."""
    run.win.transport.stopButton.click()
    _wait(run.app, lambda: not run.win.transport.playButton.isChecked(), 30)
    _wait(run.app, lambda: run.synth.sounding() == set(), 5)


def _p99(values: list[float], digits: int):
    return round(values[int(0.99 * (len(values) - 1))], digits) if values else None


def _max(values: list[float], digits: int):
    return round(max(values), digits) if values else None


def _results(args, run: _Run, work: dict, gaps: list[float], *, t_app: float, model_ready: float,
             t_play: float, first_note: float) -> dict:
    """The one JSON object this prints (see the module docstring)."""
    for v in work.values():
        v.sort()
    painted, synth = run.painted.get("t", float("nan")), run.synth
    return {
        "time_to_window_s": round(painted - t_app, 3),
        "model_ready_s": round(model_ready - t_app, 3),
        "process_start_to_window_s": round(painted - T0, 3),
        "first_note_s": round(first_note, 3),
        "ui_stall_max_ms": _max(gaps, 1),
        "ui_stall_p99_ms": _p99(gaps, 1),
        "heartbeats": len(gaps),
        "roll_tick_max_ms": _max(work["tick"], 1),
        "roll_tick_p99_ms": _p99(work["tick"], 1),
        "roll_tick_cpu_p99_ms": _p99(work["tick_cpu"], 2),
        "roll_tick_cpu_max_ms": _max(work["tick_cpu"], 2),
        "status_tick_max_ms": _max(work["slow_tick"], 1),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "seconds_played": args.seconds,
        "notes_received": len(synth.note_ons()),
        "stuck_after_stop": len(synth.sounding()),
        "bundle": run.win.bridge.gen.bundle.name,
        "play_clicked_at_s": round(t_play - t_app, 3),
    }


if __name__ == "__main__":
    sys.exit(main())
