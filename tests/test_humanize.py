"""engine.music.humanize in files: onsets leave the grid by a seeded spread, chords stay together,
lengths are kept; 0 ms writes the grid exactly; a bad amount is a one-line error."""
import io

import mido
import numpy as np
import pytest

from engine.music.humanize import Humanizer, check_humanize
from engine.offline import to_midi_bytes
from tests.token_fixtures import example_ids, tok  # noqa: F401  (fixtures)


def _notes(data):
    mid = mido.MidiFile(file=io.BytesIO(data))
    t, on, out = 0, {}, []
    for msg in mido.merge_tracks(mid.tracks):
        t += msg.time
        if msg.type == "note_on" and msg.velocity:
            on[msg.note] = t
        elif msg.type in ("note_off", "note_on") and msg.note in on:
            out.append((on.pop(msg.note), t, msg.note))
    return mid.ticks_per_beat, sorted(out)


def test_files_are_humanized_seeded_and_on_the_grid_without(tok, example_ids):
    tpq, grid = _notes(to_midi_bytes(tok, example_ids, 120.0, None, "x")[0])
    _, moved = _notes(to_midi_bytes(tok, example_ids, 120.0, None, "x", humanize=20.0, seed=3)[0])
    _, again = _notes(to_midi_bytes(tok, example_ids, 120.0, None, "x", humanize=20.0, seed=3)[0])
    assert moved == again and len(moved) == len(grid)
    assert all(t % (tpq // 8) == 0 for t, _, _ in grid)  # 0 ms: every onset on the 32nd grid
    shifts = np.array([m[0] - g[0] for m, g in zip(sorted(moved, key=lambda n: (n[2], n[0])),
                                                   sorted(grid, key=lambda n: (n[2], n[0])))])
    ticks_per_ms = tpq * 2 / 1000.0  # 120 BPM
    assert np.abs(shifts).max() <= 20 * 2.5 * 1.2 * ticks_per_ms + 1 and (shifts != 0).mean() > 0.5


def test_notes_struck_together_move_together():
    h = Humanizer(20.0, seed=1)
    chord = [h.seconds(0) for _ in range(4)]
    assert max(chord) - min(chord) <= 2 * 2.5 * 0.2 * 0.020 + 1e-12
    assert Humanizer(0.0).seconds(5) == 0.0


def test_a_bad_amount_is_one_line():
    with pytest.raises(ValueError, match="humanize must be 0 to 60 ms, got 90"):
        check_humanize(90)
