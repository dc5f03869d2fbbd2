"""How exactly does MIDI -> REMI tokens -> MIDI keep the music? A per-note check and a report.

``check_round_trip(tokenizer, score)`` encodes a merged piano Score with
:class:`engine.music.tokenizer.Tokenizer`, decodes the ids again, matches every original note to
its decoded note and checks it against the rules below (``tests/test_tokenizer.py`` asserts
them on real files). Run as a script it measures the exactness over whole data sets::

    .venv/bin/python -m training.tokenizer_roundtrip                 # all EIMG, POP909, VGMIDI
    .venv/bin/python -m training.tokenizer_roundtrip --limit 50      # a seeded sample per set
    .venv/bin/python -m training.tokenizer_roundtrip --streaming     # also: streaming == batch decode

``batch_summary`` / ``stream_summary`` put MidiTok's batch decode and
:class:`engine.music.events.StreamingDecoder`'s events into one comparable form
(``tests/test_streaming_decode.py`` asserts them equal).

"Within the tokenizer's quantisation" (times in quarter notes)
---------------------------------------------------------------
* Position step ``g`` of a time-signature section: 1/8 of its beat, i.e. ``1/(2*den)``
  quarters (1/8 quarter in x/4, 1/16 quarter in x/8). MidiTok first resamples the whole file
  to ``r = 1/(2*max den)`` quarters (over the file's supported time signatures), then
  (files mixing x/4 and x/8) rounds each section to ``g``.
* Onset: within ``g/2`` of the original; ``g/2 + r/2`` where ``r < g``, i.e. the two
  roundings stack (x/4 sections of files that also have x/8 sections; also files whose only
  x/8 signature MidiTok drops because it sits mid-bar: there the x/4 position is the floor
  of the 1/16-quarter time, a MidiTok quirk with the same bound).
* Duration: one of the vocabulary's durations (in x/4: 1/8 quarter steps up to 4 quarters,
  then 1/4 steps up to 12; in x/8 the same numbers of eighths), within ``r/2`` of the
  original (the resampling) plus, where the durations are coarser than ``r``, half their gap. Longer notes are
  clipped to the longest duration (12 quarters in x/4, 6 in x/8); zero-length notes become
  the shortest (1/8 of a beat). MidiTok rounds half up in both steps.
* Velocity: the nearest of the 16 velocity levels.
* Pitch: exact.

Notes legitimately lost, by MidiTok's documented rules
--------------------------------------------------------
* pitch outside 21..108 (the piano);
* duplicates: notes of the same pitch whose onsets fall on the same position collapse into one,
  the shortest (MidiTok's ``remove_duplicated_notes``); counted as ``merged``.
Every other note must come back exactly once, and no note may appear that was not there.

Tempo: at every note onset (not within ``g`` of a tempo change), the decoded tempo in effect
is the original tempo in effect rounded to the nearest of the 64 tempo levels (nearest in
microseconds per quarter, MidiTok's rule; clipped to 40..250 BPM).
"""
from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from symusic import Score, Tempo

from engine.music.events import NOTE_ON, TEMPO, TIME_SIGNATURE, StreamingDecoder
from engine.music.tokenizer import Tokenizer, load_score

EPS = 1e-9


@dataclass
class RoundTrip:
    """Counts for one file (or a sum of files); ``failures`` lists rule violations."""

    files: int = 0
    notes: int = 0  # original notes (all non-drum tracks merged)
    out_of_range: int = 0  # dropped: pitch outside the vocabulary's range
    merged: int = 0  # dropped: same pitch on the same quantised onset as a kept note
    zero_length: int = 0  # original notes of zero length (kept, shortest duration)
    clipped: int = 0  # kept notes longer than the longest duration
    kept: int = 0  # notes that came back (= decoded notes)
    onset_exact: int = 0  # kept notes whose onset came back unchanged
    duration_exact: int = 0
    velocity_exact: int = 0
    all_exact: int = 0  # onset, duration and velocity unchanged
    max_onset_error: float = 0.0  # quarters
    max_tempo_error: float = 0.0  # relative (BPM), tempos inside the vocabulary's range
    tempo_clipped: int = 0  # onsets whose tempo lies outside 40..250 BPM (clipped)
    sum_onset_error: float = 0.0  # quarters, over kept notes
    sum_duration_error: float = 0.0  # quarters, over kept notes that were not clipped
    tempo_checked: int = 0  # note onsets whose tempo was compared
    tempo_exact: int = 0  # ... where the decoded BPM equals the original (to 0.01 %)
    time_signatures_same: int = 0  # files whose (time, num, den) list came back unchanged
    failures: list[str] = field(default_factory=list)

    def add(self, other: "RoundTrip") -> None:
        for k, v in vars(other).items():
            if k == "failures":
                self.failures.extend(v)
            elif k.startswith("max_"):
                setattr(self, k, max(getattr(self, k), v))
            else:
                setattr(self, k, getattr(self, k) + v)

    def summary(self) -> str:
        k = max(self.kept, 1)
        return (f"{self.files} files, {self.notes} notes: kept {self.kept}, dropped {self.out_of_range} "
                f"out of range + {self.merged} merged duplicates ({self.zero_length} zero-length kept, "
                f"{self.clipped} clipped to the longest duration). Unchanged: onset {self.onset_exact / k:.2%}, "
                f"duration {self.duration_exact / k:.2%}, velocity {self.velocity_exact / k:.2%}, all three "
                f"{self.all_exact / k:.2%}. Onset error mean {self.sum_onset_error / k:.4f}, max "
                f"{self.max_onset_error:.4f} quarters; duration error mean "
                f"{self.sum_duration_error / max(k - self.clipped, 1):.4f} quarters. Tempo at "
                f"{self.tempo_checked} onsets: within {self.max_tempo_error:.2%} ({self.tempo_clipped} clipped "
                f"to 40..250 BPM), unchanged "
                f"{self.tempo_exact / max(self.tempo_checked, 1):.2%}. Time signatures unchanged in "
                f"{self.time_signatures_same} files. {len(self.failures)} rule violations")


def _notes(score: Score) -> dict[str, np.ndarray]:
    tpq = score.ticks_per_quarter
    cols = {"time": [], "duration": [], "pitch": [], "velocity": []}
    for t in score.tracks:
        a = t.notes.numpy()
        for k in cols:
            cols[k].append(a[k])
    out = {k: np.concatenate(v) if v else np.zeros(0) for k, v in cols.items()}
    out["time"] = out["time"] / tpq
    out["duration"] = out["duration"] / tpq
    return out


def _time_signatures(score: Score) -> list[tuple[float, int, int]]:
    return [(ts.time / score.ticks_per_quarter, ts.numerator, ts.denominator) for ts in score.time_signatures]


def check_round_trip(tok: Tokenizer, score: Score, name: str = "") -> RoundTrip:
    """Encode + decode a merged piano ``score``; check every note against the module's rules."""
    return compare(tok, score, tok.decode(tok.encode(score)), name)


def compare(tok: Tokenizer, score: Score, dec: Score, name: str = "") -> RoundTrip:
    """Check ``dec`` (a decode of ``score``'s tokens) against ``score`` by the module's rules."""
    res = RoundTrip(files=1)
    o, d = _notes(score), _notes(dec)
    lo, hi = tok.config["pitch_range"]
    res.notes = len(o["pitch"])
    in_range = (o["pitch"] >= lo) & (o["pitch"] <= hi)
    res.out_of_range = int((~in_range).sum())
    o = {k: v[in_range] for k, v in o.items()}
    res.zero_length = int((o["duration"] == 0).sum())

    # Grids of the decoded file's time-signature sections (MidiTok's preprocessed ones).
    ts = _time_signatures(dec)
    ts_times = np.array([t for t, _, _ in ts])
    dens = np.array([den for _, _, den in ts])
    # MidiTok's resampling step comes from the original's supported time signatures (before
    # it moves or drops any), so it can be finer than every section grid of the decoded file.
    supported = [t.denominator for t in score.time_signatures
                 if (t.numerator, t.denominator) in tok.remi.time_signatures]
    r = 1 / (2 * max([4, *supported, *dens]))
    sec = dens[np.searchsorted(ts_times, o["time"] + EPS, "right") - 1]
    g = 1 / (2 * sec)
    tol_on = g / 2 + np.where(g > r, r / 2, 0) + EPS

    # Match each original note to the decoded note of its pitch with the nearest onset.
    order = np.lexsort((d["time"], d["pitch"]))
    d = {k: v[order] for k, v in d.items()}
    dkey = d["pitch"] * 1e7 + d["time"]
    okey = o["pitch"] * 1e7 + o["time"]
    idx = np.searchsorted(dkey, okey)
    best = np.full(len(okey), -1)
    best_err = np.full(len(okey), np.inf)
    for cand in (idx, idx - 1):  # the later candidate wins ties (MidiTok rounds half up)
        ok = (cand >= 0) & (cand < len(dkey))
        c = np.clip(cand, 0, max(len(dkey) - 1, 0))
        if len(dkey) == 0:
            break
        err = np.where(ok & (d["pitch"][c] == o["pitch"]), np.abs(d["time"][c] - o["time"]), np.inf)
        better = err < best_err - EPS
        best, best_err = np.where(better, c, best), np.where(better, err, best_err)
    lost = best_err > tol_on
    for j in np.flatnonzero(lost)[:20]:
        res.failures.append(f"{name}: note pitch {int(o['pitch'][j])} at {o['time'][j]:.4f} lost "
                            f"(nearest decoded onset {best_err[j]:.4f} away, tolerance {tol_on[j]:.4f})")
    if lost.any():
        return res
    res.max_onset_error = float(best_err.max()) if len(best_err) else 0.0

    # Expected duration window and velocity of every original note.
    beats = np.array(sorted(tok.groups.duration.values()))
    dur_err = np.empty(len(okey))
    dur_tol = np.empty(len(okey))
    dur_on_grid = np.empty(len(okey), bool)
    clipped = np.empty(len(okey), bool)
    for den in np.unique(sec):
        m = sec == den
        grid = beats * 4 / den
        c = np.clip(o["duration"][m], grid[0], grid[-1])
        i = np.clip(np.searchsorted(grid, c), 1, len(grid) - 1)
        gap = np.maximum(grid[i] - grid[i - 1], grid[np.minimum(i + 1, len(grid) - 1)] - grid[i])
        dd = d["duration"][best[m]]
        dur_err[m] = np.abs(dd - c)
        dur_tol[m] = r / 2 + np.where(gap > r + EPS, gap / 2, 0) + EPS
        dur_on_grid[m] = np.abs(grid[np.clip(np.searchsorted(grid, dd - EPS), 0, len(grid) - 1)] - dd) < EPS
        clipped[m] = o["duration"][m] > grid[-1] + EPS
    levels = np.array(sorted(tok.groups.velocity.values()))
    nearest = np.abs(levels[None, :] - o["velocity"][:, None]).min(axis=1)
    vel_ok = np.abs(d["velocity"][best] - o["velocity"]) == nearest
    note_ok = (dur_err <= dur_tol) & dur_on_grid & vel_ok

    # Each decoded note stands for one group of originals (several = merged duplicates); one
    # member of the group must match it in duration and velocity.
    members = np.bincount(best, minlength=len(dkey))
    invented = np.flatnonzero(members == 0)
    for k in invented[:20]:
        res.failures.append(f"{name}: decoded note pitch {int(d['pitch'][k])} at {d['time'][k]:.4f} "
                            f"has no original")
    group_ok = np.bincount(best, weights=note_ok, minlength=len(dkey)) > 0
    for k in np.flatnonzero(~group_ok & (members > 0))[:20]:
        j = np.flatnonzero(best == k)[0]
        res.failures.append(
            f"{name}: note pitch {int(o['pitch'][j])} at {o['time'][j]:.4f}: duration {o['duration'][j]:.4f} -> "
            f"{d['duration'][k]:.4f} (tolerance {dur_tol[j]:.4f}), velocity {int(o['velocity'][j])} -> "
            f"{int(d['velocity'][k])}")
    res.kept = len(dkey)
    res.merged = len(okey) - int((members > 0).sum())
    # The representative of a group: the member that matches best.
    rep = np.full(len(dkey), -1)
    rank = np.lexsort((np.abs(d["velocity"][best] - o["velocity"]), dur_err, ~note_ok))
    for j in rank[::-1]:
        rep[best[j]] = j
    rep = rep[rep >= 0]
    on_x = best_err[rep] < EPS
    du_x = np.abs(d["duration"][best[rep]] - o["duration"][rep]) < EPS
    ve_x = d["velocity"][best[rep]] == o["velocity"][rep]
    res.onset_exact, res.duration_exact, res.velocity_exact = int(on_x.sum()), int(du_x.sum()), int(ve_x.sum())
    res.all_exact = int((on_x & du_x & ve_x).sum())
    res.clipped = int(clipped[rep].sum())
    res.sum_onset_error = float(best_err[rep].sum())
    res.sum_duration_error = float(np.abs(d["duration"][best[rep]] - o["duration"][rep])[~clipped[rep]].sum())

    # Tempo in effect at each onset, away from tempo changes.
    def tempo_map(s: Score):  # MIDI's default 120 BPM holds until the first tempo event
        t = np.array([0.0] + [x.time / s.ticks_per_quarter for x in s.tempos])
        m = np.array([500000.0] + [x.mspq for x in s.tempos])
        order = np.argsort(t, kind="stable")
        return t[order], m[order]

    (ot, om), (dt, dm) = tempo_map(score), tempo_map(dec)
    if len(ot) and len(o["time"]):
        far = np.abs(o["time"][:, None] - ot[None, :]).min(axis=1) > g
        t = o["time"][far]
        orig = om[np.searchsorted(ot, t, "right") - 1]
        got = dm[np.searchsorted(dt, t, "right") - 1]
        levels_mspq = np.array(sorted(60e6 / b for b in tok.groups.tempo.values()))
        want = levels_mspq[np.abs(levels_mspq[None, :] - orig[:, None]).argmin(axis=1)]
        bad = np.abs(got - want) > 1.0
        res.tempo_checked, res.tempo_exact = len(t), int((np.abs(got - orig) <= orig * 1e-4).sum())
        inside = (orig >= levels_mspq[0]) & (orig <= levels_mspq[-1])
        res.tempo_clipped = int((~inside).sum())
        res.max_tempo_error = float(np.abs(got / orig - 1)[inside].max()) if inside.any() else 0.0
        for k in np.flatnonzero(bad)[:5]:
            res.failures.append(f"{name}: tempo at {t[k]:.3f}: {60e6 / orig[k]:.2f} BPM -> {60e6 / got[k]:.2f}, "
                                f"expected {60e6 / want[k]:.2f}")
    res.time_signatures_same = int(_time_signatures(dec) == _time_signatures(score))
    return res


def batch_summary(tok: Tokenizer, ids) -> tuple[list, list, list]:
    """MidiTok's decode as (notes, tempos, time signatures); times in quarters, in its order.

    notes: sorted (onset, duration, pitch, velocity); tempos: (time, microseconds per quarter);
    time signatures: (time, numerator, denominator).
    """
    s = tok.decode(ids)
    q = s.ticks_per_quarter
    notes = sorted((n.time / q, n.duration / q, n.pitch, n.velocity) for t in s.tracks for n in t.notes)
    return notes, [(t.time / q, t.mspq) for t in s.tempos], [(t.time / q, t.numerator, t.denominator)
                                                             for t in s.time_signatures]


def stream_summary(tok: Tokenizer, ids) -> tuple[list, list, list]:
    """:class:`StreamingDecoder`'s events, fed one id at a time, in ``batch_summary``'s form."""
    dec = StreamingDecoder(tok)
    events = [e for i in ids for e in dec.feed(i)] + dec.finish()
    notes = sorted((e.beat, e.value, e.pitch, e.velocity) for e in events if e.kind == NOTE_ON)
    tempos = [(e.beat, Tempo(0, e.value).mspq) for e in events if e.kind == TEMPO]
    if not tempos or tempos[0][0] != 0:  # a Score needs a tempo at 0: MidiTok adds its default
        tempos.insert(0, (0.0, Tempo(0, tok.remi.default_tempo).mspq))
    ts = [(e.beat, *e.value) for e in events if e.kind == TIME_SIGNATURE]
    return notes, tempos, ts


def midi_files(data_dir: Path, dataset: str) -> list[Path]:
    return sorted((data_dir / dataset / "midi").glob("*.mid"))


def main(argv: list[str] | None = None) -> None:
    from engine.paths import shared_data_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=shared_data_dir())
    ap.add_argument("--limit", type=int, default=0, help="seeded sample of N files per data set (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--streaming", action="store_true",
                    help="also check that the streaming decoder equals MidiTok's batch decode")
    args = ap.parse_args(argv)
    tok = Tokenizer()
    print(f"vocabulary: {tok.vocab_size} tokens")
    for dataset in ("eimg", "pop909", "vgmidi"):
        files = midi_files(args.data, dataset)
        if args.limit:
            files = sorted(random.Random(args.seed).sample(files, min(args.limit, len(files))))
        total, same, tokens = RoundTrip(), 0, 0
        for f in files:
            score = load_score(f)
            total.add(check_round_trip(tok, score, f"{dataset}/{f.name}"))
            if args.streaming:
                ids = tok.encode(score)
                tokens += len(ids)
                same += stream_summary(tok, ids) == batch_summary(tok, ids)
        print(f"{dataset}: {total.summary()}")
        for line in total.failures[:10]:
            print("   ", line)
        if args.streaming:
            print(f"{dataset}: streaming decode == batch decode for {same} of {len(files)} files "
                  f"({tokens} tokens)")


if __name__ == "__main__":
    main()
