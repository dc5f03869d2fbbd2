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
from pathlib import Path  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.measure_app")
    p.add_argument("--bundle")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--image", default=str(Path(__file__).resolve().parent.parent / "assets/examples/sunrise.jpg"))
    p.add_argument("--shot", help="save a screenshot of the playing window here (PNG)")
    p.add_argument("--threads", type=int)
    p.add_argument("--target", nargs=2, type=float, metavar=("V", "A"),
                   help="drag the puck to this valence/arousal once playing (for the screenshot)")
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from tools.bench.realtime import JackServer, Recorder

    with JackServer():
        t_app = time.perf_counter()  # the app's own start: JACK (not part of the app) is up
        from PyQt6.QtCore import QEventLoop, QObject, QSettings, QTimer
        from PyQt6.QtWidgets import QApplication

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
        # Time the app's own timer callbacks: a stall longer than the longest of them is the
        # thread waiting for the CPU or the GIL, not the app's work.
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

        def wait(pred, timeout):
            end = time.monotonic() + timeout
            while not pred() and time.monotonic() < end:
                app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
                time.sleep(0.002)
            return pred()

        wait(lambda: "t" in painted, 30)
        ready = {}
        win.bridge.modelReady.connect(lambda _n: ready.setdefault("t", time.perf_counter()))
        assert wait(lambda: win.bridge.gen is not None, 300), "the model did not load"
        ready.setdefault("t", time.perf_counter())
        win.open_image(args.image)
        wait(lambda: win.pad.picture_va is not None, 60)
        t_play = time.perf_counter()
        t_play_mono = time.monotonic()
        win.transport.playButton.click()
        assert wait(lambda: synth.note_ons(), 60), "no note arrived"
        first_note = synth.note_ons()[0][0] - t_play_mono
        if args.target:
            win.pad.set_target(tuple(args.target))

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
        win.transport.stopButton.click()
        wait(lambda: not win.transport.playButton.isChecked(), 30)
        wait(lambda: synth.sounding() == set(), 5)
        gaps.sort()
        for v in work.values():
            v.sort()
        out = {
            "time_to_window_s": round(painted.get("t", float("nan")) - t_app, 3),
            "model_ready_s": round(ready["t"] - t_app, 3),
            "process_start_to_window_s": round(painted.get("t", float("nan")) - T0, 3),
            "first_note_s": round(first_note, 3),
            "ui_stall_max_ms": round(max(gaps), 1) if gaps else None,
            "ui_stall_p99_ms": round(gaps[int(0.99 * (len(gaps) - 1))], 1) if gaps else None,
            "heartbeats": len(gaps),
            "roll_tick_max_ms": round(max(work["tick"]), 1) if work["tick"] else None,
            "roll_tick_p99_ms": round(work["tick"][int(0.99 * (len(work["tick"]) - 1))], 1) if work["tick"] else None,
            "roll_tick_cpu_p99_ms": round(work["tick_cpu"][int(0.99 * (len(work["tick_cpu"]) - 1))], 2)
            if work["tick_cpu"] else None,
            "roll_tick_cpu_max_ms": round(max(work["tick_cpu"]), 2) if work["tick_cpu"] else None,
            "status_tick_max_ms": round(max(work["slow_tick"]), 1) if work["slow_tick"] else None,
            "load_average_1min": round(os.getloadavg()[0], 1),
            "seconds_played": args.seconds,
            "notes_received": len(synth.note_ons()),
            "stuck_after_stop": len(synth.sounding()),
            "bundle": win.bridge.gen.bundle.name,
            "play_clicked_at_s": round(t_play - t_app, 3),
        }
        win.close()
        synth.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
