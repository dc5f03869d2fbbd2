"""Token sequences the stream tests play (real MIDI through the real tokenizer), shared by
tests/test_stream.py (JACK) and tests/test_scheduling.py (virtual time)."""
import mido
import pytest

from engine.paths import EXAMPLES
from engine.music.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def tok():
    return Tokenizer()


@pytest.fixture(scope="module")
def example_ids(tok):
    return tok.encode(EXAMPLES / "example.mid")


def chord_file(path):
    """A MIDI file of long overlapping chords, one every beat for 32 beats (always something sounding)."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    events = []
    for beat in range(32):
        for p in ([60, 64, 67], [62, 65, 69], [64, 67, 71], [65, 69, 72])[beat % 4]:
            events += [(beat * 480, 1, mido.Message("note_on", note=p, velocity=80)),
                       (beat * 480 + 3 * 480, 0, mido.Message("note_off", note=p, velocity=0))]
    now = 0
    for t, _, m in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(m.copy(time=t - now))
        now = t
    mid.save(path)
    return path


@pytest.fixture(scope="module")
def chord_ids(tok, tmp_path_factory):
    return tok.encode(chord_file(tmp_path_factory.mktemp("midi") / "chords.mid"))
