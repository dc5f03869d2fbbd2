"""The /moodroll/* OSC control server on real UDP sockets, steering a real live session: the
generator (random-weight bundle) playing through a real JACK port, the CLI's adapter
(engine/daw/live_control.py) between them. Every address, good and bad; one error line per bad
datagram. Outcomes are decided by the packets that come back (bounded waits), never by sleeps."""
import queue
import time

import cv2
import mido
import numpy as np
import pytest

from tools.bench.realtime import Recorder
from engine.daw.live_control import LiveControl
from engine.daw.oscio import OscSocket, build
from engine.daw.osc_server import OscControlServer
from engine.daw.protocol import MESSAGES, check_args
from engine.live.ports import MidiOutput
from engine.live.decoder import LiveStream, StreamOptions
from engine.live.performance import Performance


class OscPeer:
    """A test's end of the conversation: sends from its own UDP socket, collects what comes back."""

    def __init__(self, to):
        self.to = to
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.socket = OscSocket("127.0.0.1", 0, lambda a, args, s, t: self.inbox.put((a, args)),
                                lambda why, s: self.inbox.put(("<bad>", [why]))).start()

    def send(self, address, *args):
        assert self.socket.send(address, list(args), self.to)

    def send_raw(self, data: bytes):
        self.socket.sock.sendto(data, self.to)

    def next(self, timeout=10.0):
        return self.inbox.get(timeout=timeout)

    def ask(self, address, *args, expect=None, timeout=10.0):
        """Send, then return the first reply on ``expect`` (default: the same address) or an error."""
        self.send(address, *args)
        want = expect or address
        end = time.monotonic() + timeout
        while True:
            a, got = self.inbox.get(timeout=max(0.01, end - time.monotonic()))
            if a in (want, "/moodroll/error"):
                return a, got

    def drain(self):
        out = []
        while True:
            try:
                out.append(self.inbox.get_nowait())
            except queue.Empty:
                return out

    def close(self):
        self.socket.close()


_HANDED_OUT: set = set()


def free_port() -> int:
    """A UDP port nobody uses right now (for a peer that must know it before the other side binds),
    from below the kernel's ephemeral range: a socket the kernel numbers itself (bind to 0, an
    unbound sender) cannot take it between this call and the peer's bind, and no two calls in a
    run hand out the same port."""
    import random
    import socket

    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(500):
        port = random.randrange(max(1024, low - 12000), low) if low > 2048 else 0
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", port))
            port = s.getsockname()[1]
        except OSError:
            continue
        finally:
            s.close()
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free UDP port on 127.0.0.1")


@pytest.fixture(scope="module")
def session(jack_server, bundle):
    """A live session: generator -> LiveStream -> JACK port -> recorder; its OSC server on a free port."""
    from engine.model.generator import Condition, MusicGenerator
    from engine.model.sampling import SamplingOptions

    gen = MusicGenerator(bundle, SamplingOptions(seed=5, guidance=2.0), condition=Condition(4.0, 4.0), device="cpu",
                         threads=1)
    out = MidiOutput(api="jack", name="Moodroll osc", monitor_s=0)
    rec = Recorder(out.full_name, api="jack", name="osc rec")
    perf = Performance(gen, attributes=False)
    perf.set_target((4.0, 4.0))
    control = LiveControl(perf, out.full_name)
    server = OscControlServer(control, port=0).start()
    peer = OscPeer((server.host, server.port))
    stream = perf.start(out, options=StreamOptions(bpm=240))
    assert rec.wait_for(lambda r: len(r.note_ons()) >= 2, timeout=60)
    yield dict(gen=gen, out=out, rec=rec, stream=stream, perf=perf, control=control, server=server, peer=peer)
    peer.close(), server.close(), stream.stop(), rec.close(), out.close()


def _eventually(pred, timeout=30.0):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_server_binds_loopback_and_status_answers_the_sender(session):
    server, peer = session["server"], session["peer"]
    assert server.host == "127.0.0.1"
    a, args = peer.ask("/moodroll/status")
    assert a == "/moodroll/status"
    state, bar, bpm, v, arousal, port, line = args
    assert state in ("playing", "waiting") and isinstance(bar, int) and bar >= 0
    assert bpm == pytest.approx(240.0) and (v, arousal) == (4.0, 4.0)
    assert port == session["out"].full_name and isinstance(line, str)


def test_va_key_strength_steer_from_the_next_bar(session):
    gen, peer, stream = session["gen"], session["peer"], session["stream"]
    bars_before = len(stream.decoded_bars)  # before sending: the decoder may reach a bar line any time after
    peer.send("/moodroll/va", 8.0, 7.0)
    peer.send("/moodroll/key", "D dorian")
    peer.send("/moodroll/strength", 3)  # an int is a number too
    a, args = peer.ask("/moodroll/status")  # answered after the three above were handled
    assert a == "/moodroll/status" and args[3:5] == [8.0, 7.0]
    assert _eventually(lambda: gen.condition.va == (8.0, 7.0) and gen.controls.key == "D dorian"
                       and gen.sampling.guidance == 3.0)
    assert len(stream.decoded_bars) > bars_before  # applied by the decoder at a bar line
    peer.send("/moodroll/key", "free")
    peer.send("/moodroll/strength", 2.0)
    assert _eventually(lambda: gen.controls.key is None and gen.sampling.guidance == 2.0)
    assert peer.drain() == []  # no error for any of it


def test_image_steers_by_the_picture_and_answers_its_mood(session, tmp_path):
    gen, peer = session["gen"], session["peer"]
    path = tmp_path / "sky.png"
    cv2.imwrite(str(path), np.full((40, 60, 3), (220, 160, 30), np.uint8))
    a, (p, v, ar) = peer.ask("/moodroll/image", str(path))
    assert a == "/moodroll/image" and p == str(path) and 1 <= v <= 9 and 1 <= ar <= 9
    assert _eventually(lambda: gen.condition.image_tokens is not None and gen.condition.va == (v, ar))
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    for bad, why in ((text, "not a decodable picture"), (tmp_path / "missing.jpg", "no such file"), (tmp_path, "no such file")):
        a, (line,) = peer.ask("/moodroll/image", str(bad))
        assert a == "/moodroll/error" and why in line and line.startswith("/moodroll/image: ")


def test_pause_stop_play(session):
    peer, stream, rec = session["peer"], session["stream"], session["rec"]
    peer.send("/moodroll/pause")
    assert peer.ask("/moodroll/status")[1][0] == "paused" and stream.paused
    assert rec.wait_for(lambda r: r.sounding() == set(), timeout=5)  # silenced at once
    peer.send("/moodroll/play")
    assert peer.ask("/moodroll/status")[1][0] in ("playing", "waiting") and not stream.paused
    n = len(rec.note_ons())
    assert rec.wait_for(lambda r: len(r.note_ons()) > n, timeout=30)  # it plays on
    peer.send("/moodroll/stop")
    assert peer.ask("/moodroll/status")[1][0] == "stopped"
    assert rec.wait_for(lambda r: r.sounding() == set(), timeout=5)
    peer.send("/moodroll/play")
    n = len(rec.note_ons())
    assert rec.wait_for(lambda r: len(r.note_ons()) > n, timeout=30)
    assert stream.running and stream.error is None


def test_capture_writes_the_last_bars(session, tmp_path):
    peer, stream = session["peer"], session["stream"]
    assert _eventually(lambda: len(stream.played_bars) >= 3, timeout=60)
    path = tmp_path / "last.mid"
    a, args = peer.ask("/moodroll/capture", 2, str(path))
    assert a == "/moodroll/capture" and args == [2, str(path)]
    mid = mido.MidiFile(path)
    assert mid.length > 0
    for bars, p, why in ((0, path, "bars must be 1-64"), (2, tmp_path / "x.txt", "must end in .mid"),
                         (2, tmp_path / "no" / "x.mid", "folder does not exist")):
        a, (line,) = peer.ask("/moodroll/capture", bars, str(p))
        assert a == "/moodroll/error" and why in line


@pytest.mark.parametrize("address,args,why", [
    ("/moodroll/nope", [], "unknown address '/moodroll/nope'"),
    ("/moodroll/va", [5.0], "takes 2 arguments (ff), got 1"),
    ("/moodroll/va", ["a", "b"], "argument 1 must be a number, got a string"),
    ("/moodroll/va", [0.5, 5.0], "valence must be between 1 and 9, got 0.5"),
    ("/moodroll/va", [5.0, float("nan")], "arousal must be between 1 and 9"),
    ("/moodroll/va", [True, 5.0], "argument 1 must be a number, got a true/false"),
    ("/moodroll/play", [1], "takes no arguments, got 1"),
    ("/moodroll/key", ["H major"], "/moodroll/key: "),
    ("/moodroll/key", [3], "argument 1 must be a string"),
    ("/moodroll/strength", [9.0], "strength must be above 0 and at most 5"),
    ("/moodroll/strength", [0], "strength must be above 0"),
    ("/moodroll/capture", [1.5, "a.mid"], "argument 1 must be a whole number"),
    ("/moodroll/image", [""], "the picture path is empty"),
    ("/moodroll/image", [b"\x00\x01"], "argument 1 must be a string, got a blob"),
])
def test_bad_messages_get_one_error_line_each(session, address, args, why):
    peer = session["peer"]
    peer.drain()
    a, (line,) = peer.ask(address, *args)
    assert a == "/moodroll/error" and why in line
    assert "\n" not in line
    a, _ = peer.ask("/moodroll/status")  # nothing else came, and it still answers
    assert a == "/moodroll/status"
    assert peer.drain() == []


def test_bytes_that_are_not_osc_get_an_error(session):
    peer = session["peer"]
    peer.drain()
    for junk in (b"hello", b"", b"\xff" * 64, b"#bundle\x00" + b"\x01" * 3, b"/moodroll/va\x00\x00\x00\x00,ff\x00\x00\x00"):
        peer.send_raw(junk)
        a, (line,) = peer.next()
        assert a == "/moodroll/error" and line.startswith("not an OSC packet"), junk
    assert peer.ask("/moodroll/status")[0] == "/moodroll/status"


def test_a_bundle_is_taken_message_by_message(session):
    from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
    from pythonosc.osc_message_builder import OscMessageBuilder

    peer, gen = session["peer"], session["gen"]
    b = OscBundleBuilder(IMMEDIATELY)
    for address, args in (("/moodroll/va", [2.0, 8.0]), ("/moodroll/bad", [])):
        m = OscMessageBuilder(address)
        for x in args:
            m.add_arg(x)
        b.add_content(m.build())
    peer.drain()
    peer.send_raw(b.build().dgram)
    a, (line,) = peer.next()
    assert a == "/moodroll/error" and "/moodroll/bad" in line
    assert _eventually(lambda: gen.condition.va == (2.0, 8.0))


def test_every_documented_address_is_served(session):
    """The message table is what the server serves: each address answers or steers without an error."""
    assert set(MESSAGES) == {"/moodroll/va", "/moodroll/image", "/moodroll/play", "/moodroll/stop",
                             "/moodroll/pause", "/moodroll/key", "/moodroll/strength", "/moodroll/capture",
                             "/moodroll/status"}
    for m in MESSAGES.values():
        with pytest.raises(ValueError):
            check_args(m, [object()] * (len(m.types) + 1))


def test_a_port_in_use_is_one_line(session):
    server = session["server"]
    with pytest.raises(OSError, match=f"cannot open the OSC control port 127.0.0.1:{server.port}: in use"):
        OscControlServer(session["control"], port=server.port)


def test_build_and_parse_round_trip():
    from engine.daw.oscio import parse

    assert parse(build("/a/b", [1, 2.5, "s", True])) == [("/a/b", [1, 2.5, "s", True])]
    with pytest.raises(ValueError, match="not an OSC packet"):
        parse(b"\x00garbage")


@pytest.mark.parametrize("argv,why", [(["--osc", "70000"], "--osc must be a UDP port (0-65535), got 70000"),
                                      (["--follow-port", "-1"], "--follow-port must be a UDP port")])
def test_cli_checks_ports_before_loading_anything(capsys, argv, why):
    from engine.cli import main

    assert main(["live", "--valence", "5", "--arousal", "5", *argv]) == 2
    assert why in capsys.readouterr().err


def test_with_the_emotion_planner_mood_retargets_and_a_key_lock_survives_tempo_steps(session):
    """As run_live wires it: /moodroll/va retargets the automatic attributes; /moodroll/key becomes
    the planner's user lock, so the planner's next tempo step keeps it; 'free' hands the key back."""
    gen = session["gen"]
    perf = Performance(gen, gen.controls)
    perf.stream = session["stream"]  # steer the module's running stream through a planning performance
    control = LiveControl(perf, "x")
    server = OscControlServer(control, port=0).start()
    peer = OscPeer((server.host, server.port))
    try:
        peer.send("/moodroll/va", 2.0, 8.0)
        peer.send("/moodroll/key", "D dorian")
        assert peer.ask("/moodroll/status")[0] == "/moodroll/status"
        assert perf.planner.plan is not None and perf.planner.user.key == "D dorian"
        assert _eventually(lambda: gen.controls.key == "D dorian" and gen.controls.bpm == perf.planner.controls.bpm)
        step = perf.planner.on_bar()
        assert (step or perf.planner.controls).key == "D dorian"  # the ramp keeps the user's lock
        peer.send("/moodroll/key", "free")
        assert peer.ask("/moodroll/status")[0] == "/moodroll/status"
        assert perf.planner.user.key is None and perf.planner.controls.key == perf.planner.plan.key  # the mood's key again
        assert peer.drain() == []
    finally:
        peer.close(), server.close()
