"""Offline generation: pictures and/or a VA point -> ``.mid`` files (``moodroll generate``).

For each picture the image encoder gives image tokens and a VA estimate; ``--valence`` /
``--arousal`` override the estimate (and alone, with no picture, make VA-only music). The
generator writes ``bars`` bars; the file gets

* the tempo (``--bpm`` locks the model's Tempo tokens and writes exactly that BPM; else the
  model's own tempo tokens),
* a key signature (the ``--key`` lock, else the key estimated from the notes),
* a text meta event with the VA used, the source picture, seed and bundle.

Every input is checked before anything is generated, and each file is written by
:func:`engine.takes.files.write_atomic` (temporary file, fsync, rename; the user's normal permissions),
so a failure never leaves a half-written ``.mid``.
"""
from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import mido
import numpy as np
from symusic import Tempo

from engine.model.controls import MusicalControls
from engine.music.theory import parse_key
from engine.emotion.planner import EmotionPlanner
from engine.takes.files import write_atomic
from engine.model.generator import Condition, MusicGenerator
from engine.picture.image import load_image
from engine.music.metrics import estimate_key
from engine.music.notes import notes_from_score
from engine.model.sampling import SamplingOptions
from engine.music.humanize import check_humanize, humanize_score
from engine.music.tokenizer import release_before_repeat
from engine.emotion.va import check_va

TICKS_PER_QUARTER = 480  # resolution of the written files (the REMI grid is 1/16 quarter)


@dataclass(frozen=True)
class Piece:
    """One generated file and what made it."""

    path: Path
    tokens: list[int]
    valence: float | None
    arousal: float | None
    source: str | None  # picture path, None for VA-only
    key: str | None  # key signature written (mido spelling)
    bpm: float  # first tempo of the file
    notes: int
    plan: str = ""  # what the automatic attributes chose, e.g. "E minor · 72 BPM · sparse"


def output_paths(images: Sequence[str], out: str | Path) -> list[Path]:
    """OUT is a file for one input (or a folder that exists) and a folder for several."""
    out = Path(out)
    if len(images) <= 1:
        if out.is_dir():
            stem = Path(images[0]).stem if images else "moodroll"
            return [out / f"{stem}.mid"]
        return [out if out.suffix.lower() in (".mid", ".midi") else out.with_suffix(".mid")]
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; with {len(images)} pictures OUT must be a folder")
    paths, seen = [], set()
    for img in images:
        stem, n = Path(img).stem, 1
        name = f"{stem}.mid"
        while name in seen:
            n += 1
            name = f"{stem}-{n}.mid"
        seen.add(name)
        paths.append(out / name)
    return paths


def to_midi_bytes(tokenizer, tokens: Sequence[int], bpm: float | None, key_signature: str | None,
                  text: str, humanize: float = 0.0, seed: int | None = None) -> tuple[bytes, str | None, float, int]:
    """Tokens -> Standard MIDI File bytes with tempo, key signature and a text meta event;
    ``humanize`` ms of seeded onset spread (engine.music.humanize). Returns (bytes, key written,
    first BPM, note count)."""
    score = tokenizer.decode(tokens).resample(TICKS_PER_QUARTER)
    if bpm is not None:
        score.tempos = [Tempo(0, float(bpm))]
    score = release_before_repeat(humanize_score(score, humanize, seed))  # one note per key
    notes = notes_from_score(score)
    if key_signature is None:
        est = estimate_key(notes)
        key_signature = parse_key(est.name).key_signature if est else None
    midi = mido.MidiFile(file=io.BytesIO(score.dumps_midi()))
    first = midi.tracks[0]
    head = [mido.MetaMessage("text", text=text, time=0)]
    if key_signature:
        head.append(mido.MetaMessage("key_signature", key=key_signature, time=0))
    first[0:0] = head  # at tick 0, before the first event (whose delta time is kept)
    buf = io.BytesIO()
    midi.save(file=buf)
    first_bpm = float(score.tempos[0].qpm) if len(score.tempos) else 120.0
    return buf.getvalue(), key_signature, first_bpm, len(notes)


def generate_files(images: Sequence[str], out: str | Path, *, valence: float | None = None,
                   arousal: float | None = None, bars: int = 8, bpm: float | None = None,
                   key: str | None = None, seed: int | None = None, temperature: float = 1.0,
                   top_p: float = 0.95, bundle=None, device: str = "auto", guidance: float = 2.0,
                   time_signature: tuple[int, int] | None = (4, 4), attributes: bool = True,
                   expression: float = 1.0, humanize: float = 0.0) -> list[Piece]:
    """Generate one file per picture (or one VA-only file); returns what was written.

    ``guidance``: emotion strength (classifier-free guidance weight, 1 = off; no effect without
    a picture or VA). ``attributes``: key, tempo, density, velocity, register and polyphony follow the
    VA as in human-rated music (engine.emotion; the user's own locks win). Raises ValueError (and
    ImageReadError / BundleError, both ValueErrors) with a one-line
    message before anything is written when an input is bad."""
    if (valence is None) != (arousal is None):
        raise ValueError("give both --valence and --arousal, or neither")
    if valence is not None:
        check_va(valence, arousal)
    if not images and valence is None:
        raise ValueError("give at least one picture, or --valence and --arousal")
    if bars < 1:
        raise ValueError(f"bars must be at least 1, got {bars}")
    if bpm is not None and not (20 <= bpm <= 400):
        raise ValueError(f"bpm must lie between 20 and 400, got {bpm:g}")
    # The metre is locked (4/4 by default) so the file drops onto a DAW's bar grid; None = the model's.
    controls = MusicalControls(key=key, bpm=bpm, time_signature=time_signature, expression=expression)  # raises on a bad key name
    check_humanize(humanize)
    SamplingOptions(temperature=temperature, top_p=top_p, guidance=guidance)  # raises on a bad setting
    pictures = [load_image(p) for p in images]  # raises on an unreadable picture
    paths = output_paths(images, out)
    seed = random.SystemRandom().randrange(2**31) if seed is None else int(seed)
    gen = MusicGenerator(bundle, SamplingOptions(temperature=temperature, top_p=top_p, seed=seed, guidance=guidance), controls,
                         device=device)
    pieces = []
    for i, path in enumerate(paths):
        image_tokens, src = None, None
        v, a = valence, arousal
        if pictures:
            image_tokens, (ev, ea) = gen.analyze_image(pictures[i])
            src = str(images[i])
            if v is None:
                v, a = float(np.clip(ev, 1, 9)), float(np.clip(ea, 1, 9))
        gen.set_sampling(SamplingOptions(temperature=temperature, top_p=top_p, seed=seed + i, guidance=guidance))
        planner = EmotionPlanner(controls, enabled=attributes, seed=seed + i)
        piece_controls = planner.retarget(v, a)
        gen.set_controls(piece_controls)
        gen.reset()
        gen.set_condition(Condition(v, a, image_tokens))
        tokens = gen.generate_bars(bars)
        sig = piece_controls.scale.key_signature if piece_controls.scale else None
        text = (f"moodroll: valence={v:.2f} arousal={a:.2f} (1-9 scale); source="
                f"{Path(src).name if src else 'none'}; key={piece_controls.key or 'free'}; seed={seed + i}; "
                f"bundle={gen.bundle.name}; attributes={planner.describe()}")
        data, key_written, first_bpm, n_notes = to_midi_bytes(gen.tokenizer, tokens, piece_controls.bpm, sig, text,
                                                              humanize=humanize, seed=seed + i)
        write_atomic(path, data)
        pieces.append(Piece(path, tokens, v, a, src, key_written, first_bpm, n_notes,
                            planner.describe() if attributes else ""))
    return pieces
