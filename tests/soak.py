"""The soak: long runs that the test suite is too short for (a recorded command, not CI).

``python -m tests.soak hour [--minutes 60] [--bpm 120] [--bundle DIR]``
    An hour of music (virtual time: tools.virtual_midi.VirtualTime, so it runs as fast as the
    decoder) from the real generator, steered to a new valence/arousal point at every bar,
    played to an in-memory receiver. Checks: resident memory grows <= 5 % after a warm-up
    (the first tenth), no thread or file-descriptor growth, every note-on sent reached the
    receiver with its note-off, nothing sounding at the end. Default bundle: a random-weight
    one exported once into runs/soak_bundle (the shipped model works too, at its own speed).

``python -m tests.soak cycles [--n 10000] [--jack N]``
    ``n`` start / play / pause / resume / port-vanish / stop cycles on virtual time with an
    in-memory receiver (a real MIDI file's chords, always something sounding), then ``N`` more
    on real JACK ports (a private dummy server; the synth port really quits and comes back).
    After every stop: zero notes sounding at the receiver. Threads and fds: no growth.

Each prints one JSON object (the figures in docs/reliability.md) and exits 1 if a check failed.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def n_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def n_threads() -> int:
    return len(os.listdir("/proc/self/task"))


class CountingReceiver:
    """Counts what an in-memory port delivers, without keeping it (memory stays flat)."""

    def __init__(self, port):
        self.port, self.on, self.off = port, 0, 0
        send = port.send

        def counting(message):
            ok = send(message)
            if ok and len(message) == 3:
                kind = message[0] & 0xF0
                if kind == 0x90 and message[2] > 0:
                    self.on += 1
                elif kind == 0x80 or kind == 0x90:
                    self.off += 1
            return ok

        port.send = counting


def soak_bundle(path: str | None) -> Path:
    if path:
        return Path(path)
    out = ROOT / "runs" / "soak_bundle"
    if not (out / "manifest.json").is_file():
        r = subprocess.run([sys.executable, "-m", "training.export", "--random", "--out", str(out)],
                           cwd=ROOT, capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"soak: cannot export a random bundle: {r.stderr[-500:]}")
    return out


def hour(minutes: float, bpm: float, bundle: str | None, seed: int = 0) -> dict:
    from engine.model.generator import Condition, MusicGenerator
    from engine.model.runtime import Runtime
    from engine.model.bundle import load_bundle
    from engine.model.sampling import SamplingOptions
    from engine.live.decoder import LiveStream, StreamOptions
    from tools.virtual_midi import MemoryOutput, VirtualTime

    b = load_bundle(soak_bundle(bundle))
    gen = MusicGenerator(b, SamplingOptions(seed=seed), condition=Condition(5.0, 5.0),
                         runtime=Runtime(b, device="cpu", threads=1))
    vt = VirtualTime(start=0.0, timeout_s=600)
    out = MemoryOutput(time_source=vt, maxlen=4096)
    rec = CountingReceiver(out)
    stream = LiveStream(gen, gen.tokenizer, out, options=StreamOptions(bpm=bpm), time_source=vt)
    rng = random.Random(seed)
    total = minutes * 60.0
    steers = [0]

    def steer_each_bar():  # a new VA point every bar, queued as a user would (applied at the next Bar)
        stream.set_va(rng.uniform(1, 9), rng.uniform(1, 9))
        steers[0] += 1
        vt.call_at(vt.now() + 4 * 60.0 / bpm, steer_each_bar)

    threads0, fds0 = n_threads(), n_fds()
    t0 = time.monotonic()
    stream.start()
    vt.call_at(0.0, steer_each_bar)
    samples = []
    step = total / 60
    while vt.now() < total and stream.error is None:
        vt.run(until=min(total, vt.now() + step))
        samples.append((round(vt.now(), 1), round(rss_mb(), 2), n_threads(), n_fds()))
    threads_mid, fds_mid = n_threads(), n_fds()
    stream.stop()
    wall = time.monotonic() - t0
    warm = samples[max(0, len(samples) // 10 - 1)][1]
    peak = max(s[1] for s in samples[len(samples) // 10:])
    growth = (peak - warm) / warm * 100.0
    result = {
        "soak": "hour", "music_minutes": round(vt.now() / 60, 2), "bpm": bpm, "bundle": str(b.path.name),
        "wall_s": round(wall, 1), "tokens": stream.tokens, "bars": stream.played_bars[-1][0] + 1 if stream.played_bars else 0,
        "steers": steers[0], "reprimes": gen.n_reprimes, "notes_sent": stream.notes_sent,
        "note_ons_received": rec.on, "note_offs_received": rec.off, "notes_skipped": stream.notes_skipped,
        "underruns": stream.underruns, "sounding_at_end": sorted(out.receiver_sounding()),
        "rss_mb_after_warmup": warm, "rss_mb_peak_after": peak, "rss_growth_pct": round(growth, 2),
        "threads": [threads0, threads_mid, n_threads()], "fds": [fds0, fds_mid, n_fds()],
        "error": repr(stream.error) if stream.error else None,
    }
    w = samples[len(samples) // 10 - 1 if len(samples) >= 10 else 0]  # after the warm-up (ONNX Runtime's pools exist)
    flat = all(s[2] == w[2] and s[3] == w[3] for s in samples[len(samples) // 10:])
    result["threads_fds_flat_after_warmup"] = flat
    result["ok"] = bool(result["error"] is None and growth <= 5.0 and rec.on == stream.notes_sent
                        and rec.off >= rec.on and not result["sounding_at_end"] and flat
                        and n_threads() <= w[2] - 2 and n_fds() <= w[3])
    return result


def cycles(n: int, jack: int, seed: int = 0) -> dict:
    from engine.live.decoder import LiveStream, StreamOptions, TokenReplay
    from engine.music.tokenizer import Tokenizer
    from tools.virtual_midi import MemoryOutput, VirtualTime
    from tests.token_fixtures import chord_file

    tok = Tokenizer()
    ids = tok.encode(chord_file(Path(tempfile.mkdtemp()) / "chords.mid"))
    rng = random.Random(seed)
    stuck, errors, actions = 0, 0, {"pause": 0, "vanish": 0, "stop_paused": 0, "stop_vanished": 0}
    threads0, fds0 = n_threads(), n_fds()
    t0 = time.monotonic()
    for i in range(n):
        vt = VirtualTime(start=0.0, timeout_s=60)
        out = MemoryOutput(time_source=vt)
        stream = LiveStream(TokenReplay(ids), tok, out,
                            options=StreamOptions(bpm=rng.choice([60, 120, 240, 400])), time_source=vt)
        stream.start()
        vt.advance(rng.uniform(0, 2))
        if rng.random() < 0.3:
            stream.pause(), vt.advance(rng.uniform(0, 0.5))
            actions["pause"] += 1
            if rng.random() < 0.3:
                actions["stop_paused"] += 1
            else:
                stream.resume(), vt.advance(rng.uniform(0, 1))
        if rng.random() < 0.3:
            out.vanish(), vt.advance(rng.uniform(0, 0.5))
            actions["vanish"] += 1
            if rng.random() < 0.3:
                actions["stop_vanished"] += 1
            else:
                out.restore(), vt.advance(rng.uniform(0, 1))
        stream.stop()
        out.restore()
        stuck += bool(out.receiver_sounding())
        errors += stream.error is not None
    virtual_s = time.monotonic() - t0
    jack_stuck, jack_wall = _jack_cycles(jack, tok, ids, rng) if jack else (0, 0.0)
    result = {"soak": "cycles", "cycles": n, "jack_cycles": jack, "actions": actions,
              "cycles_with_a_note_left_sounding": stuck, "jack_cycles_with_a_note_left_sounding": jack_stuck,
              "stream_errors": errors, "threads": [threads0, n_threads()], "fds": [fds0, n_fds()],
              "wall_s": round(virtual_s, 1), "jack_wall_s": round(jack_wall, 1)}
    result["ok"] = bool(stuck == 0 and jack_stuck == 0 and errors == 0 and n_threads() <= threads0 + 1
                        and n_fds() <= fds0 + 8)
    return result


def _jack_cycles(n: int, tok, ids, rng) -> tuple[int, float]:
    """Start / stop / pause / synth-quits cycles on real JACK ports; the receiver is another port."""
    from tools.bench.realtime import JackServer, Recorder
    from engine.live.ports import MidiOutput
    from engine.live.decoder import LiveStream, StreamOptions, TokenReplay

    stuck, t0 = 0, time.monotonic()
    with JackServer(period=256, sync=True):
        synth = Recorder(None, api="jack", name="Soak Synth")
        out = MidiOutput("Soak Synth", api="jack", name="Moodroll soak", monitor_s=0.05)
        try:
            for i in range(n):
                stream = LiveStream(TokenReplay(ids), tok, out, options=StreamOptions(bpm=240)).start()
                synth.wait_for(lambda r: len(r.note_ons()) > 0, timeout=10)
                if rng.random() < 0.3:
                    stream.pause(), time.sleep(0.02), stream.resume()
                if rng.random() < 0.2:  # the synth quits and comes back mid-stream
                    synth.close()
                    end = time.monotonic() + 5
                    while out.connected and time.monotonic() < end:
                        time.sleep(0.01)
                    synth = Recorder(None, api="jack", name="Soak Synth")
                    end = time.monotonic() + 5
                    while not out.connected and time.monotonic() < end:
                        time.sleep(0.01)
                time.sleep(rng.uniform(0, 0.1))
                stream.stop()
                if not synth.wait_for(lambda r: r.sounding() == set(), timeout=5):
                    stuck += 1
                synth.clear()
        finally:
            out.close(), synth.close()
    return stuck, time.monotonic() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    h = sub.add_parser("hour")
    h.add_argument("--minutes", type=float, default=60.0)
    h.add_argument("--bpm", type=float, default=120.0)
    h.add_argument("--bundle")
    c = sub.add_parser("cycles")
    c.add_argument("--n", type=int, default=10_000)
    c.add_argument("--jack", type=int, default=0)
    a = p.parse_args(argv)
    threading.stack_size(0)
    r = hour(a.minutes, a.bpm, a.bundle) if a.what == "hour" else cycles(a.n, a.jack)
    print(json.dumps(r), flush=True)
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
