"""Music metrics: MusPy-exact pitch entropy, polyphony rate and groove consistency, the
paper's Music_Quality_Loss, and what the engine and desktop show (density, key, ...).

Everything works on :class:`engine.music.notes.Notes` (numpy arrays, times in ticks), so the
same code measures a MIDI file, a symusic ``Score`` or freshly generated tokens. No MusPy,
no torch: ``tests/test_metrics.py`` checks these functions against MusPy itself.

MusPy definitions (muspy 0.5 ``muspy/metrics/metrics.py``), times in the file's own ticks:

* ``pitch_entropy``: Shannon entropy (bits) of the histogram of the 128 pitches over all
  non-drum notes; NaN with no notes.
* ``polyphony_rate(threshold)``: the fraction of ticks, over ``[0, length)``, at which MORE
  than ``threshold`` distinct non-drum pitches sound (binary piano roll); NaN if length is 0.
* ``groove_consistency(measure_resolution)``: ``1 - mean Hamming distance`` between the binary
  onset patterns of neighbouring "measures" of ``measure_resolution`` ticks (all notes, drums
  included); ``length // measure_resolution + 1`` measures; NaN below two measures.

The paper (Kundu, Singh & Iwahori 2024) called MusPy as ``polyphony_rate(threshold=2)`` and
``groove_consistency(measure_resolution=4)``: a "measure" is then 4 ticks, so that value sits
near 1 for nearly any music. :func:`groove_consistency_bar` is the same formula over real bars
(onsets quantised to 16th notes, bars following the time signature) and does measure rhythm.

Music_Quality_Loss = sum over (PR, PE, GC) of ``|value - ref| / ref`` with the paper's
reference values ``REFERENCE`` (means over the EIMG clips).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from engine.music.notes import Notes, read_midi_notes
from engine.music.theory import KK_MAJOR, KK_MINOR, PITCH_CLASS_NAMES
from engine.music.tokenizer import MidiReadError

# The paper's reference values (polyphony rate, pitch entropy, groove consistency) as printed.
REFERENCE = (0.5303, 3.9863, 0.9922)
# The same values at full precision, as in the authors' Music_Quality.py (``dataset_eval``).
REFERENCE_FULL = (0.5302987662965006, 3.986320228665771, 0.9921825307541308)
PAPER_POLYPHONY_THRESHOLD = 2
PAPER_MEASURE_RESOLUTION = 4



# -- MusPy metrics ----------------------------------------------------------------------------
def pitch_entropy(notes: Notes) -> float:
    """MusPy's ``pitch_entropy``: entropy in bits of the non-drum pitch histogram."""
    counter = np.bincount(notes.pitch[~notes.is_drum], minlength=128).astype(np.float64)
    denominator = counter.sum()
    if denominator < 1:
        return math.nan
    prob = counter / denominator
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(-np.nansum(prob * np.log2(prob)))


def polyphony_rate(notes: Notes, threshold: int = PAPER_POLYPHONY_THRESHOLD) -> float:
    """MusPy's ``polyphony_rate``: share of ticks with more than ``threshold`` pitches on.

    Computed exactly (integer tick counts) without MusPy's ``length x 128`` piano roll: the
    roll only changes at note boundaries, so it is evaluated once per segment between them.
    """
    if notes.length < 1:
        return math.nan
    keep = ~notes.is_drum & (notes.end > notes.start)
    start, end, pitch = notes.start[keep], notes.end[keep], notes.pitch[keep]
    bounds = np.unique(np.concatenate([[0, notes.length], start, end]))
    seg_len = np.diff(bounds)  # segment i = [bounds[i], bounds[i+1])
    active = np.zeros((len(bounds), 128), np.int32)  # per segment: open notes of each pitch
    np.add.at(active, (np.searchsorted(bounds, start), pitch), 1)
    np.add.at(active, (np.searchsorted(bounds, end), pitch), -1)
    n_pitches = (np.cumsum(active, axis=0)[:-1] > 0).sum(axis=1)
    steps = int(seg_len[n_pitches > threshold].sum())
    return steps / notes.length


def groove_consistency(notes: Notes, measure_resolution: int = PAPER_MEASURE_RESOLUTION) -> float:
    """MusPy's ``groove_consistency``: 1 - mean Hamming distance of neighbouring measures'
    onset patterns, a measure being ``measure_resolution`` ticks (all notes, drums too)."""
    if measure_resolution < 1:
        raise ValueError("Measure resolution must be a positive integer.")
    n_measures = notes.length // measure_resolution + 1
    if n_measures < 2:
        return math.nan
    patterns = np.zeros((n_measures, measure_resolution), bool)
    patterns[notes.start // measure_resolution, notes.start % measure_resolution] = True
    hamming = np.count_nonzero(patterns[:-1] != patterns[1:])
    return float(1 - hamming / (measure_resolution * (n_measures - 1)))


# -- bar-level groove --------------------------------------------------------------------------
def bars(notes: Notes, n_steps: int, steps_per_quarter: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(start step, length in steps) of every bar covering steps ``[0, n_steps)``.

    Bars follow the time signatures (4/4 before the first one; the last one at a step wins);
    a time-signature change starts a new bar, cutting the bar before it short if need be.
    """
    by_step: dict[int, tuple[int, int]] = {0: (4, 4)}
    for tick, num, den in notes.time_signatures.tolist():
        if num > 0 and den > 0:
            by_step[int(math.floor(tick * steps_per_quarter / notes.resolution + 0.5))] = (num, den)
    steps = sorted(s for s in by_step if s < max(n_steps, 1))
    starts, lengths = [], []
    for i, s0 in enumerate(steps):
        s1 = steps[i + 1] if i + 1 < len(steps) else max(n_steps, s0 + 1)
        num, den = by_step[s0]
        bar_len = max(1, round(num * 4 * steps_per_quarter / den))
        seg = np.arange(s0, s1, bar_len)
        starts.append(seg)
        lengths.append(np.minimum(bar_len, np.append(seg[1:], s1) - seg) if i + 1 < len(steps)
                       else np.full(len(seg), bar_len))
    return np.concatenate(starts), np.concatenate(lengths)


def groove_consistency_bar(notes: Notes, steps_per_quarter: int = 4) -> float:
    """Groove consistency over real bars: onsets quantised to ``1/steps_per_quarter`` of a
    quarter note (16th notes by default, 16 steps in a 4/4 bar), bars following the time
    signature, from bar 0 to the bar of the last onset (all notes, drums too).

    ``1 - sum(Hamming(bar_i, bar_i+1)) / sum(max(len_i, len_i+1))``; with one constant metre
    this is MusPy's formula with ``measure_resolution`` = steps per bar. NaN below two bars.
    """
    if len(notes) == 0:
        return math.nan
    onset = np.floor(notes.start * steps_per_quarter / notes.resolution + 0.5).astype(np.int64)
    starts, lengths = bars(notes, int(onset.max()) + 1, steps_per_quarter)
    if len(starts) < 2:
        return math.nan
    bar = np.searchsorted(starts, onset, side="right") - 1
    patterns = np.zeros((len(starts), int(lengths.max())), bool)
    patterns[bar, onset - starts[bar]] = True
    hamming = np.count_nonzero(patterns[:-1] != patterns[1:])
    return float(1 - hamming / int(np.maximum(lengths[:-1], lengths[1:]).sum()))


# -- the paper's loss --------------------------------------------------------------------------
def music_quality_loss(polyphony: float, entropy: float, groove: float,
                       reference: tuple = REFERENCE) -> float:
    """The paper's Music_Quality_Loss: sum of ``|value - ref| / ref`` over (PR, PE, GC)."""
    values = (polyphony, entropy, groove)
    return float(sum(abs(v - r) / r for v, r in zip(values, reference)))


# -- what the engine and desktop show ----------------------------------------------------------
@dataclass(frozen=True)
class KeyEstimate:
    """Krumhansl–Schmuckler key: the best of the 24 rotated major/minor profiles."""

    tonic: int  # pitch class 0..11 (0 = C)
    mode: str  # "major" or "minor"
    r: float  # Pearson correlation of the pitch-class profile with the chosen key's profile
    clarity: float  # r minus the runner-up's r over all 24 keys (0 = ambiguous)
    mode_clarity: float  # r minus the best r of the other mode (major vs minor)

    @property
    def name(self) -> str:
        return f"{PITCH_CLASS_NAMES[self.tonic]} {self.mode}"


def key_correlations(profile: np.ndarray) -> np.ndarray:
    """Pearson r of a 12-bin pitch-class profile with every key: [2 (major, minor), 12 tonics]."""
    out = np.empty((2, 12))
    for m, base in enumerate((KK_MAJOR, KK_MINOR)):
        for tonic in range(12):
            out[m, tonic] = np.corrcoef(profile, np.roll(base, tonic))[0, 1]
    return out


def estimate_key(notes: Notes) -> KeyEstimate | None:
    """Duration-weighted Krumhansl–Schmuckler key estimate of the non-drum notes.

    None when there are no pitched notes or the profile is flat (e.g. all 12 pitch classes
    equally long), where no key is defined.
    """
    pitched = ~notes.is_drum
    if not pitched.any():
        return None
    weight = (notes.end - notes.start)[pitched].astype(np.float64)
    if weight.sum() <= 0:  # only zero-length notes: count them instead
        weight = np.ones_like(weight)
    profile = np.bincount(notes.pitch[pitched] % 12, weights=weight, minlength=12)
    if np.ptp(profile) == 0:
        return None
    r = key_correlations(profile)
    m, tonic = np.unravel_index(np.argmax(r), r.shape)
    ranked = np.sort(r.ravel())[::-1]
    return KeyEstimate(tonic=int(tonic), mode=("major", "minor")[m], r=float(r[m, tonic]),
                       clarity=float(ranked[0] - ranked[1]),
                       mode_clarity=float(r[m, tonic] - r[1 - m].max()))


def tempo_map(notes: Notes) -> tuple[np.ndarray, np.ndarray]:
    """(tick, quarter notes per minute) of each tempo segment; 120 before the first tempo,
    the last tempo at a tick wins."""
    ticks, qpm = [0.0], [120.0]
    for tick, q in notes.tempos.tolist():
        if q <= 0:
            continue
        if tick == ticks[-1]:
            qpm[-1] = q
        else:
            ticks.append(tick)
            qpm.append(q)
    return np.array(ticks), np.array(qpm)


def ticks_to_seconds(notes: Notes, ticks) -> np.ndarray:
    """Tick positions -> seconds, following the tempo map."""
    ticks = np.asarray(ticks, np.float64)
    tt, qpm = tempo_map(notes)
    spt = 60.0 / (qpm * notes.resolution)  # seconds per tick in each segment
    seg_start_s = np.concatenate([[0.0], np.cumsum(np.diff(tt) * spt[:-1])])
    i = np.searchsorted(tt, ticks, side="right") - 1
    return seg_start_s[i] + (ticks - tt[i]) * spt[i]


def describe(notes: Notes) -> dict:
    """Density, velocity, range, key and metre of the non-drum notes (None where undefined).

    ``note_density`` is notes per second and ``notes_per_beat`` notes per quarter note, both
    over the sounding span, from the first onset to the last note-off.
    """
    p = notes.pitched()
    out: dict = {"n_notes": len(p), "resolution": notes.resolution}
    if len(p):
        first, last = int(p.start.min()), int(p.end.max())
        t0, t1 = ticks_to_seconds(notes, [first, last])
        span_s = float(t1 - t0)
        span_beats = (last - first) / notes.resolution
        out.update(
            duration_s=span_s,
            note_density=len(p) / span_s if span_s > 0 else None,
            notes_per_beat=len(p) / span_beats if span_beats > 0 else None,
            mean_velocity=float(p.velocity.mean()),
            pitch_min=int(p.pitch.min()), pitch_max=int(p.pitch.max()),
            pitch_range=int(p.pitch.max() - p.pitch.min()),
        )
    else:
        out.update(duration_s=None, note_density=None, notes_per_beat=None, mean_velocity=None,
                   pitch_min=None, pitch_max=None, pitch_range=None)
    key = estimate_key(notes)
    out.update(key=key.name if key else None, key_tonic=key.tonic if key else None,
               key_mode=key.mode if key else None, key_r=key.r if key else None,
               key_clarity=key.clarity if key else None,
               key_mode_clarity=key.mode_clarity if key else None)
    out["tempo_bpm"] = float(tempo_map(notes)[1][0])  # at the start
    ts = notes.time_signatures
    out["time_signature"] = f"{ts[0, 1]}/{ts[0, 2]}" if len(ts) and ts[0, 0] == 0 else "4/4"
    return out


def _finite(x):
    """NaN/inf -> None so that every result is valid JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def analyze(notes: Notes) -> dict:
    """Every metric of one piece as a JSON-ready dict (None where a metric is undefined)."""
    pr = polyphony_rate(notes, PAPER_POLYPHONY_THRESHOLD)
    pe = pitch_entropy(notes)
    gc = groove_consistency(notes, PAPER_MEASURE_RESOLUTION)
    row = {
        "pitch_entropy": pe,
        "polyphony_rate": pr,
        "groove_consistency": gc,
        "groove_consistency_bar": groove_consistency_bar(notes),
        "music_quality_loss": music_quality_loss(pr, pe, gc),
    }
    row.update(describe(notes))
    return {k: _finite(v) for k, v in row.items()}


def analyze_file(path: Union[str, Path]) -> dict:
    """Metrics of a MIDI file, or ``{"file": ..., "error": "..."}`` when it cannot be read."""
    name = str(path)
    try:
        notes = read_midi_notes(path)
    except MidiReadError as e:
        return {"file": name, "error": str(e)}
    try:
        return {"file": name, **analyze(notes)}
    except Exception as e:  # a metric failing on an odd file must not stop a batch
        return {"file": name, "error": f"cannot analyse {name}: {type(e).__name__}: {e}"}
