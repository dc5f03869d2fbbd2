"""Ableton Live over AbletonOSC: Moodroll against AbletonOSC's own code (../shared/thirdparty/
AbletonOSC, copied to a temporary folder) running in its own process under a stand-in for
Live's host API (tests/live_host/): AbletonOSC's handlers, addresses, listeners, errors and
reply formats are the real ones; only Live's object model and main thread are stood in.

``moodroll send live`` puts a real take (written by ``moodroll generate`` with the random-weight
bundle) into a clip whose notes equal the file's (read independently with pretty_midi);
``--follow live`` drives a real LiveStream into a JACK port; Live 12's key is read and followed
(tests/test_ableton_key.py)."""
import pretty_midi
import pytest

from engine.cli import main
from engine.daw.ableton import LISTEN, AbletonFollower, LiveBridgeError, send_take
from engine.paths import EXAMPLES
from engine.music.tokenizer import Tokenizer
from tests.live_host import ABLETONOSC, LiveProcess, copy_abletonosc
from tests.test_osc_server import free_port
from tests.test_osc_transport import check_stream_follows


@pytest.fixture(scope="session")
def abletonosc(tmp_path_factory):
    """AbletonOSC, copied where it may write its logs/ (Live loads it from the user's folder)."""
    return copy_abletonosc(tmp_path_factory.mktemp("remote_scripts"))


@pytest.fixture()
def live(abletonosc):
    """A fresh Live set (4 tracks, the 4th audio; 8 scenes; 2 returns) with AbletonOSC on free ports."""
    host = LiveProcess(abletonosc, free_port(), free_port())
    yield host
    err = host.close()
    assert "Traceback" not in err, err[-3000:]


@pytest.fixture(scope="module")
def take(random_bundle, tmp_path_factory):
    """A real take: `moodroll generate` with the random-weight bundle, 4 bars at a VA point, in a key."""
    out = tmp_path_factory.mktemp("takes") / "dusk.mid"
    assert main(["generate", "-o", str(out), "--valence", "7", "--arousal", "3", "--bars", "4", "--key", "A minor",
                 "--seed", "2", "--bundle", str(random_bundle), "--bpm", "100"]) == 0
    return out


def _send(live, take, **kw):
    return send_take(take, port=live.port, reply_port=live.reply_port, **kw)


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


def test_the_copy_is_abletonosc_as_exported(abletonosc):
    """The code under test is AbletonOSC's own: every file of the copy equals the pinned export."""
    files = [p.relative_to(ABLETONOSC) for p in ABLETONOSC.rglob("*.py")
             if "tests" not in p.parts and "client" not in p.parts and "__pycache__" not in p.parts]
    assert len(files) > 20 and (abletonosc / "abletonosc" / "song.py").is_file()
    for f in files:
        assert (abletonosc / f).read_bytes() == (ABLETONOSC / f).read_bytes(), f


def test_send_take_makes_a_clip_with_every_note(live, take):
    line = _send(live, take, track=1, slot=2)
    clip = live.clips()[(1, 2)]
    want = _file_notes(take)
    assert clip["length"] == 4.0 * (max(n[1] for n in want) // 4 + 1) == 16.0  # the 4 bars that hold every onset
    assert clip["name"] == "dusk (V 7.0, A 3.0, A minor)"  # from the take's own metadata
    got = sorted(((p, s, d, v) for p, s, d, v, mute in clip["notes"]), key=lambda n: (n[1], n[0]))
    assert len(got) == len(want) > 0
    for g, w in zip(got, want):
        assert g[0] == w[0] and g[3] == w[3]
        assert g[1] == pytest.approx(w[1], abs=1e-4) and g[2] == pytest.approx(w[2], abs=1e-4)  # OSC floats are 32-bit
    assert all(mute is False for *_, mute in clip["notes"])
    assert f"{len(want)} notes" in line and "track 2, slot 3" in line


def test_a_full_slot_is_refused_unless_replace(live, take):
    live.do("put_clip", track=0, slot=0, name="mine")
    with pytest.raises(LiveBridgeError, match="track 1, slot 1 already holds a clip"):
        _send(live, take, track=0, slot=0)
    assert live.clips()[(0, 0)]["name"] == "mine"  # untouched
    _send(live, take, track=0, slot=0, replace=True)
    assert live.clips()[(0, 0)]["name"].startswith("dusk")


def test_without_track_and_slot_takes_stack_up_from_the_selection(live, take):
    """The app's Send to Live: Live's selected track, the first empty slot from the selected scene down."""
    live.select(2, scene=5)
    live.do("put_clip", track=2, slot=6, name="mine")
    lines = [_send(live, take) for _ in range(2)]
    assert "track 3, slot 6" in lines[0] and "track 3, slot 8" in lines[1]  # slot 7 (index 6) was full
    clips = live.clips()
    assert clips[(2, 6)]["name"] == "mine" and clips[(2, 5)]["name"].startswith("dusk")
    with pytest.raises(LiveBridgeError, match="track 3 has no empty slot from scene 6 down: add a scene"):
        _send(live, take)
    # AbletonOSC answers a selected master or return track with /live/error ("... is not in list"): at once
    for other in ("master", "return"):
        live.select(other)
        with pytest.raises(LiveBridgeError, match="selected track is the master or a return track: select a MIDI track"):
            _send(live, take, timeout=30)  # (the error ends the wait, not the timeout)
    assert live.clips() == clips  # refusals change nothing


def test_no_such_track_or_slot(live, take):
    with pytest.raises(LiveBridgeError, match="has 4 tracks; there is no track 5"):
        _send(live, take, track=4, slot=0)
    with pytest.raises(LiveBridgeError, match="has 8 scenes; there is no slot 9"):
        _send(live, take, track=0, slot=8)
    assert live.clips() == {}


def test_an_audio_track_makes_no_clip(live, take):
    with pytest.raises(LiveBridgeError, match=r"^track 4 is an audio track: select a MIDI track"):
        _send(live, take, track=3, slot=0)
    live.select(3)
    with pytest.raises(LiveBridgeError, match=r"^track 4 is an audio track"):
        _send(live, take)
    # an AbletonOSC without /live/track/get/has_midi_input: Live's own refusal, in one line
    live.do("without", addresses=["/live/track/get/has_midi_input"])
    with pytest.raises(LiveBridgeError, match=r"^Live refused: MIDI clips can only be created in MIDI tracks$"):
        _send(live, take, track=3, slot=0)
    assert live.clips() == {}


def test_no_live_is_one_line(take):
    with pytest.raises(LiveBridgeError, match="no answer from AbletonOSC at 127.0.0.1:.* to /live/test"):
        send_take(take, port=free_port(), reply_port=free_port(), timeout=0.3)


def test_cli_send_live(live, take, tmp_path, capsys):
    rc = main(["send", "live", str(take), "--track", "3", "--slot", "4", "--port", str(live.port),
               "--reply-port", str(live.reply_port)])
    out, err = capsys.readouterr()
    assert rc == 0 and out.startswith("sent dusk.mid to Live: track 3, slot 4") and (2, 3) in live.clips()
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd nonsense")
    rc = main(["send", "live", str(bad), "--port", str(live.port), "--reply-port", str(live.reply_port)])
    out, err = capsys.readouterr()
    assert rc == 2 and err.startswith("moodroll: cannot read MIDI file") and err.count("\n") == 1


def test_example_take_without_metadata_is_named_after_the_file(live):
    send_take(EXAMPLES / "example.mid", port=live.port, reply_port=live.reply_port)
    clip = live.clips()[(0, 0)]
    assert clip["name"].startswith("example")
    assert len(clip["notes"]) == len(_file_notes(EXAMPLES / "example.mid"))


def test_follower_listens_and_follows_the_metre(live):
    """AbletonOSC's listeners: one of each property asked for; signature changes reach the follower."""
    follower = AbletonFollower(port=live.port, reply_port=live.reply_port).start()
    try:
        assert follower.wait(lambda f: f.bpm == 120.0 and f.playing is False, 10)
        listening = live.state()["listening"]
        assert all(listening.get(p) == 1 for p in LISTEN), listening  # (AbletonOSC replaces a repeated listen)
        live.do("signature", numerator=3, denominator=4)
        assert follower.wait(lambda f: f.beats_per_bar == 3.0, 10)
        live.do("signature", numerator=6, denominator=8)
        assert follower.wait(lambda f: f.beats_per_bar == 3.0 and f._metre == [6, 8], 10)
        live.do("signature", numerator=7, denominator=8)
        assert follower.wait(lambda f: f.beats_per_bar == 3.5, 10)
        live.set_tempo(97.0)
        assert follower.wait(lambda f: f.bpm == 97.0, 10)
    finally:
        follower.close()
    assert live.state()["listening"].get("tempo") is None  # stop_listen on close


def test_stream_follows_live(jack_server, live):
    tok = Tokenizer()
    follower = AbletonFollower(port=live.port, reply_port=live.reply_port).start()
    try:
        assert follower.wait(lambda f: f.bpm == 120.0 and f.playing is False, 10)
        measured = check_stream_follows(live, follower, tok.encode(EXAMPLES / "example.mid"), tok, "Moodroll abl")
        print(f"\nlive follow: {measured}")
    finally:
        follower.close()


def test_the_host_runs_abletonosc_on_its_clock(abletonosc):
    """Live's main thread on a virtual clock, in this process: AbletonOSC reads its socket at its
    100-ms tick (schedule_message) and answers then; while playing, current_song_time advances
    at the tempo and its listener reports it at every frame, exactly."""
    import socket

    from engine.daw.oscio import build, parse
    from tests.live_host.host import LiveHost

    now = [100.0]
    me = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    me.bind(("127.0.0.1", 0))
    me.settimeout(5)
    host = LiveHost(abletonosc, free_port(), me.getsockname()[1], clock=lambda: now[0])
    try:
        def got():
            msgs = []
            me.setblocking(False)
            try:
                while True:
                    msgs += parse(me.recv(65536))
            except BlockingIOError:
                pass
            me.settimeout(5)
            return msgs

        host.step(100.0)
        assert ("/live/startup", []) in got()  # AbletonOSC says it is up, as it loads
        to = ("127.0.0.1", host.osc_server._local_addr[1])
        me.sendto(build("/live/song/start_listen/current_song_time"), to)
        me.sendto(build("/live/test"), to)
        host.step(100.05)
        assert got() == []  # not yet: AbletonOSC reads at its tick
        host.step(100.1)
        assert got() == [("/live/song/get/current_song_time", [0.0]), ("/live/test", ["ok"])]
        host.do("tempo", bpm=90.0)
        host.do("play", beat=8.0)
        assert ("/live/song/get/current_song_time", [8.0]) in got()  # the locate, at once
        for k in range(1, 5):
            now[0] = 100.1 + k * 0.05
            host.step(now[0])
            (address, (beat,)), = [m for m in got() if m[0].endswith("current_song_time")]
            assert beat == pytest.approx(8.0 + k * 0.05 * 1.5, abs=1e-6)  # (OSC floats are 32-bit)
        host.do("stop")
        now[0] += 1.0
        host.step(now[0])
        assert [m for m in got() if m[0].endswith("current_song_time")] == []  # stopped: it stays put
    finally:
        host.close()
        me.close()
