"""The ``moodroll`` command line.

Each subcommand is a small function here that parses its arguments and calls into the
engine; errors the user can fix (bad file, unknown port, corrupt bundle) print one clear
line on stderr and exit non-zero.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.errors import first_line
from engine.model.sampling import DEFAULT_GUIDANCE


class UserError(Exception):
    """An error with a message meant for the user (one line, no traceback)."""


def _time_signature(text):
    """--time-signature: '4/4' -> (4, 4); 'free' -> None; a bad value is one clear line."""
    from engine.music.theory import parse_time_signature

    try:
        return parse_time_signature(text)
    except ValueError as e:
        raise UserError(str(e)) from None


def cmd_metrics(args) -> int:
    from engine.music.metrics import analyze_file

    failed = 0
    for f in args.files:
        row = analyze_file(f)
        failed += "error" in row
        print(json.dumps(row), flush=True)
    return 1 if failed and failed == len(args.files) else 0


def cmd_demo(args) -> int:
    """The README's main job: until a trained bundle ships, summarise an example MIDI."""
    from engine.music.metrics import analyze_file
    from engine.paths import EXAMPLES
    from engine.music.tokenizer import Tokenizer

    midi = Path(args.midi) if args.midi else EXAMPLES / "example.mid"
    tok = Tokenizer()
    ids = tok.encode(midi)
    print(f"tokenizer: MidiTok REMI, vocabulary {tok.vocab_size} tokens")
    print(f"{midi.name}: {len(ids)} tokens; first: {' '.join(tok.tokens(ids[:12]))}")
    print(json.dumps(analyze_file(midi), indent=1))
    return 0


def cmd_slideshow(args) -> int:
    """--slideshow DIR / --video FILE: one piece whose emotion follows the pictures (engine/emotion/slideshow.py)."""
    from engine.emotion.slideshow import generate_slideshow

    if args.images or args.valence is not None or args.arousal is not None:
        raise UserError("--slideshow/--video take no pictures and no --valence/--arousal (the pictures set the emotion)")
    try:
        r = generate_slideshow(args.out, folder=args.slideshow, video=args.video, seconds=args.seconds,
                               bundle=args.bundle, seed=args.seed, guidance=args.guidance, temperature=args.temperature,
                               top_p=args.top_p, key=args.key, bpm=args.bpm, attributes=args.attributes,
                               device=args.device)
    except (ValueError, OSError) as e:
        raise UserError(first_line(e)) from None
    print(f"{r.path}: {r.notes} notes, {r.bars} bars at {r.bpm:.2f} BPM, {len(r.markers)} changes")
    for bar, text in r.markers:
        print(f"  bar {bar + 1}: {text}")
    return 0


def cmd_generate(args) -> int:
    """Pictures and/or a VA point -> .mid files (engine/offline.py)."""
    from engine.offline import generate_files

    if args.key and args.key.strip().lower() == "live":  # Ableton Live 12's key (engine/daw/live_key.py)
        from engine.daw.live_key import read_live_key

        args.key, line = read_live_key()
        print(f"moodroll: {line}", file=sys.stderr, flush=True)
    if args.slideshow or args.video:
        return cmd_slideshow(args)
    try:
        pieces = generate_files(args.images, args.out, valence=args.valence, arousal=args.arousal,
                                bars=args.bars, bpm=args.bpm, key=args.key, seed=args.seed,
                                time_signature=_time_signature(args.time_signature),
                                temperature=args.temperature, top_p=args.top_p, bundle=args.bundle,
                                device=args.device, guidance=args.guidance, attributes=args.attributes,
                                expression=args.expression, humanize=args.humanize)
    except (ValueError, OSError) as e:  # bad picture, bundle, key, VA, output path
        raise UserError(first_line(e)) from None
    for p in pieces:
        print(f"{p.path}: {p.notes} notes, valence {p.valence:.2f} arousal {p.arousal:.2f}, "
              f"{p.bpm:.0f} BPM, key {p.key or '-'}" + (f", from {p.source}" if p.source else "")
              + (f" [{p.plan}]" if p.plan else ""))
    return 0


def cmd_live(args) -> int:
    """Stream generated piano to a MIDI port, steered by a picture, a webcam or a VA point (engine/live/command.py)."""
    from engine.live.command import LiveError, LiveOptions, run_live

    opts = LiveOptions(image=args.image, webcam=args.webcam, valence=args.valence, arousal=args.arousal,
                       port=args.port, clock_in=args.clock_in, clock_out=args.clock_out, bpm=args.bpm,
                       key=args.key, time_signature=_time_signature(args.time_signature),
                       seed=args.seed, temperature=args.temperature, top_p=args.top_p,
                       bars=args.bars, midi_api=args.midi_api, bundle=args.bundle, device=args.device,
                       fps=args.fps, capture=args.capture, capture_bars=args.capture_bars,
                       guidance=args.guidance, osc=args.osc, osc_host=args.osc_host, follow=args.follow,
                       follow_host=args.follow_host, follow_port=args.follow_port, attributes=args.attributes,
                       expression=args.expression, humanize=args.humanize)
    try:
        return run_live(opts, report=lambda line: print(f"moodroll: {line}", file=sys.stderr, flush=True))
    except LiveError as e:
        raise UserError(str(e)) from None


def cmd_send(args) -> int:
    """Put a take into a DAW: ``send live TAKE.mid`` makes a clip in Live over AbletonOSC (engine/daw/ableton.py)."""
    from engine.daw.ableton import send_take

    try:
        print(send_take(args.take, track=None if args.track is None else args.track - 1,
                        slot=None if args.slot is None else args.slot - 1, host=args.host, port=args.port,
                        reply_port=args.reply_port, replace=args.replace, timeout=args.timeout))
    except ValueError as e:
        raise UserError(first_line(e)) from None
    return 0


def cmd_ports(args) -> int:
    """List MIDI inputs and outputs per MIDI system (engine/live/command.py)."""
    from engine.live.command import LiveError, format_ports

    try:
        print(format_ports(args.midi_api))
    except LiveError as e:
        raise UserError(str(e)) from None
    return 0


def _add_music_options(p: argparse.ArgumentParser) -> None:
    """The musical, sampling and model options shared by `generate` and `live`."""
    p.add_argument("--key", help="lock a key/scale, e.g. 'C minor', 'D dorian', 'F# major'; 'live' = Ableton Live "
                   "12's key via AbletonOSC (live: followed while playing, from the next bar)")
    p.add_argument("--time-signature", default="4/4", help="metre of every bar, e.g. 4/4, 3/4, 6/8 (default 4/4, "
                   "so bars line up with the DAW), or 'free' to let the model choose")
    p.add_argument("--seed", type=int)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE, metavar="W", help="emotion strength: how "
                   "strongly the music follows the picture/VA (classifier-free guidance; 1 = off, "
                   f"{DEFAULT_GUIDANCE:g} = default, 2× decoding cost)")
    p.add_argument("--bundle", help="model bundle folder (default: assets/models/default)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--expression", type=float, default=1.0, metavar="X", help="a pianist's velocities and note "
                   "lengths (learned from POP909's performances): 1 = as fitted, 0 = the model's own, up to 4")
    p.add_argument("--humanize", type=float, default=0.0, metavar="MS", help="seeded timing spread of onsets in ms "
                   "(0 = on the grid, the default; never while following a DAW)")
    p.add_argument("--no-attributes", dest="attributes", action="store_false", help="do not derive key, tempo, "
                   "density, velocity, register and polyphony from the emotion (the model alone decides; the "
                   "sanity limits stay)")


EXTENSIONS = "moodroll.commands"  # entry-point group: (name = command, value = register(subparsers, UserError))
NOT_INSTALLED = {
    "app": "the desktop app is not installed: pip install 'moodroll[desktop]'",
    "bench": "moodroll bench is not part of the installed program; run it from a source checkout (docs/performance.md)",
}


def extension_commands() -> list:
    """Commands other packages add by entry point (``app``: desktop/command.py; ``bench``: tools/bench/command.py):
    the engine never imports the app or the measuring tools itself."""
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group=EXTENSIONS):
        try:
            found.append((ep.name, ep.load()))
        except ImportError:  # that package is not installed here
            pass
    return found


def _missing(sub, name: str, why: str) -> None:
    def fail(args):
        raise UserError(why)

    sp = sub.add_parser(name, help=f"(not installed) {why}", add_help=False, prefix_chars="\0")
    sp.add_argument("rest", nargs=argparse.REMAINDER)
    sp.set_defaults(func=fail)


def build_parser(commands: list | None = None) -> argparse.ArgumentParser:
    """``commands``: (name, register) pairs to add; None = those installed (:func:`extension_commands`)."""
    p = argparse.ArgumentParser(prog="moodroll", description="Picture -> emotion-matched piano MIDI.")
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("metrics", help="music metrics of MIDI files, one JSON object per line")
    m.add_argument("files", nargs="+")
    m.set_defaults(func=cmd_metrics)

    d = sub.add_parser("demo", help="tokenise and analyse an example MIDI file")
    d.add_argument("midi", nargs="?")
    d.set_defaults(func=cmd_demo)

    g = sub.add_parser("generate", help="pictures and/or a valence-arousal point -> .mid files")
    g.add_argument("images", nargs="*", metavar="IMAGE", help="pictures (JPEG, PNG, ...); none = VA only")
    g.add_argument("-o", "--out", required=True, help="output .mid (one picture) or folder (several)")
    g.add_argument("--valence", type=float, help="1-9; overrides the picture's estimate")
    g.add_argument("--arousal", type=float, help="1-9; overrides the picture's estimate")
    g.add_argument("--bars", type=int, default=8)
    g.add_argument("--bpm", type=float, help="lock the tempo (default: the model's)")
    show = g.add_mutually_exclusive_group()
    show.add_argument("--slideshow", metavar="DIR", help="one piece for the pictures of DIR in name order, "
                      "--seconds each; the emotion changes at bar lines, a marker at each change")
    show.add_argument("--video", metavar="FILE", help="one piece whose emotion follows the video's scenes")
    g.add_argument("--seconds", type=float, default=5.0, help="--slideshow: seconds per picture (default 5)")
    _add_music_options(g)
    g.set_defaults(func=cmd_generate)

    lv = sub.add_parser("live", help="stream piano that follows a picture, webcam or VA point to a MIDI port")
    src = lv.add_mutually_exclusive_group()
    src.add_argument("--image", help="a picture (JPEG, PNG, ...)")
    src.add_argument("--webcam", metavar="N|FILE", help="a camera number (0, 1, ...) or a video file")
    lv.add_argument("--valence", type=float, help="1-9 (with --image: overrides its estimate)")
    lv.add_argument("--arousal", type=float, help="1-9 (with --image: overrides its estimate)")
    lv.add_argument("--port", help="play to this existing MIDI port (default: a new virtual port 'Moodroll')")
    lv.add_argument("--clock-in", nargs="?", const=True, default=False, metavar="PORT",
                    help="follow the DAW's MIDI clock on a virtual port 'Moodroll Clock In' (or on PORT)")
    lv.add_argument("--clock-out", action="store_true", help="also send MIDI clock (own tempo only)")
    lv.add_argument("--bpm", type=float, help="tempo (default: the DAW's with --clock-in, else the model's)")
    _add_music_options(lv)
    lv.add_argument("--bars", type=int, help="stop after this many bars (default: until Ctrl-C)")
    lv.add_argument("--midi-api", help="jack, alsa, coremidi or winmm (default: $MOODROLL_MIDI_API, else the platform's)")
    lv.add_argument("--fps", type=float, default=4.0, help="webcam frames analysed per second")
    lv.add_argument("--capture", metavar="FILE.mid", help="on exit, write the last --capture-bars bars here")
    lv.add_argument("--capture-bars", type=int, default=8)
    lv.add_argument("--osc", nargs="?", type=int, const=9000, metavar="PORT",
                    help="take /moodroll/... OSC control messages on this UDP port (default 9000; docs/protocol.md)")
    lv.add_argument("--osc-host", default="127.0.0.1", help="address the OSC server binds (default 127.0.0.1: this "
                    "machine only)")
    lv.add_argument("--follow", choices=("midi", "live", "reaper", "jack", "link"),
                    help="follow the DAW's transport and tempo: midi = its MIDI clock on 'Moodroll Clock In', "
                    "live = Ableton Live via AbletonOSC, reaper = Reaper's OSC control surface, jack = the JACK "
                    "transport (Ardour, Qtractor...), link = an Ableton Link session (needs moodroll[link])")
    lv.add_argument("--follow-host", default="127.0.0.1", help="--follow live: the machine Live runs on; "
                    "--follow reaper: the address to listen on (default 127.0.0.1)")
    lv.add_argument("--follow-port", type=int, help="--follow live: AbletonOSC's port (11000); --follow reaper: "
                    "the port Reaper sends its OSC feedback to (9001)")
    lv.set_defaults(func=cmd_live)

    sd = sub.add_parser("send", help="put a take into a DAW (live: a clip in Ableton Live via AbletonOSC)")
    sd.add_argument("daw", choices=("live",), help="the DAW (Reaper: use the ReaScripts in plugins/reaper/)")
    sd.add_argument("take", metavar="TAKE.mid")
    sd.add_argument("--track", type=int, help="track number, as Live shows it (default: Live's selected track)")
    sd.add_argument("--slot", type=int, help="clip slot (scene) number, as Live shows it (default: the first "
                                             "empty slot from the selected scene down)")
    sd.add_argument("--host", default="127.0.0.1", help="the machine Live runs on (default 127.0.0.1)")
    sd.add_argument("--port", type=int, default=11000, help="AbletonOSC's port (default 11000)")
    sd.add_argument("--reply-port", type=int, default=11001, help="where AbletonOSC answers (default 11001)")
    sd.add_argument("--replace", action="store_true", help="replace a clip already in the slot")
    sd.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each answer from Live")
    sd.set_defaults(func=cmd_send)

    pt = sub.add_parser("ports", help="list MIDI inputs and outputs per MIDI system")
    pt.add_argument("--midi-api", help="only this system: jack, alsa, coremidi or winmm")
    pt.set_defaults(func=cmd_ports)

    registered = set()
    for name, register in (extension_commands() if commands is None else commands):
        register(sub, UserError)
        registered.add(name)
    for name, why in sorted(NOT_INSTALLED.items()):
        if name not in registered:
            _missing(sub, name, why)
    return p


def main(argv: list[str] | None = None, commands: list | None = None) -> int:
    args = build_parser(commands).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"moodroll: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
