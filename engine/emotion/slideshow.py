"""Music for a slideshow or a video: one continuous piece whose emotion follows the pictures.

``moodroll generate --slideshow DIR --seconds S`` (the pictures of DIR in name order, S seconds
each) and ``moodroll generate --video FILE`` (its frames, 2 per second, through the image
encoder and the webcam mode's smoothing, :class:`engine.picture.webcam.VASmoother`; a new scene is
where the smoothed emotion or picture moved): the model keeps one context for the whole piece,
and at each change the condition (image tokens + VA) and the emotion attributes switch at a
bar line. The tempo is fixed for the whole piece, so bars line up with the pictures:

* slideshow: the tempo is chosen so that S seconds are a whole number of 4/4 bars, as close as
  possible to the mean planned tempo (every change then falls exactly on a bar line);
* video: the mean planned tempo; a scene change goes to the nearest bar line (at most half a
  bar off; each marker's text says the scene's own time).

The .mid file gets a marker (meta event) at each change naming the picture/scene and what was
chosen ("sunrise.jpg · C major · 96 BPM · flowing"), plus the text event ``generate`` writes.
"""
from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass, replace
from pathlib import Path

import mido
import numpy as np

from engine.model.controls import MusicalControls
from engine.emotion.planner import EmotionPlanner
from engine.model.filters.sanity import TEMPO_RANGE, clamp_bpm

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
BEATS_PER_BAR = 4  # the metre is locked to 4/4 here, so bar lines are known in advance
TICKS_PER_QUARTER = 480


@dataclass(frozen=True)
class Segment:
    """One picture or scene: from ``start_s`` seconds on, this condition."""

    start_s: float
    valence: float
    arousal: float
    tokens: np.ndarray | None
    label: str


@dataclass(frozen=True)
class Scored:
    path: Path
    bpm: float
    bars: int
    markers: list  # (bar, text)
    notes: int


def slideshow_images(folder) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--slideshow {folder}: not a folder")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise ValueError(f"--slideshow {folder}: no pictures in it ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return images


def slideshow_segments(gen, images, seconds: float) -> list[Segment]:
    from engine.picture.image import load_image

    pictures = [load_image(p) for p in images]  # an unreadable picture fails before any music
    out = []
    for i, (path, rgb) in enumerate(zip(images, pictures)):
        tokens, (v, a) = gen.analyze_image(rgb)
        out.append(Segment(i * seconds, float(np.clip(v, 1, 9)), float(np.clip(a, 1, 9)), tokens, Path(path).name))
    return out


def video_segments(gen, video, fps: float = 2.0) -> tuple[list[Segment], float]:
    """Scenes of a video (the smoothed VA / image tokens change) -> (segments, video length in s)."""
    from engine.picture.webcam import VASmoother, iter_frames

    smoother, out, t = VASmoother(), [], 0.0
    for t, frame in iter_frames(str(video), fps=fps, realtime=False):
        tokens, va = gen.analyze_image(frame)
        if smoother.update(va, tokens):
            v, a = smoother.value
            out.append(Segment(t, float(np.clip(v, 1, 9)), float(np.clip(a, 1, 9)), smoother.tokens,
                               f"{Path(video).name} @ {t:.1f} s"))
    if not out:
        raise ValueError(f"--video {video}: no frames could be read")
    return out, t + 1.0 / fps


def slideshow_bpm(planned: float, seconds: float) -> float:
    """A tempo near ``planned`` at which ``seconds`` is a whole number of 4/4 bars (inside TEMPO_RANGE)."""
    best = None
    for bars in range(1, 64):
        bpm = BEATS_PER_BAR * bars * 60.0 / seconds
        if TEMPO_RANGE[0] <= bpm <= TEMPO_RANGE[1]:
            if best is None or abs(math.log(bpm / planned)) < abs(math.log(best / planned)):
                best = bpm
    return best if best is not None else clamp_bpm(planned)


def add_markers(midi_bytes: bytes, markers: list[tuple[int, str]]) -> bytes:
    """Insert marker meta events at absolute ticks into the first track of a MIDI file."""
    midi = mido.MidiFile(file=io.BytesIO(midi_bytes))
    track = midi.tracks[0]
    events, now = [], 0
    for msg in track:
        now += msg.time
        events.append((now, 1, msg))
    events += [(tick, 0, mido.MetaMessage("marker", text=text)) for tick, text in markers]
    end = [e for e in events if e[2].type == "end_of_track"]
    body = sorted((e for e in events if e[2].type != "end_of_track"), key=lambda e: (e[0], e[1]))
    last = max([e[0] for e in body] + [e[0] for e in end] + [0])
    track.clear()
    now = 0
    for tick, _, msg in body + [(last, 2, mido.MetaMessage("end_of_track"))]:
        track.append(msg.copy(time=tick - now))
        now = tick
    buf = io.BytesIO()
    midi.save(file=buf)
    return buf.getvalue()


def score_segments(gen, segments: list[Segment], total_s: float, out, *, user: MusicalControls,
                   attributes: bool = True, seed: int = 0, bpm: float | None = None,
                   slideshow_seconds: float | None = None) -> Scored:
    """Generate the one piece for ``segments`` and write it to ``out`` (see the module docstring)."""
    from engine.offline import to_midi_bytes
    from engine.takes.files import write_atomic
    from engine.model.generator import Condition

    user = replace(user, time_signature=(4, 4))
    if bpm is None and user.bpm is not None:
        bpm = user.bpm
    if bpm is None:
        probe = EmotionPlanner(MusicalControls())
        planned = float(np.mean([probe.retarget(s.valence, s.arousal).bpm for s in segments])) if attributes else 100.0
        bpm = slideshow_bpm(planned, slideshow_seconds) if slideshow_seconds else round(clamp_bpm(planned))
    bar_s = BEATS_PER_BAR * 60.0 / bpm
    total_bars = max(1, int(round(total_s / bar_s)))
    change_bar = [min(int(round(s.start_s / bar_s)), total_bars - 1) for s in segments]
    planner = EmotionPlanner(replace(user, bpm=float(bpm)), enabled=True, fixed_tempo=True, seed=seed)
    gen.reset()
    markers, tokens, bar, nxt = [], [], 0, 0
    bar_id = gen.tokenizer.groups.bar

    def switch(k: int) -> None:
        s = segments[k]
        controls = planner.retarget(s.valence, s.arousal) if attributes else planner.user
        gen.set_controls(controls)
        gen.set_condition(Condition(s.valence, s.arousal, s.tokens))
        what = planner.describe() if attributes else f"{bpm:.0f} BPM"
        markers.append((bar, f"{s.label} · valence {s.valence:.1f} arousal {s.arousal:.1f} · {what}"))

    while nxt < len(segments) and change_bar[nxt] <= 0:  # what starts in bar 0 (the last of them wins)
        nxt += 1
    switch(nxt - 1)
    limit = 600 * total_bars + 64
    while len(tokens) < limit:
        tok = gen.next_token()
        if tok == bar_id:
            bar += 1 if tokens else 0
            if bar >= total_bars:
                break
            if nxt < len(segments) and change_bar[nxt] <= bar:
                while nxt + 1 < len(segments) and change_bar[nxt + 1] <= bar:
                    nxt += 1  # several changes inside one bar: the last one wins
                switch(nxt)
                nxt += 1
        tokens.append(tok)
    text = f"moodroll: {len(segments)} scenes; {bpm:.2f} BPM, 4/4; seed={seed}; bundle={gen.bundle.name}"
    data, _, _, n_notes = to_midi_bytes(gen.tokenizer, tokens, bpm, None, text)
    data = add_markers(data, [(b * BEATS_PER_BAR * TICKS_PER_QUARTER, t) for b, t in markers])
    path = Path(out)
    if path.suffix.lower() not in (".mid", ".midi"):
        path = path / "slideshow.mid" if path.is_dir() else path.with_suffix(".mid")
    write_atomic(path, data)
    return Scored(path, float(bpm), total_bars, markers, n_notes)


def generate_slideshow(out, *, folder=None, video=None, seconds: float = 5.0, bundle=None, seed: int | None = None,
                       guidance: float = 2.0, temperature: float = 1.0, top_p: float = 0.95, key: str | None = None,
                       bpm: float | None = None, attributes: bool = True, device: str = "auto") -> Scored:
    """``moodroll generate --slideshow DIR --seconds S`` / ``--video FILE``: checks, then one piece."""
    from engine.model.generator import MusicGenerator
    from engine.model.sampling import SamplingOptions

    if (folder is None) == (video is None):
        raise ValueError("give --slideshow DIR or --video FILE")
    if not (0.5 <= seconds <= 600):
        raise ValueError(f"--seconds must lie between 0.5 and 600, got {seconds:g}")
    if bpm is not None and not (TEMPO_RANGE[0] <= bpm <= TEMPO_RANGE[1]):
        raise ValueError(f"bpm must lie between {TEMPO_RANGE[0]:g} and {TEMPO_RANGE[1]:g}, got {bpm:g}")
    user = MusicalControls(key=key, bpm=bpm, time_signature=(4, 4))
    images = slideshow_images(folder) if folder is not None else None
    if video is not None:
        from engine.picture.webcam import WebcamError, open_capture

        try:
            open_capture(str(video)).release()  # one clear line before the model loads
        except WebcamError as e:
            raise ValueError(str(e)) from None
    seed = random.SystemRandom().randrange(2**31) if seed is None else int(seed)
    gen = MusicGenerator(bundle, SamplingOptions(temperature=temperature, top_p=top_p, seed=seed, guidance=guidance),
                         user, device=device)
    if images is not None:
        segs = slideshow_segments(gen, images, seconds)
        return score_segments(gen, segs, seconds * len(segs), out, user=user, attributes=attributes, seed=seed,
                              bpm=bpm, slideshow_seconds=seconds)
    segs, length = video_segments(gen, video)
    return score_segments(gen, segs, length, out, user=user, attributes=attributes, seed=seed, bpm=bpm)
