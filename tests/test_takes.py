"""engine/takes/store.py: takes written atomically with their metadata inside the MIDI file, listed
newest first; kill -9 mid-write leaves no half file (a real subprocess killed with SIGKILL);
a full disk gives one line and keeps earlier takes; phrases autosaved from a real LiveStream
on a real JACK port, also when that port vanishes."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mido
import pytest

from engine.live.ports import MidiOutput
from engine.paths import EXAMPLES
from engine.live.decoder import LiveStream, StreamOptions, TokenReplay
from engine.live.player import CaptureError
from engine.takes.store import STALE_TMP_S, PhraseAutosave, TakeError, TakeMeta, TakeStore, embed_meta, read_meta
from engine.music.tokenizer import Tokenizer

ROOT = Path(__file__).resolve().parent.parent


class Clock:
    """An injected wall clock (seconds since the epoch)."""

    def __init__(self, t: float = 1_780_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def midi_bytes(pitches=(60, 64, 67), beats=4, bpm=100.0, tpq=480) -> bytes:
    """A small real MIDI file: one note per beat cycling through ``pitches``."""
    mid = mido.MidiFile(ticks_per_beat=tpq)
    tr = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0)])
    for i in range(beats):
        p = pitches[i % len(pitches)]
        tr.append(mido.Message("note_on", note=p, velocity=80, time=0))
        tr.append(mido.Message("note_off", note=p, velocity=0, time=tpq))
    mid.tracks.append(tr)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def test_add_writes_a_readable_take_with_its_metadata(tmp_path):
    clock = Clock()
    store = TakeStore(tmp_path / "takes", clock=clock)
    meta = TakeMeta(valence=6.5, arousal=3.25, key="C major", bpm=100.0, source="beach.jpg", seed=7)
    take = store.add_midi_bytes(midi_bytes(beats=8), meta)
    assert take.path.parent == tmp_path / "takes" and take.path.suffix == ".mid"
    assert (take.valence, take.arousal, take.key, take.source) == (6.5, 3.25, "C major", "beach.jpg")
    assert take.created == clock.t and take.meta.seed == 7
    assert take.bars == 2 and take.seconds == pytest.approx(8 * 0.6)  # measured from the notes
    assert len(take.notes) == 8 and list(take.notes.pitch[:3]) == [60, 64, 67]
    # the metadata is inside the file itself: a fresh store (or a copy elsewhere) reads it back
    copy = tmp_path / "elsewhere.mid"
    copy.write_bytes(take.path.read_bytes())
    meta2, notes2 = read_meta(copy)
    assert (meta2.valence, meta2.arousal, meta2.key, meta2.source, meta2.created) == (6.5, 3.25, "C major",
                                                                                      "beach.jpg", clock.t)
    assert len(notes2) == 8
    assert TakeStore(tmp_path / "takes").list()[0].meta == take.meta
    # a DAW sees an ordinary MIDI file: the notes are untouched
    assert mido.MidiFile(take.path).length == pytest.approx(4.8)


def test_embedding_again_replaces_the_old_metadata_and_keeps_timing():
    once = embed_meta(midi_bytes(), TakeMeta(valence=2.0, arousal=2.0))
    twice = embed_meta(once, TakeMeta(valence=8.0, arousal=8.0))
    texts = [m.text for m in mido.MidiFile(file=io.BytesIO(twice)).tracks[0] if m.type == "text"]
    assert len(texts) == 1 and '"valence": 8.0' in texts[0]
    assert mido.MidiFile(file=io.BytesIO(twice)).length == mido.MidiFile(file=io.BytesIO(midi_bytes())).length
    with pytest.raises(TakeError, match="not a MIDI file"):
        embed_meta(b"RIFF....", TakeMeta())


def test_list_is_newest_first_names_are_unique_and_junk_is_skipped(tmp_path):
    clock = Clock()
    store = TakeStore(tmp_path, clock=clock)
    a = store.add_midi_bytes(midi_bytes(), {"valence": 1.0, "arousal": 1.0})
    b = store.add_midi_bytes(midi_bytes(), {"valence": 2.0, "arousal": 2.0})  # same second: "-2"
    clock.t += 60
    c = store.add_midi_bytes(midi_bytes(), None, prefix="variation")
    assert len({a.path, b.path, c.path}) == 3 and b.path.stem.endswith("-2")
    assert c.path.name.startswith("variation-")
    (tmp_path / "broken.mid").write_bytes(b"MThd\x00\x00")  # a corrupt file: skipped, not fatal
    (tmp_path / "notes.txt").write_text("not a take")
    (tmp_path / ".take-x.mid.abc.tmp").write_bytes(b"half")  # what a crash leaves: hidden
    assert [t.path for t in store.list()] == [c.path, b.path, a.path]
    with pytest.raises(TakeError, match="broken.mid"):
        store.get(tmp_path / "broken.mid")
    store.delete(b.path)
    assert [t.path for t in store.list()] == [c.path, a.path]


def test_a_plain_midi_file_is_listed_with_facts_measured_from_its_notes(tmp_path):
    store = TakeStore(tmp_path)
    take = store.add_file(EXAMPLES / "example.mid", {"source": "example"})
    assert take.bpm > 0 and take.seconds > 0 and take.bars >= 1 and take.key
    assert len(take.notes) > 0 and (EXAMPLES / "example.mid").exists()  # the original stays


def test_stale_temporaries_are_removed_by_the_next_store(tmp_path):
    old = tmp_path / ".take-1.mid.x.tmp"
    old.write_bytes(b"half")
    os.utime(old, (1000.0, 1000.0))
    fresh = tmp_path / ".take-2.mid.y.tmp"  # maybe another instance writing now: kept
    fresh.write_bytes(b"half")
    os.utime(fresh, (5000.0, 5000.0))
    TakeStore(tmp_path, clock=Clock(5000.0 + STALE_TMP_S / 2))
    assert not old.exists() and fresh.exists()


WRITER = textwrap.dedent("""
    import os, sys
    from engine.takes.store import TakeStore, TakeMeta
    import engine.takes.store as takes_module
    store = TakeStore(sys.argv[1])
    data = open(sys.argv[2], "rb").read()
    store.add_midi_bytes(data, TakeMeta(valence=5.0, arousal=5.0, source="first"))
    real_replace = os.replace
    def held_replace(src, dst):          # the temporary file is complete, not yet renamed:
        print("WRITTEN", src, flush=True)  # tell the test, then wait to be killed
        sys.stdin.readline()
        real_replace(src, dst)
    os.replace = held_replace
    store.add_midi_bytes(data, TakeMeta(valence=9.0, arousal=9.0, source="second"))
    print("RENAMED", flush=True)
""")

LOOP_WRITER = textwrap.dedent("""
    import sys
    from engine.takes.store import TakeStore, TakeMeta
    store = TakeStore(sys.argv[1])
    data = open(sys.argv[2], "rb").read()
    i = 0
    while True:
        store.add_midi_bytes(data, TakeMeta(valence=5.0, arousal=5.0, seed=i), prefix=f"loop{i}")
        print("SAVED", i, flush=True)
        i += 1
""")


def _big_midi(tmp_path) -> Path:
    src = tmp_path / "big.mid"
    src.write_bytes(midi_bytes(pitches=range(40, 90), beats=3000))  # ~30 kB
    return src


def test_sigkill_between_write_and_rename_leaves_no_half_take(tmp_path):
    folder, src = tmp_path / "takes", _big_midi(tmp_path)
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(src)], cwd=ROOT,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("WRITTEN"), line
        p.send_signal(signal.SIGKILL)
        assert p.wait(30) == -signal.SIGKILL
    finally:
        p.kill()
    visible = [f for f in folder.iterdir() if not f.name.startswith(".")]
    assert len(visible) == 1  # the first take, whole; the second never appeared half-written
    takes = TakeStore(folder).list()
    assert [t.source for t in takes] == ["first"] and len(takes[0].notes) == 3000
    assert len(list(folder.glob(".*.tmp"))) == 1  # the interrupted temporary, hidden
    later = time.time() + STALE_TMP_S + 1
    TakeStore(folder, clock=lambda: later)  # the next start cleans it up
    assert list(folder.glob(".*.tmp")) == []


def test_sigkill_at_any_moment_of_a_write_loop_leaves_only_whole_takes(tmp_path):
    folder, src = tmp_path / "takes", _big_midi(tmp_path)
    p = subprocess.Popen([sys.executable, "-c", LOOP_WRITER, str(folder), str(src)], cwd=ROOT,
                         stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(3):
            assert p.stdout.readline().startswith("SAVED")
        p.send_signal(signal.SIGKILL)  # somewhere in the next write
        p.wait(30)
    finally:
        p.kill()
    takes = TakeStore(folder).list()
    assert len(takes) >= 3
    for path in (f for f in folder.iterdir() if not f.name.startswith(".")):  # every visible file is whole
        assert len(mido.MidiFile(path).tracks[0]) > 6000


def test_write_failure_gives_one_line_and_keeps_earlier_takes(tmp_path):
    """A real write refused by the OS (RLIMIT_FSIZE: the file-size limit, EFBIG) in a subprocess."""
    code = textwrap.dedent("""
        import resource, signal, sys
        from engine.takes.store import TakeStore, TakeError
        from tests.test_takes import midi_bytes
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        store = TakeStore(sys.argv[1])
        store.add_midi_bytes(midi_bytes(), {"source": "small"})
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        try:
            store.add_midi_bytes(midi_bytes(beats=5000), {"source": "big"})
        except TakeError as e:
            print("ERROR", e)
        """)
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip()
    assert line.startswith("ERROR cannot save take") and "earlier takes are kept" in line and "\n" not in line
    assert [t.source for t in TakeStore(tmp_path).list()] == ["small"]
    assert list(tmp_path.glob(".*.tmp")) == []  # the failed temporary was removed


@pytest.fixture
def small_disk(tmp_path):
    """A real 64 KiB tmpfs (needs root and a system that allows mounting; else skipped)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (not root); the RLIMIT_FSIZE test covers write failures")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_full_disk_gives_one_line_and_keeps_earlier_takes(small_disk):
    store = TakeStore(small_disk)
    first = store.add_midi_bytes(midi_bytes(), {"source": "first"})
    with pytest.raises(TakeError) as e:
        for i in range(100):  # ~6 kB each: the disk fills
            store.add_midi_bytes(midi_bytes(beats=600), {"source": f"more {i}"})
    assert "the disk is full" in str(e.value) and "earlier takes are kept" in str(e.value)
    assert "\n" not in str(e.value)
    takes = store.list()
    assert first.path in [t.path for t in takes]
    for t in takes:
        mido.MidiFile(t.path)  # every take that is there is whole
    assert list(small_disk.glob(".*.tmp")) == []


# -- takes from a real live stream ---------------------------------------------------------------
@pytest.fixture(scope="module")
def example_ids():
    return Tokenizer().encode(EXAMPLES / "example.mid")


def test_capture_and_phrase_autosave_from_a_live_stream(jack_server, example_ids, tmp_path):
    store = TakeStore(tmp_path)
    out = MidiOutput(api="jack", name="Moodroll takes", monitor_s=0)
    stream = LiveStream(TokenReplay(example_ids), Tokenizer(), out, options=StreamOptions(bpm=320, bars=5))
    auto = PhraseAutosave(store, stream, phrase_bars=2, meta=lambda: {"valence": 7.0, "arousal": 2.0,
                                                                      "source": "webcam"})
    try:
        with pytest.raises(CaptureError, match="nothing to capture yet"):
            store.capture(stream, 4)
        assert auto.poll() is None and store.list() == []
        stream.start()
        assert stream.wait(30) and stream.error is None
        captured = store.capture(stream, 2, {"valence": 4.0, "arousal": 4.0})
        first, second, rest = auto.poll(), auto.poll(), auto.flush()
        assert auto.poll() is None and auto.flush() is None  # nothing left to save
    finally:
        stream.stop(), out.close()
    assert captured.bars == 2 and captured.bpm == pytest.approx(320) and captured.meta.kind == "capture"
    assert first.bars == 5  # polled after the end: all 5 bars in one take
    assert second is None and rest is None
    assert first.meta.kind == "take" and (first.valence, first.source) == (7.0, "webcam")
    played = sorted((round(b * 480), p) for b, p, _, _ in stream.played_notes)
    got = sorted(zip(first.notes.start.tolist(), first.notes.pitch.tolist()))
    assert got == played and len(got) == 60  # every note played, once
    assert sorted(t.path for t in store.list()) == sorted([captured.path, first.path])
    assert [f for f in tmp_path.iterdir() if f.name.startswith(".")] == []  # no scratch left


def test_phrases_are_saved_while_playing_and_when_the_port_vanishes(jack_server, example_ids, tmp_path):
    from tools.bench.realtime import Recorder

    store = TakeStore(tmp_path)
    synth = Recorder(None, api="jack", name="Takes Synth")
    out = MidiOutput("Takes Synth", api="jack", name="Moodroll takes 2", monitor_s=0.1)
    stream = LiveStream(TokenReplay(example_ids), Tokenizer(), out, options=StreamOptions(bpm=400))
    auto = PhraseAutosave(store, stream, phrase_bars=1)
    saved = []
    try:
        stream.start()
        deadline = time.monotonic() + 30
        while len(saved) < 2 and time.monotonic() < deadline:  # waits on bars played, not on time
            take = auto.poll()
            if take is not None:
                saved.append(take)
            stream.wait(0.01)
        synth.close()  # the synth (DAW) quits mid-phrase
        assert synth.wait_for(lambda r: not out.connected, timeout=5)
        n = auto.pending_bars()
        stream.stop()
        last = auto.flush()  # at stop: the rest is saved, although nothing reached the port
    finally:
        stream.stop(), synth.close(), out.close()
    assert len(saved) == 2 and all(t.bars >= 1 for t in saved)
    if n or last is not None:
        assert last is not None and last.bars >= 1
    takes = store.list()
    total = sum(len(t.notes) for t in takes)
    complete = [b for b, *_ in stream.played_notes if b < stream.played_bars[-1][1]]
    assert total == len(complete)  # every note of every complete bar is in exactly one take


def test_a_capture_the_disk_refuses_is_one_line_and_nothing_is_left(tmp_path):
    """The stream's own write failure (engine.takes.files' one line) becomes the store's TakeError."""

    class Played:  # what TakeStore.capture reads of a LiveStream that has played 2 bars
        played_bars = [(0, 0.0), (1, 4.0), (2, 8.0)]
        bpm = 120.0

        def capture(self, path, bars):
            raise CaptureError(f"cannot write {path}: the disk is full")

    store = TakeStore(tmp_path)
    with pytest.raises(TakeError) as e:
        store.capture(Played(), 2)
    msg = str(e.value)
    assert msg.startswith("cannot save take capture-") and msg.endswith("the disk is full; earlier takes are kept")
    assert ".tmp" not in msg and list(tmp_path.iterdir()) == []


def test_a_files_key_signature_is_shown_as_people_write_it(tmp_path):
    mid = mido.MidiFile(file=io.BytesIO(midi_bytes()))
    mid.tracks[0].insert(0, mido.MetaMessage("key_signature", key="Ebm", time=0))
    path = tmp_path / "elsewhere.mid"
    mid.save(path)
    assert TakeStore(tmp_path / "takes").add_file(path).key == "Eb minor"
