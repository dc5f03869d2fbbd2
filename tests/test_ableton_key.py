"""Live 12's song key as Moodroll's key lock, against AbletonOSC's own code under the Live host
stand-in (tests/live_host/): the mapping of Live's scale names, reading and following the key,
older Live / AbletonOSC (one line, the automatic key), ``moodroll generate --key live`` and
``moodroll live --key live --follow live`` (a key change in Live is heard from a bar line)."""
import queue
import threading

import pretty_midi
import pytest

from engine.cli import main
from engine.music.theory import SCALES, parse_key
from engine.daw.live_key import LIVE_SCALES, LiveKey, key_from_live, read_live_key
from tests.live_host import LiveProcess, copy_abletonosc
from tests.test_osc_server import free_port

# Live 12's scales as semitones above the root (written out here, independently of the mapping)
LIVE_INTERVALS = {
    "Major": (0, 2, 4, 5, 7, 9, 11), "Minor": (0, 2, 3, 5, 7, 8, 10), "Dorian": (0, 2, 3, 5, 7, 9, 10),
    "Mixolydian": (0, 2, 4, 5, 7, 9, 10), "Lydian": (0, 2, 4, 6, 7, 9, 11), "Phrygian": (0, 1, 3, 5, 7, 8, 10),
    "Locrian": (0, 1, 3, 5, 6, 8, 10), "Whole Tone": (0, 2, 4, 6, 8, 10), "Half-whole Dim.": (0, 1, 3, 4, 6, 7, 9, 10),
    "Whole-half Dim.": (0, 2, 3, 5, 6, 8, 9, 11), "Minor Blues": (0, 3, 5, 6, 7, 10),
    "Minor Pentatonic": (0, 3, 5, 7, 10), "Major Pentatonic": (0, 2, 4, 7, 9), "Harmonic Minor": (0, 2, 3, 5, 7, 8, 11),
    "Harmonic Major": (0, 2, 4, 5, 7, 8, 11), "Dorian #4": (0, 2, 3, 6, 7, 9, 10),
    "Phrygian Dominant": (0, 1, 4, 5, 7, 8, 10), "Melodic Minor": (0, 2, 3, 5, 7, 9, 11),
    "Lydian Augmented": (0, 2, 4, 6, 8, 9, 11), "Lydian Dominant": (0, 2, 4, 6, 7, 9, 10),
    "Super Locrian": (0, 1, 3, 4, 6, 8, 10), "8-Tone Spanish": (0, 1, 3, 4, 5, 6, 8, 10),
    "Bhairav": (0, 1, 4, 5, 7, 8, 11), "Hungarian Minor": (0, 2, 3, 6, 7, 8, 11), "Hirajoshi": (0, 2, 3, 7, 8),
    "In-Sen": (0, 1, 5, 7, 10), "Iwato": (0, 1, 5, 6, 10), "Kumoi": (0, 2, 3, 7, 9), "Pelog Selisir": (0, 1, 3, 7, 8),
    "Pelog Tembung": (0, 1, 5, 7, 8), "Messiaen 3": (0, 2, 3, 4, 6, 7, 8, 10, 11),
    "Messiaen 4": (0, 1, 2, 5, 6, 7, 8, 11), "Messiaen 5": (0, 1, 5, 6, 7, 11), "Messiaen 6": (0, 2, 4, 5, 6, 8, 10, 11),
    "Messiaen 7": (0, 1, 2, 3, 5, 6, 7, 8, 9, 11),
}


@pytest.fixture(scope="session")
def abletonosc(tmp_path_factory):
    return copy_abletonosc(tmp_path_factory.mktemp("remote_scripts_key"))


def _live(abletonosc, **kw):
    return LiveProcess(abletonosc, free_port(), free_port(), **kw)


@pytest.fixture()
def live(abletonosc):
    host = _live(abletonosc)
    yield host
    assert "Traceback" not in host.close()


def test_every_live_scale_maps_to_the_engine_scale_with_its_notes_or_to_none():
    assert list(LIVE_SCALES) == list(LIVE_INTERVALS)  # Live 12's 35 scales, in its menu's order
    for name, steps in LIVE_INTERVALS.items():
        ours = LIVE_SCALES[name]
        if ours is not None:
            assert SCALES[ours] == steps, name
        else:  # the engine really has not got it
            assert steps not in SCALES.values(), name
    assert sum(v is not None for v in LIVE_SCALES.values()) == 12


@pytest.mark.parametrize("root", range(12))
def test_every_root_of_every_mapped_scale_is_a_key_with_live_s_notes(root):
    for name, ours in LIVE_SCALES.items():
        key, line = key_from_live(root, name)
        if ours is None:
            assert key is None and "a scale Moodroll has not got" in line and "the key follows the mood" in line
            continue
        pcs = parse_key(key).pitch_classes
        assert pcs == {(root + i) % 12 for i in LIVE_INTERVALS[name]}, (root, name, key)
        assert line == f"Live's key: {key}"
    assert key_from_live(2, "Dorian")[0] == "D dorian" and key_from_live(10, "Minor")[0] == "Bb minor"
    assert key_from_live(12, "Major")[0] is None and key_from_live(0, 7)[0] is None
    assert key_from_live(0, "Lydian Flat")[1] == "Live's scale 'Lydian Flat' is not one Moodroll knows: the key follows the mood"


def test_reads_live_s_key(live):
    key, line = read_live_key(port=live.port, reply_port=live.reply_port)
    assert (key, line) == ("C major", "Live's key: C major")  # a new Live set's key
    live.set_key(2, "Dorian")
    assert read_live_key(port=live.port, reply_port=live.reply_port)[0] == "D dorian"
    live.set_key(1, "Phrygian Dominant")
    key, line = read_live_key(port=live.port, reply_port=live.reply_port)
    assert key is None and line.startswith("Live's key is C# Phrygian Dominant, a scale Moodroll has not got")


def test_follows_changes_and_stops_listening(live):
    got: queue.SimpleQueue = queue.SimpleQueue()
    k = LiveKey(port=live.port, reply_port=live.reply_port, on_change=lambda key, line: got.put(key)).start()
    try:
        assert got.get(timeout=10) == "C major"
        assert live.state()["listening"] == {"root_note": 1, "scale_name": 1}
        live.set_key(7, "Mixolydian")
        seen = [got.get(timeout=10)]  # root and scale are two properties: G major, then G mixolydian
        while seen[-1] != "G mixolydian":
            seen.append(got.get(timeout=10))
        assert seen[0] in ("G major", "G mixolydian")
        live.set_key(7, "Hirajoshi")
        assert got.get(timeout=10) is None and "Hirajoshi" in k.line
    finally:
        k.close()
    assert live.state()["listening"] == {}


@pytest.mark.parametrize("older", ["Live 11", "AbletonOSC without the key"])
def test_older_live_is_one_line_and_the_automatic_key(abletonosc, older):
    host = _live(abletonosc, version=11) if older == "Live 11" else _live(abletonosc)
    try:
        if older != "Live 11":
            host.do("without", addresses=[f"/live/song/{v}/{p}" for v in ("get", "start_listen", "stop_listen")
                                          for p in ("root_note", "scale_name")])
        k = LiveKey(port=host.port, reply_port=host.reply_port, answer_s=60).start()
        try:
            assert k.wait(30) and k.refused and k.key is None  # AbletonOSC's /live/error, not a silence
            why = "'Song' object has no attribute 'root_note'" if older == "Live 11" else "Unknown OSC address"
            assert k.line.startswith("Live did not say its key (a song key needs Live 12") and why in k.line
            assert k.line.endswith("the key follows the mood") and "\n" not in k.line
        finally:
            k.close()
    finally:
        host.close()


def test_no_live_is_one_line():
    key, line = read_live_key(port=free_port(), reply_port=free_port(), timeout=0.3)
    assert key is None and line.startswith("no answer from AbletonOSC at 127.0.0.1:") and line.endswith("follows the mood")


def test_generate_key_live(live, random_bundle, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("engine.daw.ableton.LIVE_PORT", live.port)
    monkeypatch.setattr("engine.daw.ableton.REPLY_PORT", live.reply_port)
    live.set_key(9, "Harmonic Minor")
    out = tmp_path / "in_live.mid"
    rc = main(["generate", "-o", str(out), "--valence", "4", "--arousal", "6", "--bars", "4", "--seed", "5",
               "--key", "live", "--bundle", str(random_bundle)])
    o, e = capsys.readouterr()
    assert rc == 0 and "[A harmonic minor ·" in o and e == "moodroll: Live's key: A harmonic minor\n"
    pitches = [n.pitch for inst in pretty_midi.PrettyMIDI(str(out)).instruments for n in inst.notes]
    assert pitches and {p % 12 for p in pitches} <= parse_key("A harmonic minor").pitch_classes
    live.set_key(9, "Iwato")  # not one of the engine's: the automatic key, one line
    rc = main(["generate", "-o", str(out), "--valence", "4", "--arousal", "6", "--bars", "2", "--seed", "5",
               "--key", "live", "--bundle", str(random_bundle)])
    o, e = capsys.readouterr()
    assert rc == 0 and e.count("\n") == 1 and "A Iwato, a scale Moodroll has not got" in e


def test_live_follows_live_s_key_from_a_bar_line(jack_server, live, random_bundle, monkeypatch):
    """`moodroll live --follow live --key live`: C major until Live's key changes to F# major, then
    F# major from a bar line within the bars already decoded (the decoder is 1-1.5 bars ahead)."""
    from tools.bench.realtime import Recorder
    from engine.live.command import LiveOptions, run_live

    monkeypatch.setattr("engine.daw.ableton.REPLY_PORT", live.reply_port)
    live.set_tempo(240.0)  # a bar a second
    lines: list[str] = []
    stop = threading.Event()
    synth = Recorder(None, api="jack", name="Key Synth")
    o = LiveOptions(valence=6, arousal=6, key="live", follow="live", follow_port=live.port, port="Key Synth",
                    midi_api="jack", bundle=str(random_bundle), seed=4)
    rc: list = []
    t = threading.Thread(target=lambda: rc.append(run_live(o, report=lines.append, stop=stop)), daemon=True)
    t.start()
    try:
        assert synth.wait_for(lambda r: any("Live's key: C major" in x for x in lines), 60), lines
        assert synth.wait_for(lambda r: any("waiting for" in x or "press play" in x for x in lines), 60), lines
        live.play(0.0)
        t0 = live.anchor[0]
        assert synth.wait_for(lambda r: len(r.note_ons()) >= 10 and r.note_ons()[-1][0] > t0 + 3.0, 60)
        import time

        changed = time.monotonic()
        live.set_key(6, "Major")
        assert synth.wait_for(lambda r: r.note_ons()[-1][0] > changed + 5.0, 60)
    finally:
        stop.set()
        t.join(30)
        synth.close()
    assert rc == [0], lines
    assert any(x == "Live's key: F# major (from the next bar)" for x in lines), lines

    def bar(arrival):  # the Live bar a note sounded in (arrivals are late by JACK's delivery, never early)
        return int(((arrival - t0) * 4.0 + 0.05) // 4)

    c, fs = parse_key("C major").pitch_classes, parse_key("F# major").pitch_classes
    notes = [(bar(a), p % 12) for a, p, v in synth.note_ons()]
    first_new = min(b for b, pc in notes if pc not in c)  # the first bar with a note outside C major
    print(f"\nkey changed in Live's bar {bar(changed) + 1}, heard from bar {first_new + 1}; "
          f"{len(notes)} notes, {sum(b >= first_new for b, _ in notes)} in F# major")
    assert bar(changed) < first_new <= bar(changed) + 3
    assert all(pc in c for b, pc in notes if b < first_new)
    assert all(pc in fs for b, pc in notes if b >= first_new)
    assert any(b < first_new for b, _ in notes) and sum(b >= first_new for b, _ in notes) >= 5


def test_send_to_live_while_following_its_key(live):
    """One process, one AbletonOSC reply port: the key follower and Send to Live share the connection."""
    from engine.daw.ableton import send_take
    from engine.paths import EXAMPLES

    got: queue.SimpleQueue = queue.SimpleQueue()
    k = LiveKey(port=live.port, reply_port=live.reply_port, on_change=lambda key, line: got.put(key)).start()
    try:
        assert got.get(timeout=10) == "C major"
        line = send_take(EXAMPLES / "example.mid", port=live.port, reply_port=live.reply_port)
        assert "track 1, slot 1" in line and (0, 0) in live.clips()
        live.set_key(4, "Minor")
        while got.get(timeout=10) != "E minor":
            pass
    finally:
        k.close()
