"""Writing files so that nothing is lost: all of the new file or none of it, with normal permissions.

:func:`write_atomic` is the one way the engine (``moodroll generate``, :meth:`LiveStream.capture`)
and the app (autosaved takes) put a file on disk:

1. the bytes go to a temporary file in the target's own folder (same file system, so the
   final rename is atomic), are flushed and ``fsync``-ed;
2. the temporary file gets the mode a plain ``open(path, "w")`` would have given: the user's
   umask applied to 0o666, or the mode of the file being replaced (``mkstemp`` creates 0600,
   which used to survive the rename);
3. ``os.replace`` moves it over the target and the folder is ``fsync``-ed, so after a crash or
   a power cut the folder holds either the old file or the whole new one.

Any failure (a full disk, no permission, a read-only file system) removes the temporary file,
leaves an existing target untouched and raises :class:`FileWriteError`: an ``OSError`` whose
message is one line for the user, e.g. ``cannot write takes/t1.mid: the disk is full``.
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
import threading
from pathlib import Path

_UMASK_LOCK = threading.Lock()

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file is larger than this system allows",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOENT: "the folder does not exist",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "the name is too long",
}


class FileWriteError(OSError):
    """A file that could not be written; ``str()`` is one line for the user, ``errno`` the cause."""

    def __init__(self, path, cause: OSError):
        reason = _REASONS.get(cause.errno) or cause.strerror or str(cause) or type(cause).__name__
        super().__init__(f"cannot write {path}: {reason}")
        self.errno = cause.errno
        self.path = Path(path)


def current_umask() -> int:
    """The process's umask, read without changing it where Linux tells it (/proc), else
    by the set-and-restore dance (under a lock, so two writers here do not race)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def new_file_mode(path: str | os.PathLike) -> int:
    """The permission bits a written file gets: those of the file it replaces, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # e.g. Windows: folders cannot be opened; the rename is durable enough there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path``: the whole file or, on any error, no change at all (see the
    module docstring). Creates missing parent folders. Raises :class:`FileWriteError`."""
    path = Path(path)
    tmp = None
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # a file where a folder should be
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)) from None
        mode = new_file_mode(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
        if not hasattr(os, "fchmod"):
            os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
        _fsync_folder(path.parent)
    except OSError as e:
        raise FileWriteError(path, e) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
