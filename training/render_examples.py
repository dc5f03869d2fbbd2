"""Render eight takes to audio: two per emotion quadrant, from pictures where we may ship them.

    nice -n 10 python -m training.render_examples           # -> docs/examples/*.{mid,ogg}, README.md

Each take is what ``moodroll generate`` writes (engine.offline.generate_files: the shipped
bundle, default settings, 8 bars, a fixed seed), rendered with FluidSynth and the General MIDI
piano of Debian's ``fluid-soundfont-gm`` (``apt-get install fluidsynth fluid-soundfont-gm``),
normalised to -1 dBFS and encoded as mono Ogg Vorbis by sox. Pictures: the example pictures in
assets/examples (drawn by code, ours to ship), at the VA the image head estimates; OASIS's
photographs carry their sources' own licences and stay out of the repository, so the quadrants
the examples do not reach are VA points. ``sox stat`` of every file (peak, RMS, clipping) goes
into docs/examples/README.md with the table the project README links; a piano roll of the
eight takes goes to docs/figures/realness_examples.png.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.paths import EXAMPLES, REPO_ROOT

OUT = REPO_ROOT / "docs" / "examples"
ROLL = REPO_ROOT / "docs" / "figures" / "realness_examples.png"
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
MAX_BYTES = 3_000_000  # every OGG together


@dataclass(frozen=True)
class Take:
    name: str
    quadrant: str
    picture: str | None = None  # a file in assets/examples (its VA: the head's estimate)
    va: tuple[float, float] | None = None  # a VA point (1-9) when there is no picture
    seed: int = 7


TAKES = (
    Take("calm_lake", "pleasant, calm", picture="calm_lake.jpg"),
    Take("sunrise", "pleasant, calm", picture="sunrise.jpg"),
    Take("storm", "unpleasant, calm", picture="storm.jpg"),
    Take("gloom", "unpleasant, calm", va=(2.5, 2.5)),
    Take("joy", "pleasant, excited", va=(7.5, 7.5)),
    Take("celebration", "pleasant, excited", va=(8.0, 6.5)),
    Take("anger", "unpleasant, excited", va=(2.5, 7.5)),
    Take("alarm", "unpleasant, excited", va=(3.0, 8.5)),
)


def soundfont() -> str:
    for sf in SOUNDFONTS:
        if Path(sf).is_file():
            return sf
    raise SystemExit("no General MIDI soundfont: apt-get install fluidsynth fluid-soundfont-gm")


def sox_stats(path: Path) -> dict:
    """Peak and RMS level (dBFS), length and clipped samples of an audio file, from ``sox stat``."""
    err = subprocess.run(["sox", str(path), "-n", "stats"], capture_output=True, text=True, check=True).stderr
    want = {"Pk lev dB": "peak_db", "RMS lev dB": "rms_db", "Length s": "seconds", "Flat factor": "flat_factor"}
    out = {}
    for line in err.splitlines():
        for label, key in want.items():
            if line.startswith(label):
                out[key] = float(line.split()[-1]) if re.match(r"^-?[\d.]+$", line.split()[-1]) else None
    return out


def render(midi: Path, ogg: Path, sf: str, quality: int = 2) -> dict:
    """MIDI -> FluidSynth (44.1 kHz) -> sox: 1.5 s of release kept, -1 dBFS, mono 32 kHz Vorbis."""
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "take.wav"
        subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.8", "-r", "44100", "-F", str(wav), sf, str(midi)],
                       check=True, capture_output=True)
        raw = sox_stats(wav)
        subprocess.run(["sox", str(wav), "-C", str(quality), str(ogg), "silence", "1", "0.01", "0.1%", "reverse", "silence",
                        "1", "0.01", "0.1%", "reverse", "pad", "0", "1.0", "remix", "-", "rate", "32k", "norm", "-1"],
                       check=True)
    return {"raw": raw, "ogg": sox_stats(ogg)}


def piano_roll(pieces: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from engine.music.notes import read_midi_notes

    fig, axes = plt.subplots(2, 4, figsize=(16, 6), sharey=True)
    for ax, (take, piece) in zip(axes.T.ravel(), pieces):
        n = read_midi_notes(piece.path).pitched()
        beats = n.start / n.resolution
        ax.barh(n.pitch, (n.end - n.start) / n.resolution, left=beats, height=0.8,
                color=matplotlib.cm.viridis(n.velocity / 127.0))
        ax.set_title(f"{take.name}: V {piece.valence:.1f} A {piece.arousal:.1f}, {piece.key or '-'}, {piece.bpm:.0f} BPM",
                     fontsize=9)
        for b in range(0, int(beats.max()) + 2, 4):
            ax.axvline(b, color="0.85", linewidth=0.6, zorder=0)
        ax.set_xlabel("beat")
    axes[0, 0].set_ylabel("pitch")
    axes[1, 0].set_ylabel("pitch")
    fig.suptitle("The eight example takes (colour = velocity)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="render the README's eight example takes to OGG")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--bundle")
    args = ap.parse_args(argv)
    from engine.offline import generate_files

    for tool in ("fluidsynth", "sox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install fluidsynth fluid-soundfont-gm sox")
    sf = soundfont()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, pieces = [], []
    for t in TAKES:
        images = [str(EXAMPLES / t.picture)] if t.picture else []
        v, a = t.va if t.va else (None, None)
        piece = generate_files(images, out / f"{t.name}.mid", valence=v, arousal=a, seed=t.seed, bundle=args.bundle,
                               device="cpu")[0]
        stats = render(piece.path, out / f"{t.name}.ogg", sf)
        pieces.append((t, piece))
        rows.append({"take": t.name, "quadrant": t.quadrant, "picture": t.picture, "valence": piece.valence,
                     "arousal": piece.arousal, "key": piece.key, "bpm": piece.bpm, "notes": piece.notes, "plan": piece.plan,
                     "bytes": (out / f"{t.name}.ogg").stat().st_size, **stats})
        print(json.dumps(rows[-1]), flush=True)
    total = sum(r["bytes"] for r in rows)
    if total > MAX_BYTES:
        raise SystemExit(f"the OGG files hold {total:,} bytes, more than {MAX_BYTES:,}: lower the quality")
    piano_roll(pieces, ROLL)
    (out / "stats.json").write_text(json.dumps(rows, indent=1))
    write_readme(rows, out / "README.md")


def write_readme(rows: list, path: Path) -> None:
    L = ["# Example takes", "",
         "Eight takes as `moodroll generate` writes them (shipped bundle, default settings, 8 bars, seed 7), rendered by "
         "`python -m training.render_examples` with FluidSynth and the FluidR3 General MIDI grand piano, normalised to "
         "−1 dBFS, mono Ogg Vorbis. Pictures are the example pictures (assets/examples, VA estimated by the image head); "
         "the quadrants they do not reach are VA points. The MIDI files lie beside the audio.", "",
         "| quadrant | from | valence / arousal | plan | listen | MIDI |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        src = f"<img src=\"../../assets/examples/{r['picture']}\" width=\"120\" alt=\"{r['take']}\">" if r["picture"] else "VA point"
        L.append(f"| {r['quadrant']} | {src} | {r['valence']:.1f} / {r['arousal']:.1f} | {r['plan'] or '-'} | "
                 f"[{r['take']}.ogg]({r['take']}.ogg) | [{r['take']}.mid]({r['take']}.mid) |")
    L += ["", "Levels (`sox stats`; the raw FluidSynth render before normalising, then the OGG):", "",
          "| take | seconds | raw peak dBFS | raw RMS dBFS | OGG peak dBFS | OGG RMS dBFS | bytes |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        L.append(f"| {r['take']} | {r['ogg']['seconds']:.1f} | {r['raw']['peak_db']:.1f} | {r['raw']['rms_db']:.1f} | "
                 f"{r['ogg']['peak_db']:.1f} | {r['ogg']['rms_db']:.1f} | {r['bytes']:,} |")
    L += ["", "![piano rolls of the eight takes](../figures/realness_examples.png)", ""]
    path.write_text("\n".join(L))


if __name__ == "__main__":
    main()
