"""Fuzzing what users hand Moodroll: pictures, MIDI files, model bundles (hypothesis).

Each input either works (a picture decodes to RGB and preprocesses; a MIDI file reads) or
raises the engine's user-facing error (ImageReadError, MidiReadError, BundleError: ValueErrors
the CLI prints as one line) whose message is one line. Anything else — another exception type
(a traceback), a multi-line message, a run longer than HANG_S (a hang), a crash of the process —
fails. The inputs start from real files made by OpenCV, Pillow and mido, then are cut, flipped,
given wrong headers, impossible sizes, bad chunk lengths and running-status abuse.

Seeded (derandomised) and bounded in CI: 1,712 generated inputs (1,200 pictures, 500 MIDI files
each read four ways, 12 bundles) plus the known cases. The recorded full run (docs/reliability.md),
10,272 inputs: ``MOODROLL_FUZZ_SCALE=6 .venv/bin/python -m pytest -q tests/test_fuzz_inputs.py``.
"""
import io
import json
import os
import shutil
import signal
import struct
import zlib
from contextlib import contextmanager

import cv2
import mido
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.model.bundle import BundleError, load_bundle, write_manifest
from engine.picture.image import ImageReadError, load_image, preprocess
from engine.music.metrics import analyze_file
from engine.music.notes import read_midi_notes
from engine.music.tokenizer import MidiReadError, Tokenizer

SCALE = float(os.environ.get("MOODROLL_FUZZ_SCALE", "1"))
HANG_S = 20  # one case taking longer than this is a hang (real cases take milliseconds)


def fuzz(n):
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=True)


@contextmanager
def no_hang():
    def alarm(*_):
        raise TimeoutError(f"took more than {HANG_S} s: a hang")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(HANG_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def handled_or_one_line(fn, *args, errors=(ValueError,)):
    """Run ``fn``; returns its result, or None when it raised one of ``errors`` with a one-line
    message. Any other exception propagates (the test fails with it)."""
    with no_hang():
        try:
            return fn(*args)
        except errors as e:
            msg = str(e)
            assert msg and "\n" not in msg and len(msg) < 400, repr(msg)
            assert "Traceback" not in msg
            return None


def mutate(data: bytes, draw) -> bytes:
    """One of: as is, cut short, bytes flipped, a wrong header, garbage in front, or all garbage."""
    kind = draw(st.sampled_from(["same", "truncate", "flip", "header", "prefix", "garbage", "empty"]))
    if kind == "truncate" and data:
        return data[:draw(st.integers(0, len(data) - 1))]
    if kind == "flip" and data:
        b = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(b) - 1))
            b[i] = draw(st.integers(0, 255))
        return bytes(b)
    if kind == "header":
        return draw(st.binary(min_size=1, max_size=16)) + data[16:]
    if kind == "prefix":
        return draw(st.binary(min_size=1, max_size=64)) + data
    if kind == "garbage":
        return draw(st.binary(max_size=512))
    if kind == "empty":
        return b""
    return data


# -- pictures ---------------------------------------------------------------------------------
def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def claimed_size_png(w: int, h: int, depth: int = 8, colour: int = 2) -> bytes:
    """A valid PNG header claiming w x h pixels, with a few bytes of image data (a decompression bomb's shape)."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


@st.composite
def pictures(draw):
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    kind = draw(st.sampled_from(["gray", "bgr", "bgra", "gray16", "bgr16", "cmyk", "gif", "palette", "huge"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "huge":
        return claimed_size_png(draw(st.sampled_from([20000, 65535, 2**31 - 1, 0])),
                                draw(st.sampled_from([20000, 65535, 2**31 - 1, 1])), *draw(st.sampled_from([(8, 2), (16, 6), (1, 0)])))
    if kind in ("cmyk", "gif", "palette"):
        from PIL import Image

        buf = io.BytesIO()
        if kind == "cmyk":
            Image.fromarray(rng.integers(0, 256, (h, w, 4), np.uint8), "CMYK").save(buf, "JPEG")
        elif kind == "gif":  # animated: several frames
            frames = [Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)) for _ in range(draw(st.integers(1, 4)))]
            frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
        else:
            Image.fromarray(rng.integers(0, 256, (h, w), np.uint8), "L").convert("P").save(buf, "PNG")
        return buf.getvalue()
    channels = {"gray": 1, "bgr": 3, "bgra": 4, "gray16": 1, "bgr16": 3}[kind]
    dtype = np.uint16 if kind.endswith("16") else np.uint8
    img = rng.integers(0, np.iinfo(dtype).max, (h, w, channels), dtype=dtype, endpoint=True)
    ext = draw(st.sampled_from([".png", ".tiff"] if dtype == np.uint16 else [".png", ".jpg", ".bmp", ".webp", ".tiff"]))
    if ext in (".jpg", ".webp") and channels == 4:
        img = img[:, :, :3]
    ok, enc = cv2.imencode(ext, img)
    assert ok
    return enc.tobytes()


def _picture_contract(data):
    rgb = handled_or_one_line(load_image, data)
    if rgb is not None:
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        assert preprocess(rgb).shape == (3, 224, 224)  # what the image encoder gets


@fuzz(1200)
@given(data=st.data())
def test_pictures_decode_or_give_one_clear_line(data):
    _picture_contract(mutate(data.draw(pictures()), data.draw))


def test_known_bad_pictures(tmp_path):
    for data in (b"", b"\x89PNG\r\n\x1a\n", claimed_size_png(60000, 60000), claimed_size_png(30000, 30000),
                 b"GIF89a" + b"\x00" * 10, b"\xff\xd8\xff" + b"\x00" * 100, b"BM" + b"\xff" * 60):
        with pytest.raises(ImageReadError, match="^cannot read image <bytes>: (not a decodable picture|it claims more than 134 megapixels)"):
            load_image(data)
    (tmp_path / "x.png").write_bytes(claimed_size_png(30000, 30000))
    with pytest.raises(ImageReadError, match=r"^cannot read image .*x\.png: (not a decodable picture|it claims more than)"):
        load_image(tmp_path / "x.png")
    one = load_image(cv2.imencode(".png", np.zeros((1, 1, 4), np.uint8))[1].tobytes())  # 1x1 with alpha
    assert one.shape == (1, 1, 3)


# -- MIDI files -------------------------------------------------------------------------------
@st.composite
def midi_files(draw):
    mid = mido.MidiFile(type=draw(st.sampled_from([0, 1])), ticks_per_beat=draw(st.sampled_from([1, 96, 480, 32767])))
    for _ in range(1 if mid.type == 0 else draw(st.integers(1, 3))):
        track = mido.MidiTrack()
        for _ in range(draw(st.integers(0, 30))):
            kind = draw(st.sampled_from(["on", "off", "tempo", "ts", "pc", "cc"]))
            dt = draw(st.integers(0, 2000))
            ch = draw(st.integers(0, 15))
            if kind == "on":
                track.append(mido.Message("note_on", channel=ch, note=draw(st.integers(0, 127)),
                                          velocity=draw(st.integers(0, 127)), time=dt))
            elif kind == "off":
                track.append(mido.Message("note_off", channel=ch, note=draw(st.integers(0, 127)), time=dt))
            elif kind == "tempo":
                track.append(mido.MetaMessage("set_tempo", tempo=draw(st.integers(1, 0xFFFFFF)), time=dt))
            elif kind == "ts":
                track.append(mido.MetaMessage("time_signature", numerator=draw(st.integers(1, 255)),
                                              denominator=2 ** draw(st.integers(0, 6)), time=dt))
            elif kind == "pc":
                track.append(mido.Message("program_change", channel=ch, program=draw(st.integers(0, 127)), time=dt))
            else:
                track.append(mido.Message("control_change", channel=ch, control=draw(st.integers(0, 127)), time=dt))
        mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    data = buf.getvalue()
    abuse = draw(st.sampled_from(["none", "chunk_length", "running_status", "header", "huge_delta", "tracks"]))
    b = bytearray(data)
    trk = data.find(b"MTrk")
    if abuse == "chunk_length" and trk >= 0:  # an MTrk length longer or shorter than the data
        b[trk + 4:trk + 8] = struct.pack(">I", draw(st.sampled_from([0, 1, 3, 0x7FFFFFFF, 0xFFFFFFFF])))
    elif abuse == "running_status" and trk >= 0:  # data bytes where a status byte must be
        at = trk + 8
        b[at:at] = bytes([0x00]) + draw(st.binary(min_size=1, max_size=12, ).map(lambda x: bytes(v & 0x7F for v in x)))
    elif abuse == "header":
        b[8:14] = struct.pack(">HHH", draw(st.sampled_from([0, 1, 2, 3, 0xFFFF])), draw(st.sampled_from([0, 1, 0xFFFF])),
                              draw(st.sampled_from([0, 1, 0x8000 | 0x1978, 0xE250, 0xFFFF])))
    elif abuse == "huge_delta" and trk >= 0:
        at = trk + 8
        b[at:at] = b"\xff\xff\xff\x7f\x90\x3c\x40"  # the largest delta time, then a note
        b[trk + 4:trk + 8] = struct.pack(">I", struct.unpack(">I", bytes(b[trk + 4:trk + 8]))[0] + 7)
    elif abuse == "tracks":
        b[10:12] = struct.pack(">H", draw(st.sampled_from([0, 2, 1000, 0xFFFF])))
    return bytes(b)


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer()


@fuzz(500)
@given(data=st.data())
def test_midi_files_read_or_give_one_clear_line(tokenizer, tmp_path_factory, data):
    raw = mutate(data.draw(midi_files()), data.draw)
    path = tmp_path_factory.getbasetemp() / "fuzz.mid"
    path.write_bytes(raw)
    handled_or_one_line(tokenizer.encode, raw, errors=(MidiReadError,))  # engine.music.tokenizer: symusic + MidiTok
    handled_or_one_line(tokenizer.encode, path, errors=(MidiReadError,))
    handled_or_one_line(read_midi_notes, path, errors=(MidiReadError,))  # engine.music.notes: mido
    row = handled_or_one_line(analyze_file, path, errors=())  # moodroll metrics: a row, never raises
    assert "file" in row and ("error" not in row or "\n" not in row["error"])


def test_known_bad_midi_files(tmp_path, tokenizer):
    cases = {"empty.mid": b"", "header.mid": b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0",
             "short.mid": b"MThd\x00\x00", "text.mid": b"hello, this is not MIDI"}
    for name, raw in cases.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(MidiReadError, match=f"^cannot read MIDI file .*{name}|holds no piano notes"):
            tokenizer.encode(tmp_path / name)
        with pytest.raises(MidiReadError):
            read_midi_notes(tmp_path / name)
    with pytest.raises(MidiReadError, match="no such file"):
        read_midi_notes(tmp_path / "missing.mid")


def test_an_enormous_midi_file_is_read_without_hanging(tmp_path, tokenizer):
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    for i in range(30_000):  # 30,000 notes (300 KB; the POP909 songs have ~2,000)
        track += [mido.Message("note_on", note=36 + i % 60, velocity=80, time=60),
                  mido.Message("note_off", note=36 + i % 60, time=60)]
    mid.tracks.append(track)
    mid.save(tmp_path / "big.mid")
    ids = handled_or_one_line(tokenizer.encode, tmp_path / "big.mid", errors=(MidiReadError,))
    assert ids and len(ids) > 30_000


# -- bundles ----------------------------------------------------------------------------------
def _load_and_run(folder):
    """What `moodroll generate`/`live` do with a bundle before playing: load, verify, open the
    ONNX sessions, tokenizer, one picture and a few tokens."""
    from engine.model.generator import Condition, MusicGenerator
    from engine.model.runtime import Runtime

    b = load_bundle(folder)
    gen = MusicGenerator(b, runtime=Runtime(b, device="cpu", threads=1))
    tokens, va = gen.analyze_image(np.zeros((8, 8, 3), np.uint8))
    gen.set_condition(Condition(*va, tokens))
    return [gen.next_token() for _ in range(3)]


CONFIG_EDITS = [("decoder", "vocab_size", 7), ("decoder", "vocab_size", 10**6), ("image_encoder", "dim", 3),
                ("image_encoder", "image_tokens", 0), ("decoder", "n_layer", 99), ("decoder", "max_context", 1),
                ("image_encoder", "size", 17), ("decoder", "file", "../x.onnx"), ("image_encoder", "mean", "x"),
                ("decoder", "n_head", "many"), ("condition", "dim", -1), ("decoder", "d_model", 1.5)]


@fuzz(12)
@given(how=st.sampled_from(["delete", "flip", "config", "truncate", "swap"]), seed=st.integers(0, 1000),
       edit=st.sampled_from(CONFIG_EDITS))
def test_broken_bundles_give_one_clear_line(random_bundle, tmp_path_factory, how, seed, edit):
    folder = tmp_path_factory.mktemp("bundle")
    shutil.copytree(random_bundle, folder, dirs_exist_ok=True)
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    rng = np.random.default_rng(seed)
    victim = folder / files[rng.integers(len(files))]
    if how == "delete":
        victim.unlink()
    elif how == "flip":  # a wrong hash
        b = bytearray(victim.read_bytes())
        b[rng.integers(len(b))] ^= 0xFF
        victim.write_bytes(bytes(b))
    elif how == "truncate":  # cut short, manifest re-written: past the hash check, into the loaders
        victim.write_bytes(victim.read_bytes()[: rng.integers(victim.stat().st_size)])
        write_manifest(folder)
    elif how == "swap":  # two files exchanged, manifest re-written
        other = folder / files[rng.integers(len(files))]
        a, b = victim.read_bytes(), other.read_bytes()
        victim.write_bytes(b), other.write_bytes(a)
        write_manifest(folder)
    else:  # wrong shapes in config.json, manifest re-written
        cfg = json.loads((folder / "config.json").read_text())
        section, key, value = edit
        if isinstance(cfg.get(section), dict):
            cfg[section][key] = value
        (folder / "config.json").write_text(json.dumps(cfg))
        write_manifest(folder)
    handled_or_one_line(_load_and_run, folder, errors=(BundleError, ValueError))


def test_a_tampered_bundle_names_the_file(random_bundle, tmp_path):
    shutil.copytree(random_bundle, tmp_path / "b")
    cfg = tmp_path / "b" / "config.json"
    cfg.write_text(cfg.read_text().replace("}", " }", 1))
    with pytest.raises(BundleError, match=r"config\.json is corrupt \(SHA-256 does not match manifest\.json\)"):
        load_bundle(tmp_path / "b")
