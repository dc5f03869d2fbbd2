"""Takes: every played phrase (and every capture or variation) kept as a ``.mid`` in one folder.

A take is a Standard MIDI File a DAW can read as it is (drag it into Ableton or Reaper). Its
metadata (valence, arousal, key, tempo, bars, seconds, creation time, source) travels inside
the file, as one text meta event at tick 0 (``moodroll-take {json}``), so a take dragged
elsewhere, copied or backed up keeps it and there is no sidecar to get out of step. Files
without it (``moodroll generate`` output, a user's own MIDI dropped in the folder) are listed
too, their facts measured from the notes.

Nothing is ever half written: every file goes to a hidden temporary file in the takes folder
first and is renamed into place (:func:`write_atomic`), so a crash or ``kill -9`` leaves
either the whole take or none of it (plus at most a hidden ``.*.tmp`` that :meth:`list`
ignores and the next :class:`TakeStore` removes). A full disk raises :class:`TakeError` with
one line and leaves every earlier take as it was.

Thread-safe: the desktop app saves from a worker thread while the UI lists.
"""
from __future__ import annotations

import errno
import io
import json
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import mido

from engine.music.metrics import estimate_key, ticks_to_seconds
from engine.music.notes import Notes, notes_from_score
from engine.music.tokenizer import MidiReadError

from engine.takes.files import write_atomic

TAG = "moodroll-take "  # text meta event prefix carrying the JSON metadata
STALE_TMP_S = 600.0  # a hidden temporary file older than this is left over from a crash
_GENERATED = re.compile(r"moodroll: valence=([\d.]+) arousal=([\d.]+).*?source=([^;]*);.*?key=([^;]*);")


class TakeError(OSError):
    """A take that cannot be written or read; the message is one line for the user."""


@dataclass(frozen=True)
class TakeMeta:
    """What made a take and what it is. Every field may be unknown (None)."""

    valence: float | None = None
    arousal: float | None = None
    key: str | None = None  # "C minor" or a key signature name ("Cm")
    bpm: float | None = None
    bars: int | None = None
    seconds: float | None = None
    created: float | None = None  # Unix time
    source: str | None = None  # picture file name, "webcam", "VA", ...
    seed: int | None = None
    kind: str = "take"  # "take" (autosaved phrase), "capture", "variation", "import"

    @classmethod
    def from_dict(cls, d: dict) -> "TakeMeta":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


@dataclass(frozen=True)
class Take:
    """One take on disk: its file, its metadata and its notes (for the mini piano roll)."""

    path: Path
    meta: TakeMeta
    notes: Notes = field(compare=False, repr=False)

    # the metadata fields, flat, for the UI
    valence = property(lambda self: self.meta.valence)
    arousal = property(lambda self: self.meta.arousal)
    key = property(lambda self: self.meta.key)
    bpm = property(lambda self: self.meta.bpm)
    bars = property(lambda self: self.meta.bars)
    seconds = property(lambda self: self.meta.seconds)
    created = property(lambda self: self.meta.created)
    source = property(lambda self: self.meta.source)

    @property
    def name(self) -> str:
        return self.path.stem


def embed_meta(data: bytes, meta: TakeMeta) -> bytes:
    """MIDI file bytes with ``meta`` as a ``moodroll-take`` text event at tick 0 of the first
    track (an older one is replaced). Raises TakeError when ``data`` is not a MIDI file."""
    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except Exception as e:  # mido raises many kinds on bad bytes
        raise TakeError(f"not a MIDI file: {type(e).__name__}: {e}") from None
    if not midi.tracks:
        midi.tracks.append(mido.MidiTrack())
    first = midi.tracks[0]
    for i, msg in enumerate(list(first)):
        if msg.type == "text" and msg.text.startswith(TAG):
            if i + 1 < len(first):  # keep the timing of what followed it
                first[i + 1] = first[i + 1].copy(time=first[i + 1].time + msg.time)
            del first[i]
            break
    payload = {k: v for k, v in asdict(meta).items() if v is not None}
    first.insert(0, mido.MetaMessage("text", text=TAG + json.dumps(payload, sort_keys=True), time=0))
    buf = io.BytesIO()
    midi.save(file=buf)
    return buf.getvalue()


def read_meta(path: Path) -> tuple[TakeMeta, Notes]:
    """A take's metadata and notes; facts the file does not carry are measured from its notes.
    Raises :class:`engine.music.tokenizer.MidiReadError` (one line) for a file that is not MIDI.

    Fast enough for a folder of hundreds of takes: the notes come from symusic (C++), the
    metadata straight from the bytes; only files without it are parsed again by mido."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MidiReadError(f"cannot read MIDI file {path}: {e.strerror or e}") from None
    notes = _notes(path, data)
    stored = _tagged(data)
    if stored is None:
        stored = _untagged(data)
    meta = TakeMeta.from_dict(stored) if isinstance(stored, dict) else TakeMeta()
    return _complete(meta, notes, path, stored.get("key_signature")), notes


def _notes(path: Path, data: bytes) -> Notes:
    from symusic import Score

    if not data.startswith(b"MThd"):
        raise MidiReadError(f"cannot read MIDI file {path}: not a Standard MIDI File")
    try:
        return notes_from_score(Score.from_midi(data))
    except Exception as e:  # symusic raises RuntimeError / ValueError on broken files
        raise MidiReadError(f"cannot read MIDI file {path}: {type(e).__name__}: {e}") from None


def _tagged(data: bytes) -> dict | None:
    """The ``moodroll-take`` JSON of the first text event that carries it, found in the bytes:
    ``FF 01 <length> moodroll-take {...}`` (None when there is none or it does not parse)."""
    tag = TAG.encode()
    i = data.find(tag)
    while i > 0:
        for k in (1, 2, 3):  # the length is a variable-length quantity of 1..3 bytes
            if i - k - 2 >= 0 and data[i - k - 2:i - k] == b"\xff\x01":
                n = 0
                for b in data[i - k:i]:
                    n = (n << 7) | (b & 0x7F)
                try:
                    d = json.loads(data[i + len(tag):i + n].decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    continue
                if isinstance(d, dict):
                    return d
        i = data.find(tag, i + 1)
    return None


def _untagged(data: bytes) -> dict:
    """What a file without our metadata says: ``moodroll generate``'s text event, a key signature."""
    stored: dict = {}
    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
        for msg in (midi.tracks[0] if midi.tracks else []):
            if msg.type == "text" and (m := _GENERATED.match(msg.text)):
                stored.update(valence=float(m[1]), arousal=float(m[2]), kind="import",
                              source=None if m[3] == "none" else m[3], key=None if m[4] == "free" else m[4])
            if msg.type == "key_signature" and "key" not in stored:
                stored["key_signature"] = msg.key
    except (ValueError, TypeError, OSError, EOFError, KeyError, IndexError):
        pass
    return stored


def _complete(meta: TakeMeta, notes: Notes, path: Path, key_signature: str | None) -> TakeMeta:
    """Fill what is unknown from the notes (tempo, length, bars, key) and the file (time)."""
    upd: dict = {}
    ts = notes.time_signatures
    beats_per_bar = ts[0, 1] * 4.0 / ts[0, 2] if len(ts) else 4.0
    if meta.bpm is None:
        upd["bpm"] = float(notes.tempos[0, 1]) if len(notes.tempos) else 120.0
    if meta.seconds is None:
        upd["seconds"] = float(ticks_to_seconds(notes, [notes.length])[0])
    if meta.bars is None:
        upd["bars"] = max(1, round(notes.length / notes.resolution / beats_per_bar)) if notes.length else 0
    if meta.key is None:
        if key_signature:
            upd["key"] = key_label(key_signature)
        elif len(notes):
            est = estimate_key(notes)
            upd["key"] = est.name if est else None
    if meta.created is None:
        try:
            upd["created"] = path.stat().st_mtime
        except OSError:
            upd["created"] = 0.0
    return TakeMeta(**{**asdict(meta), **upd}) if upd else meta


def key_label(signature: str | None) -> str | None:
    """A MIDI key signature name (mido spelling, ``"Cm"``, ``"F#"``) as people write it: ``"C minor"``."""
    if not signature:
        return None
    return f"{signature[:-1]} minor" if signature.endswith("m") else f"{signature} major"


def _one_line(e: OSError, path: Path) -> str:
    if e.errno == errno.ENOSPC:
        why = "the disk is full"
    elif e.errno == errno.EFBIG:
        why = "the file is larger than this system allows"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "no permission to write there"
    else:
        why = e.strerror or str(e)
    return f"cannot save take {path.name} in {path.parent}: {why}; earlier takes are kept"


class TakeStore:
    """The takes folder. ``add_*`` write a take atomically and return it; :meth:`list` reads them."""

    def __init__(self, folder, clock: Callable[[], float] = time.time):
        self.folder = Path(folder).expanduser()
        self.clock = clock
        self._lock = threading.Lock()
        self._cache: dict[Path, tuple[tuple[float, int], Take]] = {}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TakeError(f"cannot use takes folder {self.folder}: {e.strerror or e}") from None
        self.remove_stale_temporaries()

    # -- names -------------------------------------------------------------------------------
    def new_path(self, prefix: str = "take") -> Path:
        """A new, unused ``<prefix>-YYYYmmdd-HHMMSS[-n].mid`` in the folder (not created)."""
        prefix = re.sub(r"[^\w.-]+", "-", prefix).strip("-.") or "take"
        stamp = datetime.fromtimestamp(self.clock()).strftime("%Y%m%d-%H%M%S")
        with self._lock:
            n = 1
            while True:
                path = self.folder / (f"{prefix}-{stamp}.mid" if n == 1 else f"{prefix}-{stamp}-{n}.mid")
                if not path.exists():
                    return path
                n += 1

    # -- adding ------------------------------------------------------------------------------
    def add_midi_bytes(self, data: bytes, meta: TakeMeta | dict | None = None, prefix: str | None = None,
                       path: Path | None = None) -> Take:
        """Write MIDI bytes as a new take (metadata embedded); returns it. TakeError on failure."""
        meta = _as_meta(meta)
        if meta.created is None:
            meta = TakeMeta(**{**asdict(meta), "created": self.clock()})
        path = Path(path) if path is not None else self.new_path(prefix or meta.kind)
        try:  # measure what is unknown (key, tempo, length) once, now, and keep it in the file
            sig = _untagged(data).get("key_signature") if meta.key is None else None
            meta = _complete(meta, _notes(path, data), path, sig)
        except MidiReadError as e:
            raise TakeError(f"not a MIDI file: {e}") from None
        data = embed_meta(data, meta)
        try:
            write_atomic(path, data)
        except OSError as e:
            raise TakeError(_one_line(e, path)) from None
        return self._load(path)

    def add_file(self, path, meta: TakeMeta | dict | None = None, prefix: str | None = None) -> Take:
        """Copy a MIDI file into the folder as a new take (the original is left alone)."""
        src = Path(path)
        try:
            data = src.read_bytes()
        except OSError as e:
            raise TakeError(f"cannot read {src}: {e.strerror or e}") from None
        return self.add_midi_bytes(data, meta, prefix=prefix or src.stem)

    def capture(self, stream, bars: int = 8, meta: TakeMeta | dict | None = None, prefix: str = "capture") -> Take:
        """The last ``bars`` complete bars a :class:`engine.live.decoder.LiveStream` played, as a take.
        Raises :class:`engine.live.player.CaptureError` when nothing has been played yet."""
        meta = _as_meta(meta)
        final = self.new_path(prefix)
        scratch = self.folder / f".{final.stem}.capture.tmp"  # hidden: never listed
        from engine.live.player import CaptureError

        try:
            stream.capture(scratch, bars)
            data = scratch.read_bytes()
        except OSError as e:
            raise TakeError(_one_line(e, final)) from None
        except CaptureError as e:
            if not str(e).startswith("cannot write"):
                raise  # nothing played yet: the stream's own one line
            why = str(e).rsplit(": ", 1)[-1]
            raise TakeError(f"cannot save take {final.name} in {self.folder}: {why}; earlier takes are kept") from None
        finally:
            scratch.unlink(missing_ok=True)
        played = list(stream.played_bars)
        got = min(bars, len(played) - 1)
        bpm = meta.bpm if meta.bpm is not None else (stream.bpm or None)
        meta = TakeMeta(**{**asdict(meta), "bars": got, "bpm": bpm,
                           "kind": meta.kind if meta.kind != "take" or prefix == "take" else "capture"})
        return self.add_midi_bytes(data, meta, path=final)

    # -- reading -----------------------------------------------------------------------------
    def _load(self, path: Path) -> Take:
        st = path.stat()
        sig = (st.st_mtime, st.st_size)
        with self._lock:
            hit = self._cache.get(path)
            if hit and hit[0] == sig:
                return hit[1]
        meta, notes = read_meta(path)
        take = Take(path, meta, notes)
        with self._lock:
            self._cache[path] = (sig, take)
        return take

    def get(self, path) -> Take:
        """The take at ``path``; TakeError when it is missing or not MIDI."""
        path = Path(path)
        try:
            return self._load(path)
        except (OSError, MidiReadError) as e:
            raise TakeError(str(e) if isinstance(e, MidiReadError) else f"cannot read take {path}: {e.strerror or e}") from None

    def list(self) -> list[Take]:
        """Every readable take in the folder, newest first (unreadable files are skipped)."""
        takes = []
        try:
            paths = [p for p in self.folder.iterdir()
                     if p.suffix.lower() in (".mid", ".midi") and not p.name.startswith(".")]
        except OSError:
            return []
        for p in paths:
            try:
                takes.append(self._load(p))
            except (OSError, MidiReadError, ValueError):
                continue
        with self._lock:  # forget files that went away
            live = set(paths)
            for p in [p for p in self._cache if p not in live]:
                del self._cache[p]
        takes.sort(key=_newest_first_key, reverse=True)
        return takes

    def delete(self, path) -> None:
        """Remove a take's file for good (the desktop moves it to the system trash instead)."""
        path = Path(path)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise TakeError(f"cannot delete {path.name}: {e.strerror or e}") from None
        with self._lock:
            self._cache.pop(path, None)

    def remove_stale_temporaries(self) -> int:
        """Delete hidden ``.*.tmp`` files left by a crash (older than STALE_TMP_S); returns how many."""
        now, n = self.clock(), 0
        try:
            for p in self.folder.glob(".*.tmp"):
                try:
                    if now - p.stat().st_mtime > STALE_TMP_S:
                        p.unlink()
                        n += 1
                except OSError:
                    continue
        except OSError:
            pass
        return n


def _newest_first_key(take: Take) -> tuple:
    """Creation time, then the ``-n`` a name got when several takes shared a second."""
    m = re.search(r"-(\d+)$", take.path.stem)
    n = int(m[1]) if m and len(m[1]) < 4 else 1  # not the HHMMSS stamp itself
    return (take.meta.created or 0.0, n, take.path.name)


def _as_meta(meta) -> TakeMeta:
    if meta is None:
        return TakeMeta()
    if isinstance(meta, TakeMeta):
        return meta
    if isinstance(meta, dict):
        return TakeMeta.from_dict(meta)
    raise TypeError(f"meta must be a TakeMeta or a dict, got {type(meta).__name__}")


class PhraseAutosave:
    """Autosave what a :class:`engine.live.decoder.LiveStream` plays, phrase by phrase.

    Call :meth:`poll` now and then (any thread but the playback one; it writes a file): each
    time ``phrase_bars`` more bars have been played it saves them as one take. :meth:`flush`
    (at Stop, at a port loss, at exit) saves what is left, one bar or more. ``meta`` returns the
    metadata of the moment (the VA, key and source the app is playing)."""

    def __init__(self, store: TakeStore, stream, phrase_bars: int = 8,
                 meta: Callable[[], TakeMeta | dict | None] = lambda: None):
        if phrase_bars < 1:
            raise ValueError(f"phrase_bars must be at least 1, got {phrase_bars}")
        self.store, self.stream, self.phrase_bars, self.meta = store, stream, phrase_bars, meta
        self._saved_beat = float("-inf")  # end beat of the last saved phrase
        self._lock = threading.Lock()
        self.saved: list[Take] = []

    def pending_bars(self) -> int:
        """Complete bars played and not yet saved."""
        played = list(self.stream.played_bars)
        if len(played) < 2:
            return 0
        return sum(1 for _, beat in played[1:] if beat > self._saved_beat)

    def poll(self) -> Take | None:
        """Save a phrase if ``phrase_bars`` new bars are complete; the new take or None."""
        return self._save(self.phrase_bars)

    def flush(self) -> Take | None:
        """Save every complete bar not saved yet (None when there is none)."""
        return self._save(1)

    def _save(self, at_least: int) -> Take | None:
        with self._lock:
            n = self.pending_bars()
            if n < at_least:
                return None
            end = list(self.stream.played_bars)[-1][1]
            meta = _as_meta(self.meta())
            meta = TakeMeta(**{**asdict(meta), "kind": "take"})
            take = self.store.capture(self.stream, n, meta, prefix="take")
            self._saved_beat = end
            self.saved.append(take)
            return take
