"""The data layer: the four shared data sets as typed records, the paper's image<->music
pairing, seeded splits, and cached token ids.

Plain numpy, no torch, so it imports fast (a torch ``Dataset`` wrapper lives elsewhere).

Data sets (``engine.paths.shared_data_dir()``, see its README.md):

- ``oasis/``  738 photographs, ``oasis.csv`` (VA means on 1-7)        -> :func:`load_oasis`
- ``eimg/``   2,700 15-s piano clips, ``eimg.csv`` (VA means on 1-9)   -> :func:`load_eimg`
- ``vgmidi/`` 150 piano pieces, ``vgmidi.csv`` (VA signs, -1/+1)       -> :func:`load_vgmidi`
- ``pop909/`` 909 pop songs, MIDI only, no labels                      -> :func:`load_pop909`

Every VA value a record carries is on the paper's 1-9 scale, mapped by
``engine.emotion.va.to_paper_scale`` (the one normalisation; nothing is re-implemented here).

Pairing (Kundu, Singh & Iwahori, 2024, Sec. 3): an image x and a clip y are paired by the
similarity s = ((v_x - v_y)^2 + (a_x - a_y)^2)^(-1/2); every clip gets its most similar
image (:func:`pair_clips_to_images`). :func:`paired_splits` builds train/test/val pairs so
that test and val clips only meet OASIS images that image->VA training never saw.

Reading files: :func:`read_tokens` (MIDI -> token ids, cached under ``runs/cache/tokens``)
and :func:`check_images` skip unreadable files with a :class:`DataWarning` and count them
in a :class:`SkipReport`. On the shared data (Nov 2026) nothing is skipped: 738/738
pictures, 2700/2700 EIMG, 150/150 VGMIDI, 909/909 POP909 files read.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence, Union

import numpy as np

from engine.paths import REPO_ROOT, shared_data_dir
from engine.emotion.va import to_paper_scale

PathLike = Union[str, Path]

# The paper's split of its 3,000 EIMG clips: 2884 train / 100 test / 16 val.
PAPER_SPLIT = {"train": 2884, "test": 100, "val": 16}
PAPER_TOTAL = 3000
DEFAULT_CACHE_DIR = REPO_ROOT / "runs" / "cache" / "tokens"
TIE_EPS = 1e-9  # squared distances closer than this count as equal (a tie) in the pairing


class DataWarning(UserWarning):
    """A row or file of a data set was skipped (the message says which and why)."""


# ---------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageRecord:
    """One OASIS picture; valence/arousal are human rating means on the paper's 1-9 scale."""

    id: str
    path: Path
    valence: float
    arousal: float
    theme: str = ""     # e.g. "Acorns 2"
    category: str = ""  # Person / Animal / Object / Scenery

    @property
    def va(self) -> tuple[float, float]:
        return (self.valence, self.arousal)


@dataclass(frozen=True)
class MidiRecord:
    """One MIDI file of a data set; valence/arousal on the 1-9 scale, or None when unlabelled."""

    id: str
    path: Path
    dataset: str  # "eimg" | "vgmidi" | "pop909" | anything a caller builds
    valence: float | None = None
    arousal: float | None = None

    @property
    def va(self) -> tuple[float, float] | None:
        return None if self.valence is None or self.arousal is None else (self.valence, self.arousal)


# ---------------------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------------------
def _dataset_dir(root: PathLike | None, name: str, marker: str) -> Path:
    """``root/name``; ``root`` may also be the data set's own folder (holding ``marker``)."""
    root = shared_data_dir() if root is None else Path(root)
    if (root / marker).exists() and not (root / name).is_dir():
        return root
    return root / name


def _require(folder: Path, label: str, needed: Sequence[str]) -> None:
    missing = [folder / n for n in needed if not (folder / n).exists()]
    if missing:
        raise FileNotFoundError(
            f"{label} not found at {folder} (expected {' and '.join(needed)}): "
            f"missing {', '.join(str(m) for m in missing)}")


def _read_csv(path: Path, columns: Sequence[str]) -> list[tuple[int, dict]]:
    """(line number, row) pairs; a clear error when the header lacks a needed column."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            lost = [c for c in columns if c not in header]
            if lost:
                raise ValueError(f"{path}: missing column(s) {', '.join(lost)}; header is {header}")
            return [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"cannot read {path}: {e}") from None


def _warn_skipped(csv_path: Path, skipped: list[str]) -> None:
    if skipped:
        shown = "; ".join(skipped[:5]) + (f"; ... ({len(skipped) - 5} more)" if len(skipped) > 5 else "")
        warnings.warn(f"{csv_path}: skipped {len(skipped)} row(s): {shown}", DataWarning, stacklevel=3)


def _number(row: dict, col: str) -> float:
    x = float(row[col])
    if not math.isfinite(x):
        raise ValueError(f"{col}={row[col]!r} is not a finite number")
    return x


def _labelled_rows(csv_path: Path, folder: Path, columns: list[str], v_col: str, a_col: str, skipped: list):
    """Yield (row, path, valence, arousal) of the CSV rows with numeric labels and an existing
    file; every other row is appended to ``skipped`` with its reason."""
    for line, row in _read_csv(csv_path, columns):
        try:
            v, a = _number(row, v_col), _number(row, a_col)
        except (TypeError, ValueError) as e:
            skipped.append(f"line {line}: {e}")
            continue
        path = folder / row["file"]
        if not path.is_file():
            skipped.append(f"line {line}: no file {path}")
            continue
        yield row, path, v, a


def load_oasis(root: PathLike | None = None) -> list[ImageRecord]:
    """OASIS pictures with their valence/arousal rating means mapped from 1-7 to 1-9.

    Rows whose image file is missing or whose ratings are not numbers are skipped with a
    :class:`DataWarning` that counts them. Records come in CSV order.
    """
    folder = _dataset_dir(root, "oasis", "oasis.csv")
    _require(folder, "OASIS", ["oasis.csv", "images/"])
    csv_path = folder / "oasis.csv"
    out, skipped = [], []
    columns = ["id", "valence_mean", "arousal_mean", "file"]
    for row, path, v, a in _labelled_rows(csv_path, folder, columns, "valence_mean", "arousal_mean", skipped):
        out.append(ImageRecord(id=row["id"], path=path,
                               valence=to_paper_scale(v, "oasis"), arousal=to_paper_scale(a, "oasis"),
                               theme=row.get("theme") or "", category=row.get("category") or ""))
    _warn_skipped(csv_path, skipped)
    return out


def load_eimg(root: PathLike | None = None) -> list[MidiRecord]:
    """EIMG's 15-s piano clips with the mean of their six annotators' valence/arousal (1-9).

    The id is the file's stem (``"0001"``). Rows with a missing file or non-numeric labels
    are skipped with a counted :class:`DataWarning`.
    """
    folder = _dataset_dir(root, "eimg", "eimg.csv")
    _require(folder, "EIMG", ["eimg.csv", "midi/"])
    csv_path = folder / "eimg.csv"
    out, skipped = [], []
    columns = ["file", "valence_mean", "arousal_mean"]
    for row, path, v, a in _labelled_rows(csv_path, folder, columns, "valence_mean", "arousal_mean", skipped):
        out.append(MidiRecord(id=path.stem, path=path, dataset="eimg",
                              valence=to_paper_scale(v, "eimg"), arousal=to_paper_scale(a, "eimg")))
    _warn_skipped(csv_path, skipped)
    return out


def load_vgmidi(root: PathLike | None = None) -> list[MidiRecord]:
    """VGMIDI's labelled piano pieces, valence/arousal signs (-1/+1) mapped to 1 / 9.

    ``vgmidi.csv`` lists a few files more than once (154 rows for 150 files), sometimes
    with different labels. We keep one record per file, in order of first appearance, with
    the MEAN of its rows' labels mapped to 1-9: agreeing rows give 1 or 9 as usual, a
    1:1 disagreement gives the neutral 5, a 2:1 one 3.67 or 6.33. (Averaging keeps every
    annotation; keeping duplicates would let one file land in two splits.)
    """
    folder = _dataset_dir(root, "vgmidi", "vgmidi.csv")
    _require(folder, "VGMIDI", ["vgmidi.csv", "midi/"])
    csv_path = folder / "vgmidi.csv"
    labels: dict[str, list[tuple[float, float]]] = {}
    paths: dict[str, Path] = {}
    skipped = []
    columns = ["id", "valence", "arousal", "file"]
    for row, path, v, a in _labelled_rows(csv_path, folder, columns, "valence", "arousal", skipped):
        key = str(path)
        labels.setdefault(key, []).append((v, a))
        paths[key] = path
    _warn_skipped(csv_path, skipped)
    out = []
    for key, va in labels.items():
        v, a = np.mean(np.asarray(va, dtype=np.float64), axis=0)
        out.append(MidiRecord(id=paths[key].stem, path=paths[key], dataset="vgmidi",
                              valence=to_paper_scale(v, "vgmidi"), arousal=to_paper_scale(a, "vgmidi")))
    return out


def load_pop909(root: PathLike | None = None) -> list[MidiRecord]:
    """POP909's songs (``midi/*.mid``, sorted by name); no emotion labels (valence/arousal None)."""
    folder = _dataset_dir(root, "pop909", "midi")
    _require(folder, "POP909", ["midi/"])
    files = sorted(p for p in (folder / "midi").iterdir()
                   if p.is_file() and p.suffix.lower() in (".mid", ".midi"))
    return [MidiRecord(id=p.stem, path=p, dataset="pop909") for p in files]


# ---------------------------------------------------------------------------------------
# Pairing
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    """A clip and its most similar image; ``similarity`` is the paper's s (inf at distance 0)."""

    clip: MidiRecord
    image: ImageRecord
    similarity: float


def similarity(va_x, va_y) -> float:
    """The paper's s = ((v_x - v_y)^2 + (a_x - a_y)^2)^(-1/2); ``inf`` when the points coincide."""
    (vx, ax), (vy, ay) = va_x, va_y
    d = math.hypot(float(vx) - float(vy), float(ax) - float(ay))
    return math.inf if d == 0.0 else 1.0 / d


def pair_clips_to_images(clips: Sequence[MidiRecord], images: Sequence[ImageRecord]) -> list[Pair]:
    """Pair every labelled clip with its most similar image (the paper's pairing).

    - Maximising s is minimising the VA distance; done for all clips at once (numpy).
    - Reuse: an image may serve any number of clips (the paper paired 3,000 clips with its
      4,029 images the same way), and an image may serve none.
    - Ties: images whose squared distance to the clip is within ``TIE_EPS`` (1e-9) of the
      smallest are equally similar; the one with the smallest ``id`` (string order) wins.
      This includes distance 0 (s = inf). The result does not depend on the input order.
    - Output: one Pair per clip, in the clips' order. Clips without labels raise ValueError.
    """
    clips, images = list(clips), sorted(images, key=lambda r: r.id)
    if not images:
        raise ValueError("pair_clips_to_images: no images to pair with")
    if not clips:
        return []
    unlabelled = [c.id for c in clips if c.va is None]
    if unlabelled:
        raise ValueError(f"pair_clips_to_images: {len(unlabelled)} clip(s) have no VA label, "
                         f"e.g. {unlabelled[:3]}")
    best, d2min, _ = _nearest(np.array([c.va for c in clips], np.float64),
                              np.array([i.va for i in images], np.float64))
    return [Pair(clip=c, image=images[j], similarity=_s_from_d2(d2))
            for c, j, d2 in zip(clips, best.tolist(), d2min.tolist())]


def _nearest(clip_va: np.ndarray, image_va: np.ndarray):
    """Index of each clip's nearest image (first, i.e. smallest id, among ties), its squared
    distance, and how many images tie for nearest."""
    d2 = ((clip_va[:, None, :] - image_va[None, :, :]) ** 2).sum(-1)  # (clips, images)
    d2min = d2.min(axis=1)
    near = d2 <= d2min[:, None] + TIE_EPS
    return near.argmax(axis=1), d2min, near.sum(axis=1)


def _s_from_d2(d2: float) -> float:
    return math.inf if d2 == 0.0 else 1.0 / math.sqrt(d2)


def pairing_stats(pairs: Sequence[Pair], images: Sequence[ImageRecord] | None = None) -> dict:
    """Summary numbers of a pairing: distinct images, similarity, ties (needs ``images``)."""
    s = np.array([p.similarity for p in pairs], np.float64)
    finite = s[np.isfinite(s)]
    out = {"pairs": len(pairs), "distinct_images": len({p.image.id for p in pairs}),
           "similarity_mean": float(finite.mean()) if finite.size else float("nan"),
           "similarity_median": float(np.median(finite)) if finite.size else float("nan"),
           "distance_mean": float(np.mean(1.0 / s)) if s.size else float("nan"),
           "exact_matches": int((~np.isfinite(s)).sum())}
    if images is not None and pairs:
        imgs = sorted(images, key=lambda r: r.id)
        _, _, n_near = _nearest(np.array([p.clip.va for p in pairs], np.float64),
                                np.array([i.va for i in imgs], np.float64))
        out["ties"] = int((n_near > 1).sum())
    return out


# ---------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Splits:
    train: list
    test: list
    val: list

    def as_dict(self) -> dict:
        return {"train": self.train, "test": self.test, "val": self.val}


def _key(r) -> tuple:
    return (getattr(r, "dataset", ""), getattr(r, "id", ""), str(getattr(r, "path", r)))


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def split_sizes(n: int) -> dict:
    """The paper's 2884/100/16-of-3000 proportions scaled to ``n`` records.

    test = round(n * 100/3000), val = round(n * 16/3000) (halves round up), each at least 1
    when n >= 3; train gets the rest. For EIMG's 2,700 clips: train 2596, test 90, val 14.
    """
    test = _round_half_up(n * PAPER_SPLIT["test"] / PAPER_TOTAL)
    val = _round_half_up(n * PAPER_SPLIT["val"] / PAPER_TOTAL)
    if n >= 3:
        test, val = max(test, 1), max(val, 1)
    return {"train": n - test - val, "test": test, "val": val}


def split_eimg(records: Sequence, seed: int = 0) -> Splits:
    """Seeded train/test/val split in the paper's proportions (see :func:`split_sizes`).

    The records are first sorted by (dataset, id, path), so the split depends only on the
    set of records and the seed, not on the input order. Each part is returned sorted.
    Works for any records (VGMIDI too), not only EIMG.
    """
    recs = sorted(records, key=_key)
    sizes = split_sizes(len(recs))
    order = np.random.default_rng(seed).permutation(len(recs))
    test_idx = order[:sizes["test"]]
    val_idx = order[sizes["test"]:sizes["test"] + sizes["val"]]
    train_idx = order[sizes["test"] + sizes["val"]:]
    pick = lambda idx: [recs[i] for i in sorted(idx.tolist())]  # noqa: E731
    return Splits(train=pick(train_idx), test=pick(test_idx), val=pick(val_idx))


def split_oasis(records: Sequence[ImageRecord], seed: int = 0, holdout: float = 0.2) -> tuple[list, list]:
    """Seeded (train, hold-out) split of OASIS for image->VA evaluation.

    The hold-out has round(n * holdout) pictures (halves round up), stratified by category
    (Person/Animal/Object/Scenery): each category gives floor(n_category * holdout), and the
    few left over go to the categories with the largest remainders, so the hold-out holds
    the same kinds of pictures as the whole. For the 738 shared pictures and holdout=0.2:
    590 train / 148 hold-out. Independent of input order; both parts sorted by id.
    """
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout must be in [0, 1), got {holdout}")
    recs = sorted(records, key=_key)
    cats = sorted({r.category for r in recs})
    members = {c: np.array([i for i, r in enumerate(recs) if r.category == c]) for c in cats}
    # hold-out size: round(n * holdout), shared out over categories by largest remainder
    quota = {c: len(members[c]) * holdout for c in cats}
    take = {c: int(math.floor(q)) for c, q in quota.items()}
    extra = _round_half_up(len(recs) * holdout) - sum(take.values())
    for c in sorted(cats, key=lambda c: (-(quota[c] - take[c]), c))[:max(extra, 0)]:
        take[c] += 1
    rng = np.random.default_rng(seed)
    held: set[int] = set()
    for c in cats:
        held.update(rng.permutation(members[c])[:take[c]].tolist())
    train = [r for i, r in enumerate(recs) if i not in held]
    test = [r for i, r in enumerate(recs) if i in held]
    return train, test


def paired_splits(seed: int = 0, root: PathLike | None = None, holdout: float = 0.2) -> dict:
    """The image<->music training data: ``{"train", "test", "val"}`` lists of :class:`Pair`.

    1. EIMG clips are split by :func:`split_eimg` (2596 / 90 / 14 of 2,700 at any seed);
    2. OASIS pictures by :func:`split_oasis` (590 train / 148 hold-out at holdout=0.2);
    3. train clips are paired (most similar, :func:`pair_clips_to_images`) only with OASIS
       TRAIN pictures, test and val clips only with HOLD-OUT pictures.

    So an image-to-music evaluation on test/val feeds pictures that neither the image->VA
    model (trained on the OASIS train split) nor the paired training ever saw. This differs
    from the paper, which paired all clips with all images; the cost is that test/val clips
    choose among fewer pictures: at seed 0 the mean VA distance to the paired picture is
    0.38 (train), 0.58 (test), 0.45 (val), against 0.37 when all clips meet all 738
    pictures (see :func:`pairing_stats`). The same ``seed`` drives both splits.
    """
    clips, images = load_eimg(root), load_oasis(root)
    s = split_eimg(clips, seed=seed)
    img_train, img_hold = split_oasis(images, seed=seed, holdout=holdout)
    return {"train": pair_clips_to_images(s.train, img_train),
            "test": pair_clips_to_images(s.test, img_hold),
            "val": pair_clips_to_images(s.val, img_hold)}


# ---------------------------------------------------------------------------------------
# Token ids, cached
# ---------------------------------------------------------------------------------------
@dataclass
class SkipReport:
    """What :func:`read_tokens` / :func:`check_images` could not use.

    ``skipped``: (path, reason) pairs; ``count``: how many; ``kept``: the records that were
    used, in order; ``summary`` (also ``str(report)``): one line for logs.
    """

    total: int = 0
    skipped: list = field(default_factory=list)
    kept: list = field(default_factory=list)  # the records whose tokens were returned, in order
    cache_hits: int = 0

    @property
    def count(self) -> int:
        return len(self.skipped)

    @property
    def summary(self) -> str:
        s = f"read {self.total - self.count} of {self.total} files, skipped {self.count}"
        if self.skipped:
            s += ": " + "; ".join(f"{Path(p).name} ({r})" for p, r in self.skipped[:5])
            if self.count > 5:
                s += f"; ... ({self.count - 5} more)"
        return s

    def __str__(self) -> str:
        return self.summary


def tokenizer_hash(tokenizer) -> str:
    """A short hash of a tokenizer's vocabulary configuration (and the MidiTok version)."""
    from importlib.metadata import version
    blob = json.dumps({"config": tokenizer.config, "miditok": version("miditok"),
                       "vocab_size": tokenizer.vocab_size}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _cache_file(cache_dir: Path, path: Path) -> Path:
    st = path.stat()
    key = f"{path.resolve()}|{st.st_mtime_ns}|{st.st_size}"
    return cache_dir / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".npz")


def _load_cached(f: Path) -> np.ndarray | None:
    try:
        with np.load(f, allow_pickle=False) as z:
            return np.asarray(z["ids"], dtype=np.int32)
    except (OSError, ValueError, KeyError, EOFError):
        return None


def _save_cached(f: Path, ids: np.ndarray) -> None:
    tmp = f.with_name(f"{f.stem}.{os.getpid()}.tmp.npz")
    try:
        np.savez(tmp, ids=ids)
        os.replace(tmp, f)
    except OSError:  # a read-only cache must not stop training
        tmp.unlink(missing_ok=True)


def read_tokens(records: Iterable, tokenizer, cache_dir: PathLike | None = None,
                cache: bool = True, progress: bool = False) -> tuple[list[np.ndarray], SkipReport]:
    """Token ids (``tokenizer.encode``, int32) of each record's MIDI file.

    ``records`` are MidiRecords (or anything with ``.path``, or plain paths). Ids are cached
    as ``<cache_dir>/<tokenizer hash>/<hash of path, mtime, size>.npz`` (default cache_dir
    ``runs/cache/tokens``; ``cache=False`` turns it off); editing a file or the vocabulary
    invalidates its entry. Files that cannot be read, or hold no notes, are skipped with a
    :class:`DataWarning` and counted in the returned :class:`SkipReport`, whose ``kept``
    lists the records of the returned arrays, in order.
    """
    from engine.music.tokenizer import MidiReadError

    records = list(records)
    report = SkipReport(total=len(records))
    folder = (Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR) / tokenizer_hash(tokenizer)
    if cache:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            cache = False
    pitch_ids = np.array(sorted(tokenizer.groups.pitch), np.int32)
    it = records
    if progress:
        from tqdm import tqdm
        it = tqdm(records, desc="tokenising", unit="file")
    out: list[np.ndarray] = []
    for rec in it:
        path = Path(getattr(rec, "path", rec))
        try:
            f = _cache_file(folder, path) if cache else None
            ids = _load_cached(f) if f is not None and f.exists() else None
            if ids is not None:
                report.cache_hits += 1
            else:
                ids = np.asarray(tokenizer.encode(path), dtype=np.int32)
                if not np.isin(ids, pitch_ids).any():
                    raise MidiReadError("no piano notes")
                if f is not None:
                    _save_cached(f, ids)
        except Exception as e:  # noqa: BLE001 - symusic/MidiTok raise many kinds on bad files
            reason = str(e).replace(f"cannot read MIDI file {path}: ", "") or type(e).__name__
            report.skipped.append((str(path), reason))
            continue
        out.append(ids)
        report.kept.append(rec)
    if report.count:
        warnings.warn(report.summary, DataWarning, stacklevel=2)
    return out, report


def check_images(records: Iterable[ImageRecord]) -> tuple[list[ImageRecord], SkipReport]:
    """Decode every picture once (``engine.picture.image.load_image``); unreadable ones are skipped
    with a :class:`DataWarning` and counted. Returns (usable records, report)."""
    from engine.picture.image import load_image

    records = list(records)
    report = SkipReport(total=len(records))
    for rec in records:
        try:
            load_image(rec.path)
        except Exception as e:  # noqa: BLE001 - ImageReadError, OSError, cv2.error
            report.skipped.append((str(rec.path), str(e).replace(f"cannot read image {rec.path}: ", "")))
            continue
        report.kept.append(rec)
    if report.count:
        warnings.warn(report.summary, DataWarning, stacklevel=2)
    return list(report.kept), report
