"""engine/takes/files.py: whole files or none, the user's normal permissions, one clear line when a
disk is full (a real 64 KiB tmpfs where we may mount one; else a real file-size limit)."""
import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.takes.files import FileWriteError, new_file_mode, write_atomic

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda m: os.umask(m)
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_users_normal_permissions(tmp_path, umask, mask, mode):
    umask(mask)
    path = tmp_path / "sub" / "a.mid"
    write_atomic(path, b"MThd")
    assert path.read_bytes() == b"MThd"
    assert path.stat().st_mode & 0o777 == mode  # not mkstemp's 0600
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.mid"]  # no temporary left


def test_replacing_a_file_keeps_its_mode(tmp_path, umask):
    path = tmp_path / "a.mid"
    path.write_bytes(b"old")
    path.chmod(0o640)
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o777 == 0o640
    assert new_file_mode(tmp_path / "missing") == 0o644


def test_generate_writes_files_with_normal_permissions(tmp_path, umask, random_bundle):
    from engine.offline import generate_files

    umask(0o022)
    (piece,) = generate_files([], tmp_path / "va.mid", valence=7, arousal=6, bars=1, seed=1,
                              bundle=random_bundle, device="cpu")
    assert piece.path.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["va.mid"]


def test_bad_folder_is_one_clear_line_and_nothing_is_left(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(FileWriteError) as e:
        write_atomic(tmp_path / "file" / "a.mid", b"data")
    assert str(e.value) == f"cannot write {tmp_path / 'file' / 'a.mid'}: a part of the path is not a folder"
    assert isinstance(e.value, OSError) and e.value.errno in (errno.ENOTDIR, errno.EEXIST)


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 64 KiB file system (tmpfs); skipped where this process may not mount one."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_is_one_clear_line_and_keeps_earlier_files(tiny_disk):
    earlier = tiny_disk / "take1.mid"
    write_atomic(earlier, b"a" * 16_000)
    write_atomic(tiny_disk / "take2.mid", b"b" * 16_000)
    with pytest.raises(FileWriteError) as e:
        write_atomic(tiny_disk / "take3.mid", b"c" * 200_000)
    assert str(e.value) == f"cannot write {tiny_disk / 'take3.mid'}: the disk is full"
    assert e.value.errno == errno.ENOSPC
    with pytest.raises(FileWriteError, match="the disk is full"):  # replacing: the old one survives
        write_atomic(earlier, b"d" * 200_000)
    assert earlier.read_bytes() == b"a" * 16_000
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["take1.mid", "take2.mid"]  # no half files


def test_read_only_file_system_is_one_clear_line(tiny_disk):
    write_atomic(tiny_disk / "a.mid", b"old")
    r = subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot remount read-only: {r.stderr.strip()}")
    with pytest.raises(FileWriteError, match="the file system is read-only"):
        write_atomic(tiny_disk / "a.mid", b"new")
    assert (tiny_disk / "a.mid").read_bytes() == b"old"


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX resource limits")
def test_file_size_limit_mid_write_leaves_no_half_file(tmp_path):
    """Without root: the kernel's file-size limit stops the write part-way (as a full disk does)."""
    code = textwrap.dedent(f"""
        import resource, signal, sys
        from engine.takes.files import write_atomic, FileWriteError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
        try:
            write_atomic({str(tmp_path / 'big.mid')!r}, b"x" * 200_000)
        except FileWriteError as e:
            print(e)
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.strip() == f"cannot write {tmp_path / 'big.mid'}: the file is larger than this system allows"
    assert list(tmp_path.iterdir()) == []
