"""Notes as plain numpy arrays, read exactly the way MusPy reads a MIDI file.

:mod:`engine.music.metrics` computes MusPy's metrics without MusPy (a dev-only dependency). To
agree with MusPy to the last bit, the notes of a file must be the notes MusPy sees, so
:func:`read_midi_notes` repeats ``muspy.read_midi`` (mido backend, ``duplicate_note_mode=
"fifo"``) message by message:

* time stays in the file's own ticks (``ticks_per_beat`` is kept as ``resolution``);
* a ``note_on`` with velocity 0 is a note-off; a note-off with no open note is ignored;
* overlapping notes of the same pitch and channel are closed first-in first-out;
* notes still open at ``end_of_track`` (or at the track's last message) end there;
* channel 10 (index 9) is a drum channel, whatever its program;
* ``length`` is MusPy's "end time" used by its piano roll and groove metrics: the latest
  note-off or control-change time of any track (control changes are MusPy annotations).

Generated music comes as a symusic ``Score`` (:func:`notes_from_score`) or as token ids
(:func:`notes_from_tokens`); both give the same :class:`Notes`.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from engine.music.tokenizer import MidiReadError

PathLike = Union[str, Path]


@dataclass(frozen=True)
class Notes:
    """All notes of a piece, one array entry per note; times in ticks."""

    start: np.ndarray  # int64 [N] onset tick
    end: np.ndarray  # int64 [N] offset tick (>= start)
    pitch: np.ndarray  # int64 [N] MIDI pitch 0..127
    velocity: np.ndarray  # int64 [N] 1..127
    is_drum: np.ndarray  # bool [N] on MIDI channel 10
    resolution: int  # ticks per quarter note
    length: int  # MusPy's end time: last note-off or control change of any track
    tempos: np.ndarray  # float64 [K, 2] (tick, quarter notes per minute), sorted by tick
    time_signatures: np.ndarray  # int64 [K, 3] (tick, numerator, denominator), sorted

    def __len__(self) -> int:
        return len(self.start)

    @property
    def duration(self) -> np.ndarray:
        return self.end - self.start

    def pitched(self) -> "Notes":
        """The non-drum notes only."""
        keep = ~self.is_drum
        return Notes(self.start[keep], self.end[keep], self.pitch[keep], self.velocity[keep],
                     self.is_drum[keep], self.resolution, self.length, self.tempos,
                     self.time_signatures)


def make_notes(start, end, pitch, velocity=None, is_drum=None, resolution: int = 480,
               length: int | None = None, tempos=None, time_signatures=None) -> Notes:
    """Build :class:`Notes` from sequences; ``length`` defaults to the last note-off."""
    start = np.asarray(start, dtype=np.int64).reshape(-1)
    end = np.asarray(end, dtype=np.int64).reshape(-1)
    pitch = np.asarray(pitch, dtype=np.int64).reshape(-1)
    n = len(start)
    velocity = np.full(n, 64, np.int64) if velocity is None else np.asarray(velocity, np.int64).reshape(-1)
    is_drum = np.zeros(n, bool) if is_drum is None else np.asarray(is_drum, bool).reshape(-1)
    if not (len(end) == len(pitch) == len(velocity) == len(is_drum) == n):
        raise ValueError("start, end, pitch, velocity and is_drum must have the same length")
    if n and (np.any(end < start) or np.any(start < 0)):
        raise ValueError("notes need 0 <= start <= end")
    if n and (pitch.min() < 0 or pitch.max() > 127):
        raise ValueError("pitches must lie in 0..127")
    if resolution < 1:
        raise ValueError("resolution (ticks per quarter note) must be positive")
    last = int(end.max()) if n else 0
    length = last if length is None else max(int(length), last)
    tempos = np.zeros((0, 2)) if tempos is None else np.asarray(tempos, np.float64).reshape(-1, 2)
    ts = np.zeros((0, 3), np.int64) if time_signatures is None else np.asarray(time_signatures, np.int64).reshape(-1, 3)
    tempos = tempos[np.argsort(tempos[:, 0], kind="stable")]
    ts = ts[np.argsort(ts[:, 0], kind="stable")]
    return Notes(start, end, pitch, velocity, is_drum, int(resolution), length, tempos, ts)


def read_midi_notes(path: PathLike) -> Notes:
    """Read a MIDI file's notes exactly as ``muspy.read_midi(path)`` does.

    Raises :class:`engine.music.tokenizer.MidiReadError` naming the file when it cannot be read.
    """
    import mido

    name = str(path)
    try:
        midi = mido.MidiFile(filename=name)
    except FileNotFoundError:
        raise MidiReadError(f"cannot read MIDI file {name}: no such file") from None
    except IsADirectoryError:
        raise MidiReadError(f"cannot read MIDI file {name}: it is a folder") from None
    except EOFError:
        raise MidiReadError(f"cannot read MIDI file {name}: it ends early (truncated, or not MIDI)") from None
    except Exception as e:  # mido raises OSError, ValueError, KeyError... on bad files
        raise MidiReadError(f"cannot read MIDI file {name}: {type(e).__name__}: {e}") from None
    if midi.type == 2:
        raise MidiReadError(f"cannot read MIDI file {name}: type 2 (asynchronous) MIDI is not supported")
    if midi.ticks_per_beat < 1:
        raise MidiReadError(f"cannot read MIDI file {name}: ticks per beat must be positive")

    notes: list[tuple[int, int, int, int, bool]] = []  # start, end, pitch, velocity, drum
    tempos: list[tuple[int, float]] = []
    time_signatures: list[tuple[int, int, int]] = []
    length = 0
    for track in midi.tracks:
        time = 0
        active: dict = defaultdict(list)  # (channel, pitch) -> [(onset, velocity), ...]
        for msg in track:
            time += msg.time
            kind = msg.type
            if kind == "set_tempo":
                tempos.append((time, mido.tempo2bpm(msg.tempo)))
            elif kind == "time_signature":
                time_signatures.append((time, msg.numerator, msg.denominator))
            elif kind == "note_on" and msg.velocity > 0:
                active[(msg.channel, msg.note)].append((time, msg.velocity))
            elif kind == "note_off" or kind == "note_on":  # note_on with velocity 0 = note-off
                opened = active[(msg.channel, msg.note)]
                if opened:
                    onset, velocity = opened.pop(0)  # MusPy's default "fifo"
                    notes.append((onset, time, msg.note, velocity, msg.channel == 9))
                    length = max(length, time)
            elif kind == "control_change":
                length = max(length, time)  # MusPy keeps it as an annotation: it extends the end
            elif kind == "end_of_track":
                break
        for (channel, pitch), opened in active.items():
            for onset, velocity in opened:
                notes.append((onset, time, pitch, velocity, channel == 9))
                length = max(length, time)

    arr = np.array(notes, dtype=np.int64).reshape(-1, 5)
    return make_notes(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4].astype(bool),
                      resolution=midi.ticks_per_beat, length=length,
                      tempos=np.array(tempos, np.float64).reshape(-1, 2),
                      time_signatures=np.array(time_signatures, np.int64).reshape(-1, 3))


def notes_from_score(score) -> Notes:
    """A symusic ``Score`` (in ticks) -> :class:`Notes` (drum tracks flagged, controls extend the end)."""
    if "tick" not in str(score.ttype).lower():  # a Score in quarters or seconds
        score = score.to("tick")
    cols: dict[str, list] = {k: [] for k in ("time", "duration", "pitch", "velocity", "drum")}
    length = 0
    for track in score.tracks:
        if len(track.notes):
            a = track.notes.numpy()
            for k in ("time", "duration", "pitch", "velocity"):
                cols[k].append(a[k].astype(np.int64))
            cols["drum"].append(np.full(len(a["time"]), bool(track.is_drum)))
        if len(track.controls):
            length = max(length, int(track.controls.numpy()["time"].max()))
    cat = {k: (np.concatenate(v) if v else np.zeros(0, np.int64)) for k, v in cols.items()}
    tempos = [(t.time, t.qpm) for t in score.tempos]
    ts = [(t.time, t.numerator, t.denominator) for t in score.time_signatures]
    return make_notes(cat["time"], cat["time"] + cat["duration"], cat["pitch"], cat["velocity"],
                      cat["drum"].astype(bool), resolution=score.ticks_per_quarter, length=length,
                      tempos=np.array(tempos, np.float64).reshape(-1, 2),
                      time_signatures=np.array(ts, np.int64).reshape(-1, 3))


def notes_from_tokens(ids: Sequence[int], tokenizer) -> Notes:
    """Token ids of Moodroll's vocabulary -> :class:`Notes` (via ``tokenizer.decode``)."""
    return notes_from_score(tokenizer.decode(ids))
