"""Real-time measurements for ``moodroll bench``, taken at a real receiving MIDI port.

* :func:`first_note_ms`: a picture is dropped -> the first note-on arrives at a receiving port
  (image encoder + condition + decoding to the first note + a few ms of preroll + MIDI
  transport; see ``StreamOptions.preroll_s`` in :mod:`engine.live.decoder`). The
  bundle is loaded beforehand; that load time is reported separately.
* :func:`frame_to_va_ms`: a webcam frame -> the smoothed VA is updated (image encoder +
  smoothing), per frame.
* :func:`timing_error_ms`: how far from its scheduled time each note-on arrives, over at least
  2000 notes: ``{"p50", "p99", "max"}`` of |arrival - schedule| in ms (arrival times from the
  receiving port's MIDI thread, see :class:`engine.live.ports.MidiInput`), plus the mean
  latency and the counts: ``planned`` note-ons, ``to_port`` handed to the port, ``lost`` of
  those never received, ``shortfall`` = planned - received (docs/reliability.md section 9). Without a MIDI system it runs on a private JACK server with a
  :data:`BENCH_JACK_PERIOD`-frame period (``jack_period_ms`` in the result).

:class:`Recorder` is the receiving port: it connects to an output port (default "Moodroll"),
polls it in a thread and keeps every message with its arrival time. The tests use it too.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from engine.live.ports import (DEFAULT_OUTPUT_NAME, MidiInput, MidiOutput, MidiPortError, _client, note_ons,
                            resolve_api, sounding_notes)


# frames: 1.33 ms at 48 kHz, synchronous mode. In JACK's default asynchronous mode a client that
# misses a cycle (the receiver, on a busy machine) loses that cycle's MIDI; --sync makes the server
# wait for it, so such a stall shows up as late notes, never as lost ones (docs/reliability.md
# section 9, where the "falls behind" readings at 16-32 frames turn out to be the old in-order
# arrival matcher skipping past one lost note).
BENCH_JACK_PERIOD = 64


class JackServer:
    """A private JACK server with the dummy driver (no sound card), for tests and benchmarks
    on machines without a MIDI system: ``jackd -d dummy -r 48000 -p 64`` under a unique name,
    which this process's JACK clients then use (``JACK_DEFAULT_SERVER``). Realtime scheduling
    where the OS allows it, plain scheduling otherwise. A 64-frame period (1.3 ms) keeps
    JACK's own MIDI timing quantisation small (the tests' default); the benchmark asks for
    :data:`BENCH_JACK_PERIOD` frames so that quantisation does not floor the timing error."""

    def __init__(self, rate: int = 48000, period: int = 64, timeout_s: float = 20.0, sync: bool = False):
        self.rate, self.period, self.timeout_s, self.sync = rate, period, timeout_s, sync
        self.name = f"moodroll-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.proc: subprocess.Popen | None = None
        self.log = Path(tempfile.gettempdir()) / f"{self.name}.log"
        self._old_env: str | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("jackd") is not None

    def _up(self) -> bool:
        if shutil.which("jack_wait"):
            r = subprocess.run(["jack_wait", "-c", "-s", self.name], capture_output=True, text=True)
            return r.stdout.strip() == "running"
        try:
            import rtmidi

            _client(rtmidi.MidiOut, "jack", "probe").delete()
            return True
        except MidiPortError:
            return False

    def start(self) -> "JackServer":
        if not self.available():
            raise MidiPortError("jackd is not installed (Debian/Ubuntu: apt-get install jackd2)")
        self._old_env = os.environ.get("JACK_DEFAULT_SERVER")
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
        driver = ["-d", "dummy", "-r", str(self.rate), "-p", str(self.period),
                  "-w", str(round(self.period / self.rate * 1e6))]
        for mode in ([], ["--no-realtime"]):
            with open(self.log, "w") as f:
                sync = ["--sync"] if self.sync else []
                self.proc = subprocess.Popen(["jackd", *mode, *sync, "-n", self.name, "-t", "5000", *driver],
                                             stdout=f, stderr=subprocess.STDOUT, env=env)
            deadline = time.monotonic() + self.timeout_s
            while self.proc.poll() is None and time.monotonic() < deadline:
                if self._up():
                    return self
                time.sleep(0.1)
            self._kill()
        self.stop()
        raise MidiPortError(f"jackd did not start: {self.log.read_text()[-500:]}")

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self) -> None:
        self._kill()
        if self._old_env is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = self._old_env
        with contextlib.suppress(OSError):
            self.log.unlink()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@contextlib.contextmanager
def midi_system(api: str | None = None, jack_period: int | None = None):
    """Yields ``(api, server)``: the API to measure on, ``api`` (or the platform's) when it
    works (server None), else a private JACK server's (:class:`JackServer` with a
    ``jack_period``-frame period, yielded as ``server``) when jackd is installed;
    MidiPortError otherwise."""
    import rtmidi

    errors = []
    for a in resolve_api(api):
        try:
            _client(rtmidi.MidiOut, a, "Moodroll probe").delete()
        except MidiPortError as e:
            errors.append(str(e))
            continue
        yield a, None
        return
    if api not in (None, "jack") or not JackServer.available():
        raise MidiPortError("; ".join(errors))
    with JackServer(period=jack_period or BENCH_JACK_PERIOD, sync=True) as server:
        yield "jack", server


class Recorder:
    """A receiving MIDI port that records ``(arrival time, bytes)`` of everything sent to it."""

    def __init__(self, port: str | None = DEFAULT_OUTPUT_NAME, api: str | None = None,
                 name: str = "Moodroll Recorder", poll_s: float = 0.0005):
        # port=None: a virtual input others connect to; else connect to that output port.
        self.input = MidiInput(port, api=api, name=name, monitor_s=0)
        self.messages: list[tuple[float, list[int]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poll_s = poll_s
        self._thread = threading.Thread(target=self._run, name="midi-recorder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            got = self.input.poll()
            if got:
                with self._lock:
                    self.messages.extend(got)
            time.sleep(self._poll_s)

    def snapshot(self) -> list[tuple[float, list[int]]]:
        with self._lock:
            return list(self.messages)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def note_ons(self) -> list[tuple[float, int, int]]:
        """``(arrival time, pitch, velocity)`` of every note-on (velocity > 0)."""
        return note_ons(self.snapshot())

    def sounding(self) -> set[tuple[int, int]]:
        """``(channel, pitch)`` of the notes a synth listening here would still be playing."""
        return sounding_notes(self.snapshot())

    def wait_for(self, predicate, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate(self):
                return True
            time.sleep(0.01)
        return predicate(self)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.input.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _percentiles(errors_ms) -> dict:
    e = np.abs(np.asarray(errors_ms, dtype=np.float64))
    return {"p50": round(float(np.percentile(e, 50)), 3), "p99": round(float(np.percentile(e, 99)), 3),
            "max": round(float(e.max()), 3)}


def match_arrivals(timeline, arrivals, max_s: float = 1.0) -> list[tuple[float, float]]:
    """Pair the stream's sent note-ons ``(beat, due, sent, pitch)`` with the receiver's
    ``(time, pitch, velocity)``; returns ``(due, arrival)`` pairs. Each arrival belongs to the
    latest note-on of its pitch sent before it (and less than ``max_s`` before) that has no
    arrival yet; a note that never arrived is left out. Per pitch, so one lost note costs one
    pair (an in-order pairing skipped ahead past a gap and lost hundreds after it)."""
    sends: dict[int, list[tuple[float, float]]] = {}
    for _beat, due, sent, pitch in timeline:
        sends.setdefault(pitch, []).append((sent, due))
    pairs = []
    for pitch, got in _by_pitch(arrivals).items():
        mine, i, open_ = sends.get(pitch, []), 0, []  # open_: sent, no arrival yet
        for t in got:
            while i < len(mine) and mine[i][0] <= t + 0.0005:  # stamps are to the JACK cycle
                open_.append(mine[i])
                i += 1
            while open_ and t - open_[-1][0] >= max_s:
                open_.clear()  # all too old for this arrival
            if open_:
                pairs.append((open_.pop()[1], t))
                open_.clear()  # an earlier send of this pitch cannot arrive after a later one
    return sorted(pairs)


def _by_pitch(arrivals) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for t, pitch, _vel in arrivals:
        out.setdefault(pitch, []).append(t)
    return out


def default_midi_file() -> Path:
    """A dense piano piece for timing runs: POP909 song 003 from the shared data (about six
    notes per beat) when present, else the shipped example."""
    from engine.paths import EXAMPLES, shared_data_dir

    dense = shared_data_dir() / "pop909" / "midi" / "003.mid"
    return dense if dense.is_file() else EXAMPLES / "example.mid"


def timing_error_ms(n_notes: int = 2000, bpm: float = 300.0, api: str | None = None,
                    source=None, tokenizer=None, midi_file: str | Path | None = None,
                    timeout_s: float = 600.0) -> dict:
    """Play at least ``n_notes`` notes through a :class:`engine.live.decoder.LiveStream` to a
    receiving port; returns ``{"p50", "p99", "max"}`` of |arrival - scheduled| (ms) and more.

    The source is ``source`` (e.g. a MusicGenerator) if given, else the token sequence of
    ``midi_file`` (default: :func:`default_midi_file`), looped. Without a working MIDI system
    a private JACK server is started for the run.
    """
    with midi_system(api) as (api, server):
        result = _timing_error_ms(n_notes, bpm, api, source, tokenizer, midi_file, timeout_s)
    # the private JACK server's period quantises every arrival; None: the system's MIDI, not ours
    result["jack_period_ms"] = round(server.period / server.rate * 1000.0, 3) if server else None
    return result


def _timing_error_ms(n_notes, bpm, api, source, tokenizer, midi_file, timeout_s) -> dict:
    from engine.live.decoder import LiveStream, StreamOptions, TokenReplay
    from engine.music.tokenizer import Tokenizer

    tokenizer = tokenizer or getattr(source, "tokenizer", None) or Tokenizer()
    midi_file = Path(midi_file or default_midi_file())
    if source is None:
        source = TokenReplay(tokenizer.encode(midi_file), loop=True)
    name = f"Moodroll bench {time.monotonic_ns() % 100000}"
    out = MidiOutput(None, api=api, name=name)
    rec = Recorder(name, api=out.api)
    stream = LiveStream(source, tokenizer, out, options=StreamOptions(bpm=bpm, late_s=1.0))
    try:
        time.sleep(0.2)
        stream.start()
        end = time.monotonic() + timeout_s
        while stream.notes_sent < n_notes and not stream.wait(0.2) and time.monotonic() < end:
            pass
        stream.stop()
        time.sleep(0.2)
        pairs = match_arrivals(list(stream.timeline), rec.note_ons())
    finally:
        stream.stop()
        rec.close()
        out.close()
    if stream.error:
        raise RuntimeError(f"the stream failed: {stream.error}")
    err = [(arr - due) * 1000.0 for due, arr in pairs]
    result = _percentiles(err) if err else {"p50": None, "p99": None, "max": None}
    # planned: note-ons due; to_port: handed to the port; lost: handed over, never received;
    # shortfall: planned - received (lost + skipped + refused by the port)
    to_port = stream.notes_sent - stream.notes_failed
    result.update(notes=len(err), planned=stream.notes_planned, to_port=to_port, lost=to_port - len(err),
                  shortfall=stream.notes_planned - len(err), refused=stream.notes_failed,
                  mean_latency_ms=round(float(np.mean(err)), 3) if err else None,
                  skipped=stream.notes_skipped, late=stream.notes_late, underruns=stream.underruns, bpm=bpm, api=out.api,
                  source=type(source).__name__ if not isinstance(source, TokenReplay) else midi_file.name)
    return result


def first_note_ms(generator, image, api: str | None = None, bpm: float = 120.0, repeats: int = 3) -> dict:
    """Picture dropped -> first note-on at a receiving port, in ms (median and all runs).

    ``generator``: a loaded :class:`engine.model.generator.MusicGenerator`; ``image``: a path or RGB array.
    Each run resets the generator, analyses the picture, starts a fresh stream and waits.
    """
    with midi_system(api) as (api, _):
        return _first_note_ms(generator, image, api, bpm, repeats)


def _first_note_ms(generator, image, api, bpm, repeats) -> dict:
    from engine.model.generator import Condition
    from engine.picture.image import load_image
    from engine.live.decoder import LiveStream, StreamOptions

    rgb = load_image(image) if not isinstance(image, np.ndarray) else image
    name = f"Moodroll bench {time.monotonic_ns() % 100000}"
    out = MidiOutput(None, api=api, name=name)
    rec = Recorder(name, api=out.api)
    runs = []
    try:
        time.sleep(0.2)
        for _ in range(repeats):
            rec.clear()
            generator.reset()
            t0 = time.monotonic()
            tokens, (v, a) = generator.analyze_image(rgb)
            generator.set_condition(Condition(v, a, tokens))
            stream = LiveStream(generator, generator.tokenizer, out, options=StreamOptions(bpm=bpm)).start()
            ok = rec.wait_for(lambda r: bool(r.note_ons()), timeout=30)
            stream.stop()
            if stream.error:
                raise RuntimeError(f"the stream failed: {stream.error}")
            if ok:
                runs.append((rec.note_ons()[0][0] - t0) * 1000.0)
    finally:
        rec.close()
        out.close()
    return {"median": round(float(np.median(runs)), 1) if runs else None, "runs": [round(r, 1) for r in runs]}


def frame_to_va_ms(generator, frames, smoother=None) -> dict:
    """Webcam frame -> smoothed VA update, per frame (ms): ``{"p50", "p99", "max", "frames"}``."""
    from engine.picture.webcam import VASmoother

    smoother = smoother or VASmoother()
    times = []
    for rgb in frames:
        t0 = time.perf_counter()
        tokens, va = generator.analyze_image(rgb)
        smoother.update(va, tokens)
        times.append((time.perf_counter() - t0) * 1000.0)
    out = _percentiles(times)
    out["frames"] = len(times)
    return out
