"""``moodroll live`` and ``moodroll ports``: wiring a live session together.

:func:`run_live` builds the pieces from :class:`LiveOptions` — the generator from a bundle,
the output port (virtual "Moodroll" or an existing port), optionally the DAW clock follower
("Moodroll Clock In") and the webcam — runs a :class:`engine.live.decoder.LiveStream` until it ends
or is interrupted (Ctrl-C, SIGTERM, SIGHUP), and always cleans up: every sounding note gets
its note-off and CC 123 is sent. Every problem the user can fix raises :class:`LiveError`
with one line; status changes are reported through ``report`` (stderr in the CLI).
"""
from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from engine.errors import first_line
from engine.live.decoder import StreamOptions
from engine.live.player import CaptureError
from engine.live.performance import Performance
from engine.live.ports import DEFAULT_CLOCK_IN_NAME, DEFAULT_OUTPUT_NAME, MidiPortError, list_ports, resolve_api
from engine.model.controls import MusicalControls
from engine.model.sampling import SamplingOptions


class LiveError(ValueError):
    """A problem with the user's input or setup; one line."""


@dataclass(frozen=True)
class LiveOptions:
    image: str | None = None  # a picture
    webcam: str | None = None  # a camera number or a video file
    valence: float | None = None  # 1-9 (with an image: overrides its estimate)
    arousal: float | None = None
    port: str | None = None  # connect to this existing port; None = virtual "Moodroll"
    clock_in: str | bool = False  # True: virtual "Moodroll Clock In"; a name: that existing port
    clock_out: bool = False
    bpm: float | None = None
    key: str | None = None
    time_signature: tuple[int, int] | None = (4, 4)  # locked so bars line up with the DAW's; None = the model's
    seed: int | None = None
    temperature: float = 1.0
    top_p: float = 0.95
    guidance: float = 2.0  # emotion strength (classifier-free guidance; 1 = off; 2x decoding cost)
    attributes: bool = True  # key, tempo, density... follow the emotion (engine.emotion.planner)
    expression: float = 1.0  # a pianist's velocities and note lengths (engine.model.filters.expression)
    humanize: float = 0.0  # ms of seeded onset spread, own clock only (engine.music.humanize)
    bars: int | None = None
    midi_api: str | None = None
    bundle: str | None = None
    device: str = "auto"
    fps: float = 4.0  # webcam frames analysed per second
    capture: str | None = None  # on exit, write the last capture_bars bars here
    capture_bars: int = 8
    osc: int | None = None  # serve the /moodroll/* OSC control protocol on this UDP port (engine/daw/)
    osc_host: str = "127.0.0.1"
    follow: str | None = None  # the transport to follow: "midi" (clock), "live" (AbletonOSC), "reaper" (its OSC
    # surface), "jack" (the JACK transport, engine/daw/jack_transport.py), "link" (Ableton Link, engine/daw/link.py)
    follow_host: str = "127.0.0.1"  # live: where Live runs; reaper: the address to listen on
    follow_port: int | None = None  # live: AbletonOSC's port (11000); reaper: where Reaper sends (9001)


def _check(o: LiveOptions) -> None:
    modes = [o.image is not None, o.webcam is not None, o.image is None and o.webcam is None and o.valence is not None]
    if sum(modes) != 1 or (o.image is None and o.webcam is None and o.valence is None):
        raise LiveError("give one of --image PATH, --webcam N|FILE, or --valence V --arousal A")
    if (o.valence is None) != (o.arousal is None):
        raise LiveError("give both --valence and --arousal (1-9), or neither")
    if o.webcam is not None and o.valence is not None:
        raise LiveError("--webcam follows the camera; it cannot be combined with --valence/--arousal")
    if o.bars is not None and o.bars < 1:
        raise LiveError(f"--bars must be at least 1, got {o.bars}")
    if o.capture_bars < 1:
        raise LiveError(f"--capture-bars must be at least 1, got {o.capture_bars}")
    if o.follow not in (None, "midi", "live", "reaper", "jack", "link"):
        raise LiveError(f"--follow must be midi, live, reaper, jack or link, got {o.follow!r}")
    if o.follow in ("live", "reaper", "jack", "link") and o.clock_in:
        raise LiveError(f"--follow {o.follow} has its own transport; it cannot be combined with --clock-in")
    for name, port in (("--osc", o.osc), ("--follow-port", o.follow_port)):
        if port is not None and not 0 <= port <= 65535:
            raise LiveError(f"{name} must be a UDP port (0-65535), got {port}")
    if o.capture is not None and not Path(o.capture).expanduser().resolve().parent.is_dir():
        raise LiveError(f"cannot write {o.capture}: its folder does not exist")
    try:
        resolve_api(o.midi_api)  # an unknown MIDI system fails before the model loads
    except MidiPortError as e:
        raise LiveError(str(e)) from None


def run_live(o: LiveOptions, report: Callable[[str], None] = print,
             stop: threading.Event | None = None) -> int:
    """Run a live session until it ends (``bars``), ``stop`` is set, or Ctrl-C; returns an exit code."""
    _check(o)
    cleanup: list = []
    try:
        rgb = _read_inputs(o)
        perf = _performance(o, rgb, report)
        webcam = _webcam(o, perf, report, cleanup) if o.webcam is not None else None
        out, follower, key_follow = _ports(o, perf, report, cleanup)
        stream = perf.start(out, clock=follower, on_status=report,
                            options=_stream_options(o))
        cleanup.append(stream.stop)
        _control(o, perf, out.full_name, key_follow, report, cleanup)
        _play(perf, out, webcam, report, stop)
        if o.capture:
            try:
                path = stream.capture(o.capture, o.capture_bars)
                report(f"captured the last {o.capture_bars} bars to {path}")
            except CaptureError as e:
                report(f"capture: {e}")
        if stream.error is not None:
            raise LiveError(f"stopped by an error: {first_line(stream.error)}")
        report(f"{stream.notes_sent - stream.notes_failed} of {stream.notes_planned} notes played"
               + (f", {stream.notes_skipped} skipped (late)" if stream.notes_skipped else "")
               + (f", {stream.notes_failed} refused by the port" if stream.notes_failed else ""))
        return 0
    finally:
        for close in reversed(cleanup):
            try:
                close()
            except Exception:
                pass


def _read_inputs(o: LiveOptions):
    """Every input checked before the model loads: the VA, the picture (RGB or None), the camera."""
    from engine.emotion.va import check_va
    from engine.picture.image import load_image
    from engine.picture.webcam import WebcamError, open_capture

    try:
        _stream_options(o)
        SamplingOptions(temperature=o.temperature, top_p=o.top_p, seed=o.seed, guidance=o.guidance)
        _user_controls(o)
        if o.valence is not None:
            check_va(o.valence, o.arousal)
        rgb = load_image(o.image) if o.image is not None else None
        if o.webcam is not None:
            open_capture(o.webcam).release()  # a missing camera fails before the model loads
    except (ValueError, WebcamError) as e:
        raise LiveError(first_line(e)) from None
    return rgb


def _stream_options(o: LiveOptions) -> StreamOptions:
    return StreamOptions(bpm=o.bpm, bars=o.bars, clock_out=o.clock_out, humanize_ms=o.humanize, humanize_seed=o.seed)


def _user_controls(o: LiveOptions) -> MusicalControls:
    key = None if _follows_live_key(o) else o.key
    return MusicalControls(key=key, bpm=o.bpm, time_signature=o.time_signature, expression=o.expression)


def _performance(o: LiveOptions, rgb, report) -> Performance:
    """The generator loaded and the performance's starting mood: the picture's (or --valence's)."""
    from engine.model.bundle import BundleError
    from engine.model.generator import MusicGenerator

    sampling = SamplingOptions(temperature=o.temperature, top_p=o.top_p, seed=o.seed, guidance=o.guidance)
    user = _user_controls(o)
    try:
        gen = MusicGenerator(o.bundle, sampling, replace(user, bpm=None), device=o.device)
    except (BundleError, ValueError, OSError) as e:
        raise LiveError(first_line(e)) from None
    perf = Performance(gen, user, sampling, attributes=o.attributes)
    if rgb is not None:
        tokens, (v, a) = gen.analyze_image(rgb)
        if o.valence is not None:
            v, a = o.valence, o.arousal
        perf.set_picture((v, a), tokens)
        report(f"picture {o.image}: valence {v:.2f}, arousal {a:.2f}")
    elif o.valence is not None:
        perf.set_target((o.valence, o.arousal))
    return perf


def _webcam(o: LiveOptions, perf: Performance, report, cleanup: list):
    """The webcam (or video) steering the performance; its first frame sets the starting mood."""
    from engine.picture.webcam import WebcamError, WebcamVA, iter_frames

    def steer(va, tokens):
        report(f"webcam: valence {va[0]:.2f}, arousal {va[1]:.2f}")
        perf.set_picture(va, tokens)

    try:
        webcam = WebcamVA(o.webcam, perf.generator.analyze_image, steer, fps=o.fps, loop=not str(o.webcam).isdigit())
        cleanup.append(webcam.stop)
        for _, frame in iter_frames(o.webcam, realtime=False):
            webcam.process(frame)
            break
    except WebcamError as e:
        raise LiveError(first_line(e)) from None
    perf.set_picture(webcam.value, webcam.smoother.tokens)
    return webcam


def _ports(o: LiveOptions, perf: Performance, report, cleanup: list):
    """The output port, the transport to follow (a DAW's clock, OSC, JACK, Link) and Live's key."""
    from engine.live.clock import ClockFollower
    from engine.live.ports import MidiInput, MidiOutput

    try:
        out = MidiOutput(o.port, api=o.midi_api, name=DEFAULT_OUTPUT_NAME)
        cleanup.append(out.close)
        report(out.status)
        if o.attributes and perf.va() is not None:
            report(f"attributes: {perf.describe()}")
        follower = None
        if o.follow in ("live", "reaper", "jack", "link"):
            follower = _osc_follower(o)
            cleanup.append(follower.close)
            report(follower.status)
        key_follow = _live_key(o, follower, report) if _follows_live_key(o) else None
        if key_follow is not None:  # Live's key is the user's key lock, from the first bar
            cleanup.append(key_follow.close)
            perf.set_key(key_follow.key)
        if o.clock_in or o.follow == "midi":
            port = None if o.clock_in in (True, False) else o.clock_in
            clock_in = MidiInput(port, api=out.api, name=DEFAULT_CLOCK_IN_NAME)
            cleanup.append(clock_in.close)
            follower = ClockFollower(clock_in).start()
            cleanup.append(follower.close)
            report(f"following MIDI clock on {clock_in.full_name!r}: press play in the DAW")
    except MidiPortError as e:
        raise LiveError(first_line(e)) from None
    return out, follower, key_follow


def _control(o: LiveOptions, perf: Performance, port_name: str, key_follow, report, cleanup: list) -> None:
    """Live's key followed while playing, and the OSC control server (``--osc``)."""
    from engine.daw.live_control import LiveControl

    control = LiveControl(perf, port_name)
    if key_follow is not None:
        key_follow.follow(control, report, applied=perf.user.key)
    if o.osc is not None:
        from engine.daw.osc_server import OscControlServer

        try:
            server = OscControlServer(control, o.osc_host, o.osc).start()
        except OSError as e:
            raise LiveError(first_line(e)) from None
        cleanup.append(server.close)
        report(f"OSC control on udp {server.address} (/moodroll/..., see docs/protocol.md)")


def _play(perf: Performance, out, webcam, report, stop: threading.Event | None) -> None:
    """Until the stream ends, ``stop`` is set or Ctrl-C: the tempo ramp's steps, the port's news."""
    stream = perf.stream
    handlers = _install_signal_handlers()
    try:
        if webcam is not None:
            webcam.start()
        port_status = out.status
        while not stream.wait(0.2):
            if stop is not None and stop.is_set():
                break
            perf.on_bar()
            if out.status != port_status:  # the port vanished, or came back
                port_status = out.status
                report(port_status)
            if webcam is not None and webcam.error is not None:
                raise LiveError(f"webcam: {first_line(webcam.error)}")
    except KeyboardInterrupt:
        report("interrupted: stopping (all notes off)")
    finally:
        stream.stop()
        _restore_signal_handlers(handlers)


def _osc_follower(o: LiveOptions):
    """--follow live / reaper (OSC), jack (the JACK transport) or link (Ableton Link): started."""
    from engine.daw.ableton import LIVE_PORT, AbletonFollower
    from engine.daw.reaper import DEFAULT_PORT, ReaperFollower

    beats_per_bar = 4.0 if o.time_signature is None else o.time_signature[0] * 4.0 / o.time_signature[1]
    try:
        if o.follow == "jack":
            from engine.daw.jack_transport import JackTransport
            return JackTransport(bpm=o.bpm or 120.0, beats_per_bar=beats_per_bar).start()
        if o.follow == "link":
            from engine.daw.link import LinkTransport
            return LinkTransport(bpm=o.bpm or 120.0, beats_per_bar=beats_per_bar).start()
        if o.follow == "live":
            return AbletonFollower(o.follow_host, LIVE_PORT if o.follow_port is None else o.follow_port).start()
        port = DEFAULT_PORT if o.follow_port is None else o.follow_port
        return ReaperFollower(o.follow_host, port, time_signature=o.time_signature).start()
    except (OSError, ValueError, RuntimeError) as e:
        raise LiveError(first_line(e)) from None


def _follows_live_key(o: LiveOptions) -> bool:
    from engine.daw.live_key import LIVE_KEY

    return o.key is not None and o.key.strip().lower() == LIVE_KEY


def _live_key(o: LiveOptions, follower, report):
    """--key live: Live's key (engine/daw/live_key.py), asked on --follow live's connection if there
    is one (AbletonOSC answers one port), waited for briefly; the automatic key if Live has none."""
    from engine.daw.ableton import AbletonFollower, LiveBridgeError
    from engine.daw.live_key import LiveKey

    ours = o.follow in (None, "live")
    try:
        k = LiveKey(follower.client if isinstance(follower, AbletonFollower) else None,
                    host=o.follow_host if ours else "127.0.0.1", port=o.follow_port if ours else None).start()
    except LiveBridgeError as e:
        raise LiveError(first_line(e)) from None
    k.wait(k.answer_s + 0.5)
    report(k.line)
    return k


def _install_signal_handlers() -> dict:
    """SIGTERM and SIGHUP stop cleanly like Ctrl-C (main thread only; elsewhere: nothing)."""
    old = {}
    if threading.current_thread() is not threading.main_thread():
        return old

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            try:
                old[sig] = signal.signal(sig, interrupt)
            except (ValueError, OSError):
                pass
    return old


def _restore_signal_handlers(old: dict) -> None:
    for sig, handler in old.items():
        try:
            signal.signal(sig, handler)
        except (ValueError, OSError):
            pass


def format_ports(api: str | None = None) -> str:
    """``moodroll ports``: inputs and outputs of every MIDI system, as text."""
    try:
        table = list_ports(api)
    except MidiPortError as e:
        raise LiveError(str(e)) from None
    lines = []
    for name, ports in table.items():
        lines.append(f"{name}:")
        if "error" in ports:
            lines.append(f"  (not available: {ports['error']})")
            continue
        for kind, label in (("outputs", "outputs (Moodroll can play to)"), ("inputs", "inputs (Moodroll can read clock from)")):
            lines.append(f"  {label}:")
            lines.extend(f"    {p}" for p in ports[kind]) if ports[kind] else lines.append("    (none)")
    return "\n".join(lines)
