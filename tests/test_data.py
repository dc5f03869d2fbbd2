"""training/data.py: loaders on the real data, VA maps, the paper's pairing, splits, read_tokens."""
import csv
import math
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from engine.paths import EXAMPLES
from engine.emotion.va import to_paper_scale
from training.data import (DataWarning, ImageRecord, MidiRecord, Pair, check_images, load_eimg,
                           load_oasis, load_pop909, load_vgmidi, pair_clips_to_images, paired_splits,
                           pairing_stats, read_tokens, similarity, split_eimg, split_oasis, split_sizes)


@pytest.fixture(scope="module")
def oasis(data_dir):
    return load_oasis(data_dir)


@pytest.fixture(scope="module")
def eimg(data_dir):
    return load_eimg(data_dir)


# -- loaders -----------------------------------------------------------------------------
def _check_va(records):
    va = np.array([r.va for r in records])
    assert va.min() >= 1.0 and va.max() <= 9.0


def test_load_oasis(oasis, data_dir):
    assert len(oasis) == 738
    assert all(isinstance(r, ImageRecord) and r.path.is_file() for r in oasis)
    assert len({r.id for r in oasis}) == len(oasis)
    assert {r.category for r in oasis} == {"Person", "Animal", "Object", "Scenery"}
    _check_va(oasis)
    # the values are the CSV's 1-7 means mapped by engine.emotion.va
    with open(data_dir / "oasis" / "oasis.csv", newline="") as f:
        row = next(csv.DictReader(f))
    rec = next(r for r in oasis if r.id == row["id"])
    assert rec.valence == pytest.approx(1 + (float(row["valence_mean"]) - 1) * 8 / 6)
    assert rec.arousal == pytest.approx(1 + (float(row["arousal_mean"]) - 1) * 8 / 6)
    # OASIS spans most of the 1-7 scale, so after mapping it must reach below 2 and above 8
    va = np.array([r.va for r in oasis])
    assert va[:, 0].min() < 2 and va[:, 0].max() > 8


def test_load_eimg(eimg):
    assert len(eimg) == 2700
    assert all(isinstance(r, MidiRecord) and r.dataset == "eimg" and r.path.is_file() for r in eimg)
    assert len({r.id for r in eimg}) == len(eimg)
    _check_va(eimg)


def test_load_vgmidi(data_dir):
    recs = load_vgmidi(data_dir)
    assert len(recs) == 150  # 154 CSV rows, 150 distinct files (duplicates averaged)
    assert len({r.path for r in recs}) == len(recs)
    assert all(r.path.is_file() and r.dataset == "vgmidi" for r in recs)
    _check_va(recs)
    va = np.array([r.va for r in recs])
    # nearly all labels are the two ends of the scale; only disagreeing duplicates are in between
    assert np.isin(va, [1.0, 9.0]).all(axis=1).sum() >= 145


def test_load_pop909(data_dir):
    recs = load_pop909(data_dir)
    assert len(recs) == 909
    assert all(r.path.is_file() and r.va is None and r.dataset == "pop909" for r in recs)


def test_loader_accepts_the_data_set_folder_itself(data_dir):
    assert len(load_oasis(data_dir / "oasis")) == 738


def test_missing_folder_is_a_clear_error(tmp_path):
    for fn, label in [(load_oasis, "OASIS"), (load_eimg, "EIMG"), (load_vgmidi, "VGMIDI"),
                      (load_pop909, "POP909")]:
        with pytest.raises(FileNotFoundError, match=label) as e:
            fn(tmp_path)
        assert str(tmp_path) in str(e.value)
    (tmp_path / "oasis" / "images").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="oasis.csv"):
        load_oasis(tmp_path)


def test_bad_rows_are_skipped_and_counted(tmp_path):
    d = tmp_path / "eimg"
    (d / "midi").mkdir(parents=True)
    shutil.copy(EXAMPLES / "example.mid", d / "midi" / "0001.mid")
    (d / "eimg.csv").write_text("file,valence_mean,arousal_mean\n"
                                "midi/0001.mid,7,8\nmidi/0002.mid,3,3\nmidi/0001.mid,x,3\n")
    with pytest.warns(DataWarning, match="skipped 2 row"):
        recs = load_eimg(tmp_path)
    assert [(r.id, r.valence, r.arousal) for r in recs] == [("0001", 7.0, 8.0)]
    (d / "eimg.csv").write_text("file,valence\nmidi/0001.mid,7\n")
    with pytest.raises(ValueError, match="missing column.*valence_mean"):
        load_eimg(tmp_path)


# -- VA maps -----------------------------------------------------------------------------
def test_va_maps():
    assert to_paper_scale(1, "oasis") == 1 and to_paper_scale(7, "oasis") == 9
    assert to_paper_scale(4, "oasis") == 5
    assert to_paper_scale(-1, "vgmidi") == 1 and to_paper_scale(1, "vgmidi") == 9
    assert to_paper_scale(5.5, "eimg") == 5.5


# -- pairing -----------------------------------------------------------------------------
def _img(i, v, a):
    return ImageRecord(id=i, path=Path(f"{i}.jpg"), valence=v, arousal=a)


def _clip(i, v, a):
    return MidiRecord(id=i, path=Path(f"{i}.mid"), dataset="t", valence=v, arousal=a)


def test_similarity():
    assert similarity((1, 1), (4, 5)) == pytest.approx(1 / 5)
    assert similarity((3, 3), (3, 3)) == math.inf


def test_pairing_matches_brute_force(oasis, eimg):
    clips = eimg[::9]  # 300 clips, against all 738 pictures
    pairs = pair_clips_to_images(clips, oasis)
    assert [p.clip for p in pairs] == clips
    for p in pairs:
        best = max(similarity(p.clip.va, im.va) for im in oasis)
        assert p.similarity == pytest.approx(best, rel=1e-9)
        assert similarity(p.clip.va, p.image.va) == pytest.approx(best, rel=1e-9)


def test_pairing_ties_are_broken_by_image_id():
    # exact match (s = inf) shared by two images, given in reverse order
    imgs = [_img("b", 5, 5), _img("c", 2, 2), _img("a", 5, 5)]
    [p] = pair_clips_to_images([_clip("x", 5, 5)], imgs)
    assert p.image.id == "a" and p.similarity == math.inf
    # equal non-zero distance on both sides
    imgs = [_img("right", 6, 5), _img("left", 4, 5), _img("far", 9, 9)]
    for order in (imgs, imgs[::-1]):
        [p] = pair_clips_to_images([_clip("x", 5, 5)], order)
        assert p.image.id == "left" and p.similarity == pytest.approx(1.0)
    stats = pairing_stats(pair_clips_to_images([_clip("x", 5, 5), _clip("y", 9, 8)], imgs), imgs)
    assert stats["ties"] == 1 and stats["distinct_images"] == 2


def test_pairing_reuses_images_and_rejects_unlabelled():
    pairs = pair_clips_to_images([_clip("x", 2, 2), _clip("y", 2.1, 2)], [_img("a", 2, 2), _img("b", 8, 8)])
    assert [p.image.id for p in pairs] == ["a", "a"]
    with pytest.raises(ValueError, match="no VA label"):
        pair_clips_to_images([MidiRecord("z", Path("z.mid"), "pop909")], [_img("a", 2, 2)])


# -- splits ------------------------------------------------------------------------------
def test_split_sizes_follow_the_paper():
    assert split_sizes(3000) == {"train": 2884, "test": 100, "val": 16}
    assert split_sizes(2700) == {"train": 2596, "test": 90, "val": 14}
    assert split_sizes(10) == {"train": 8, "test": 1, "val": 1}


def test_split_eimg(eimg):
    s = split_eimg(eimg, seed=0)
    assert (len(s.train), len(s.test), len(s.val)) == (2596, 90, 14)
    ids = [{r.id for r in part} for part in (s.train, s.test, s.val)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set.union(*ids) == {r.id for r in eimg}
    assert split_eimg(eimg, seed=0) == s
    assert split_eimg(eimg[::-1], seed=0) == s  # input order does not matter
    other = split_eimg(eimg, seed=1)
    assert {r.id for r in other.test} != ids[1]


def test_split_oasis(oasis):
    train, hold = split_oasis(oasis, seed=0)
    assert (len(train), len(hold)) == (590, 148)
    assert not {r.id for r in train} & {r.id for r in hold}
    assert split_oasis(oasis, seed=0) == (train, hold)
    assert {r.id for r in split_oasis(oasis, seed=1)[1]} != {r.id for r in hold}
    for cat in ("Person", "Animal", "Object", "Scenery"):  # stratified by category
        n = sum(r.category == cat for r in oasis)
        assert abs(sum(r.category == cat for r in hold) - 0.2 * n) < 1
    assert len(split_oasis(oasis, seed=0, holdout=0.5)[1]) == 369


def test_paired_splits_keep_evaluation_images_unseen(data_dir, oasis):
    ps = paired_splits(seed=0, root=data_dir)
    assert {k: len(v) for k, v in ps.items()} == {"train": 2596, "test": 90, "val": 14}
    assert all(isinstance(p, Pair) for v in ps.values() for p in v)
    _, hold = split_oasis(oasis, seed=0)
    hold_ids = {r.id for r in hold}
    train_imgs = {p.image.id for p in ps["train"]}
    eval_imgs = {p.image.id for p in ps["test"] + ps["val"]}
    assert eval_imgs <= hold_ids and not train_imgs & hold_ids
    clips = [{p.clip.id for p in v} for v in ps.values()]
    assert not (clips[0] & clips[1] or clips[0] & clips[2] or clips[1] & clips[2])


# -- token ids -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer():
    from engine.music.tokenizer import Tokenizer
    return Tokenizer()


def test_read_tokens_skips_and_counts_corrupt_files(tmp_path, tokenizer, data_dir):
    good = [EXAMPLES / "example.mid", *sorted((data_dir / "eimg" / "midi").glob("*.mid"))[:3]]
    bad = tmp_path / "garbage.mid"
    bad.write_bytes(b"MThd this is not a MIDI file" + os.urandom(64))
    missing = tmp_path / "missing.mid"
    records = [good[0], bad, *good[1:], missing]
    cache = tmp_path / "cache"
    with pytest.warns(DataWarning, match="skipped 2"):
        ids, rep = read_tokens(records, tokenizer, cache_dir=cache)
    assert rep.count == 2 and rep.total == 6
    assert [p for p, _ in rep.skipped] == [str(bad), str(missing)]
    assert rep.kept == [good[0], *good[1:]] and len(ids) == 4
    assert "skipped 2" in rep.summary and "garbage.mid" in str(rep)
    for p, x in zip(good, ids):
        assert x.dtype == np.int32 and x.tolist() == tokenizer.encode(p)
    # second run: the good files come from the cache, the same ids
    with pytest.warns(DataWarning):
        ids2, rep2 = read_tokens(records, tokenizer, cache_dir=cache)
    assert rep2.cache_hits == 4 and [x.tolist() for x in ids2] == [x.tolist() for x in ids]
    assert all(f.suffix == ".npz" for f in cache.rglob("*") if f.is_file())


def test_read_tokens_cache_follows_file_changes(tmp_path, tokenizer):
    f = tmp_path / "a.mid"
    shutil.copy(EXAMPLES / "example.mid", f)
    cache = tmp_path / "cache"
    (ids,), _ = read_tokens([f], tokenizer, cache_dir=cache)
    f.write_bytes(b"not midi any more")  # new content and mtime: the cache must not answer
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    with pytest.warns(DataWarning):
        out, rep = read_tokens([f], tokenizer, cache_dir=cache)
    assert out == [] and rep.count == 1 and rep.cache_hits == 0


def test_read_tokens_skips_files_without_notes(tmp_path, tokenizer):
    import mido
    empty = tmp_path / "empty.mid"
    mid = mido.MidiFile()
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    mid.save(empty)
    with pytest.warns(DataWarning, match="no piano notes"):
        out, rep = read_tokens([empty], tokenizer, cache=False)
    assert out == [] and rep.count == 1


def test_check_images_skips_unreadable(tmp_path, oasis):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    recs = [oasis[0], ImageRecord("bad", bad, 5.0, 5.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        ok, rep = check_images(recs)
    assert ok == [oasis[0]] and rep.count == 1 and rep.skipped[0][0] == str(bad)


def test_data_module_stays_torch_free():
    import subprocess
    import sys
    code = "import sys, training.data; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
