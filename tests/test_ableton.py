"""Ableton Live over AbletonOSC, against a stand-in (Live cannot run here): a python-osc server
with AbletonOSC's documented addresses, answering on a fixed reply port of the sender's host as
AbletonOSC does (11001 there; a free port here). ``moodroll send live`` puts a real take
(written by ``moodroll generate`` with the random-weight bundle) into a clip whose notes equal
the file's (read independently with pretty_midi); --follow live drives a real LiveStream."""
import threading

import pretty_midi
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer

from engine.cli import main
from engine.daw.ableton import LISTEN, AbletonFollower, LiveBridgeError, send_take
from engine.daw.oscio import build
from engine.paths import EXAMPLES
from engine.tokenizer import Tokenizer
from tests.test_osc_server import free_port as _free_port
from tests.test_osc_transport import StandInDaw, check_stream_follows


class StandInLive(StandInDaw):
    """AbletonOSC's addresses over a Live set of ``tracks`` x ``scenes`` clip slots."""

    def __init__(self, reply_port: int, tracks: int = 4, scenes: int = 8):
        self.reply_port, self.tracks, self.scenes = reply_port, tracks, scenes
        self.clips: dict = {}  # (track, slot) -> {"length", "notes", "name"}
        self.audio_tracks = {3}  # the 4th track is an audio track: no MIDI clips there
        self.selected = (0, 0)  # Live's selected track (== tracks: the master) and scene
        self.received: list = []  # (address, args) in order
        self.listening: set = set()
        self.playing = False
        d = Dispatcher()
        d.set_default_handler(self._handle, needs_reply_address=True)
        self.server = ThreadingOSCUDPServer(("127.0.0.1", 0), d)
        self.port = self.server.server_address[1]
        self._serve = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._serve.start()
        self.client = None
        super().__init__()

    def reply(self, address, *args):
        if self.client is not None:
            self.server.socket.sendto(build(address, list(args)), (self.client[0], self.reply_port))

    def _handle(self, client, address, *args):
        self.client = client
        self.received.append((address, list(args)))
        slot = tuple(int(x) for x in args[:2]) if len(args) >= 2 else None
        clip = self.clips.get(slot)
        if address == "/live/test":
            self.reply(address, "ok")
        elif address == "/live/song/get/num_tracks":
            self.reply(address, self.tracks)
        elif address == "/live/song/get/num_scenes":
            self.reply(address, self.scenes)
        elif address == "/live/view/get/selected_track":
            if self.selected[0] == "return":  # older AbletonOSC: list(song.tracks).index() raises
                self.reply("/live/error", "Error handling OSC message: ValueError: track is not in list")
            else:
                self.reply(address, self.selected[0])
        elif address == "/live/view/get/selected_scene":
            self.reply(address, self.selected[1])
        elif address == "/live/clip_slot/get/has_clip":
            self.reply(address, *slot, clip is not None)
        elif address == "/live/clip_slot/create_clip":
            if slot[0] in self.audio_tracks:
                pass  # Live raises; AbletonOSC logs it and answers nothing
            elif clip is not None:
                self.reply("/live/error", "Error handling OSC message: Clip slot already has a clip")
            else:
                self.clips[slot] = {"length": float(args[2]), "notes": [], "name": ""}
        elif address == "/live/clip_slot/delete_clip":
            self.clips.pop(slot, None)
        elif address == "/live/clip/add/notes":
            rest = args[2:]
            assert len(rest) % 5 == 0
            clip["notes"] += [tuple(rest[i:i + 5]) for i in range(0, len(rest), 5)]
        elif address == "/live/clip/set/name":
            clip["name"] = args[2]
        elif address in ("/live/clip/get/name", "/live/clip/get/length"):
            if clip is not None:  # (no clip: AbletonOSC fails and answers nothing)
                self.reply(address, *slot, clip[address.rsplit("/", 1)[1]])
        elif address.startswith("/live/song/start_listen/"):
            prop = address.rsplit("/", 1)[1]
            self.listening.add(prop)
            self._send_property(prop)  # AbletonOSC sends the current value at once
        elif address.startswith("/live/song/stop_listen/"):
            self.listening.discard(address.rsplit("/", 1)[1])

    def _send_property(self, prop):
        now = __import__("time").monotonic()
        value = {"tempo": float(self.bpm), "is_playing": self.playing,
                 "current_song_time": float(self.beat_at(now) or 0.0),
                 "signature_numerator": 4, "signature_denominator": 4}[prop]
        self.reply(f"/live/song/get/{prop}", value)

    # the stand-in DAW's transport, said the way AbletonOSC's listeners say it
    def send_playing(self, playing):
        self.playing = playing
        if "is_playing" in self.listening:
            self._send_property("is_playing")

    def send_tempo(self, bpm):
        if "tempo" in self.listening:
            self._send_property("tempo")

    def send_position(self, beat):
        if "current_song_time" in self.listening:
            self.reply("/live/song/get/current_song_time", float(beat))
            if int(beat) != int(beat - self.period * self.bpm / 60):
                self.reply("/live/song/beat", int(beat))

    def close(self):
        super().close()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def take(random_bundle, tmp_path_factory):
    """A real take: `moodroll generate` with the random-weight bundle, 4 bars at a VA point, in a key."""
    out = tmp_path_factory.mktemp("takes") / "dusk.mid"
    assert main(["generate", "-o", str(out), "--valence", "7", "--arousal", "3", "--bars", "4", "--key", "A minor",
                 "--seed", "2", "--bundle", str(random_bundle), "--bpm", "100"]) == 0
    return out


@pytest.fixture()
def live():
    reply_port = _free_port()
    s = StandInLive(reply_port)
    yield s
    s.close()


def _file_notes(path):
    """The file's notes in beats, read by pretty_midi (independent of the engine's reader)."""
    pm = pretty_midi.PrettyMIDI(str(path))
    res = pm.resolution
    notes = []
    for inst in pm.instruments:
        for n in inst.notes:
            s, e = pm.time_to_tick(n.start), pm.time_to_tick(n.end)
            notes.append((n.pitch, s / res, (e - s) / res, n.velocity))
    return sorted(notes, key=lambda n: (n[1], n[0]))


def test_send_take_makes_a_clip_with_every_note(live, take):
    line = send_take(take, track=1, slot=2, port=live.port, reply_port=live.reply_port)
    clip = live.clips[(1, 2)]
    want = _file_notes(take)
    assert clip["length"] == 4.0 * (max(n[1] for n in want) // 4 + 1) == 16.0  # the 4 bars that hold every onset
    assert clip["name"] == "dusk (V 7.0, A 3.0, A minor)"  # from the take's own metadata
    got = sorted(((p, s, d, v) for p, s, d, v, mute in clip["notes"]), key=lambda n: (n[1], n[0]))
    assert len(got) == len(want) > 0
    for g, w in zip(got, want):
        assert g[0] == w[0] and g[3] == w[3]
        assert g[1] == pytest.approx(w[1], abs=1e-4) and g[2] == pytest.approx(w[2], abs=1e-4)  # OSC floats are 32-bit
    assert all(mute is False for *_, mute in clip["notes"])
    addresses = [a for a, _ in live.received]
    assert addresses.index("/live/clip_slot/create_clip") < addresses.index("/live/clip/add/notes") < \
        addresses.index("/live/clip/set/name")
    assert f"{len(want)} notes" in line and "track 2, slot 3" in line


def test_a_full_slot_is_refused_unless_replace(live, take):
    send_take(take, track=0, slot=0, port=live.port, reply_port=live.reply_port)
    live.clips[(0, 0)]["name"] = "mine"
    with pytest.raises(LiveBridgeError, match="track 1, slot 1 already holds a clip"):
        send_take(take, track=0, slot=0, port=live.port, reply_port=live.reply_port)
    assert live.clips[(0, 0)]["name"] == "mine"  # untouched
    send_take(take, track=0, slot=0, port=live.port, reply_port=live.reply_port, replace=True)
    assert live.clips[(0, 0)]["name"].startswith("dusk")


def test_without_track_and_slot_takes_stack_up_from_the_selection(live, take):
    """The app's Send to Live: Live's selected track, the first empty slot from the selected scene down."""
    live.selected = (2, 5)
    live.clips[(2, 6)] = {"length": 4.0, "notes": [], "name": "mine"}
    lines = [send_take(take, port=live.port, reply_port=live.reply_port) for _ in range(2)]
    assert "track 3, slot 6" in lines[0] and "track 3, slot 8" in lines[1]  # slot 7 (index 6) was full
    assert live.clips[(2, 6)]["name"] == "mine" and live.clips[(2, 5)]["name"].startswith("dusk")
    before = dict(live.clips)
    with pytest.raises(LiveBridgeError, match="track 3 has no empty slot from scene 6 down: add a scene"):
        send_take(take, port=live.port, reply_port=live.reply_port)
    live.selected = (4, 0)  # the master track
    with pytest.raises(LiveBridgeError, match="selected track is the master or a return track"):
        send_take(take, port=live.port, reply_port=live.reply_port)
    live.selected = ("return", 0)  # an older AbletonOSC answers that with an error, not an index
    with pytest.raises(LiveBridgeError, match="selected track is the master or a return track"):
        send_take(take, port=live.port, reply_port=live.reply_port)  # (waits out the 2-s answer timeout)
    assert live.clips == before  # refusals change nothing


def test_no_such_track_or_slot(live, take):
    with pytest.raises(LiveBridgeError, match="has 4 tracks; there is no track 5"):
        send_take(take, track=4, slot=0, port=live.port, reply_port=live.reply_port)
    with pytest.raises(LiveBridgeError, match="has 8 scenes; there is no slot 9"):
        send_take(take, track=0, slot=8, port=live.port, reply_port=live.reply_port)
    assert live.clips == {}


def test_an_audio_track_makes_no_clip(live, take):
    with pytest.raises(LiveBridgeError, match=r"Live made no clip in track 4, slot 1 \(is it a MIDI track\?\)"):
        send_take(take, track=3, slot=0, port=live.port, reply_port=live.reply_port, timeout=0.5)


def test_no_live_is_one_line(take):
    with pytest.raises(LiveBridgeError, match="no answer from AbletonOSC at 127.0.0.1:.* to /live/test"):
        send_take(take, port=_free_port(), reply_port=_free_port(), timeout=0.3)


def test_cli_send_live(live, take, tmp_path, capsys):
    rc = main(["send", "live", str(take), "--track", "3", "--slot", "4", "--port", str(live.port),
               "--reply-port", str(live.reply_port)])
    out, err = capsys.readouterr()
    assert rc == 0 and out.startswith("sent dusk.mid to Live: track 3, slot 4") and (2, 3) in live.clips
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd nonsense")
    rc = main(["send", "live", str(bad), "--port", str(live.port), "--reply-port", str(live.reply_port)])
    out, err = capsys.readouterr()
    assert rc == 2 and err.startswith("moodroll: cannot read MIDI file") and err.count("\n") == 1


def test_example_take_without_metadata_is_named_after_the_file(live):
    send_take(EXAMPLES / "example.mid", port=live.port, reply_port=live.reply_port)
    name = live.clips[(0, 0)]["name"]
    assert name.startswith("example")
    assert len(live.clips[(0, 0)]["notes"]) == len(_file_notes(EXAMPLES / "example.mid"))


def test_stream_follows_live(jack_server, live):
    tok = Tokenizer()
    follower = AbletonFollower(port=live.port, reply_port=live.reply_port).start()
    try:
        assert follower.wait(lambda f: f.bpm == 120.0 and f.playing is False, 10)
        assert follower.wait(lambda f: live.listening == set(LISTEN), 10)  # (re-checked at each answer)
        measured = check_stream_follows(live, follower, tok.encode(EXAMPLES / "example.mid"), tok, "Moodroll abl")
        print(f"\nlive follow: {measured}")
    finally:
        follower.close()
