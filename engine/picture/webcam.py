"""Webcam mode: camera (or video file) frames -> image encoder -> a smoothed valence/arousal.

:class:`WebcamVA` reads frames with OpenCV from a camera index (``0``) or a video file, runs
each sampled frame (``fps`` per second) through an analyser (normally
:meth:`engine.model.generator.MusicGenerator.analyze_image`: image tokens + VA), and smooths the
result with :class:`VASmoother` so the music follows the scene without flickering:

1. a running **median** of the last ``median_of`` raw estimates (VA and image tokens): a
   single odd frame (someone walks past, a flash) cannot move it;
2. an **exponential average** (``alpha`` per analysed frame) of that median, for gradual change;
3. **hysteresis**: the published condition only changes when the average VA has moved more
   than ``hysteresis`` (1-9 scale) from the last published VA, or the average image tokens
   more than ``token_hysteresis`` (relative L2 distance) from the last published tokens: a
   new scene with the same mood still reaches the model, sensor noise does not.

Every published change calls ``on_update((valence, arousal), image_tokens)``; the live CLI
steers the stream with it (applied at the next bar). A camera that cannot be opened, or a
video file that is missing or unreadable, raises :class:`WebcamError` with one clear line.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Union

import numpy as np

from engine.live.ports import quiet_stderr

Source = Union[int, str, Path]


class WebcamError(RuntimeError):
    """A camera or video file that cannot be used; one line for the user."""


@dataclass(frozen=True)
class SmoothingOptions:
    median_of: int = 5  # raw estimates in the running median (odd)
    alpha: float = 0.3  # weight of each new (median) estimate in the exponential average
    hysteresis: float = 0.25  # publish when the average VA is this far away (1-9 scale) ...
    token_hysteresis: float = 0.1  # ... or the average image tokens this far (relative L2)

    def __post_init__(self):
        if self.median_of < 1:
            raise ValueError("median_of must be at least 1")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        if self.hysteresis < 0 or self.token_hysteresis < 0:
            raise ValueError("hysteresis must be >= 0")


class VASmoother:
    """Median -> exponential average -> hysteresis, for a stream of VA (+ image token) estimates."""

    def __init__(self, options: SmoothingOptions = SmoothingOptions()):
        self.options = options
        self.reset()

    def reset(self) -> None:
        self._raw: deque = deque(maxlen=self.options.median_of)
        self._raw_tokens: deque = deque(maxlen=self.options.median_of)
        self.average: np.ndarray | None = None  # the exponential average of the VA, [2]
        self.average_tokens: np.ndarray | None = None  # ... and of the image tokens
        self.value: tuple[float, float] | None = None  # the published VA
        self.tokens: np.ndarray | None = None  # the published image tokens
        self.changes = 0  # how often the published condition changed

    def update(self, va, tokens: np.ndarray | None = None) -> bool:
        """Add one raw estimate; True when the published condition changed."""
        o = self.options
        self._raw.append(np.asarray(va, dtype=np.float64).reshape(2))
        med = np.median(np.stack(self._raw), axis=0)
        self.average = med if self.average is None else (1 - o.alpha) * self.average + o.alpha * med
        moved = self.value is None or float(np.max(np.abs(self.average - np.asarray(self.value)))) > o.hysteresis
        if tokens is not None:
            t = np.asarray(tokens, dtype=np.float32)
            if self._raw_tokens and self._raw_tokens[-1].shape != t.shape:
                self._raw_tokens.clear()
                self.average_tokens = None
            self._raw_tokens.append(t)
            tmed = np.median(np.stack(self._raw_tokens), axis=0) if len(self._raw_tokens) > 1 else t
            self.average_tokens = tmed if self.average_tokens is None else \
                (1 - o.alpha) * self.average_tokens + o.alpha * tmed
            if self.tokens is None or self.tokens.shape != t.shape:
                moved = True
            else:
                scale = float(np.linalg.norm(self.tokens)) or 1.0
                moved = moved or float(np.linalg.norm(self.average_tokens - self.tokens)) / scale > o.token_hysteresis
        if moved:
            self.value = (float(self.average[0]), float(self.average[1]))
            if self.average_tokens is not None:
                self.tokens = self.average_tokens.astype(np.float32, copy=True)
            self.changes += 1
        return moved


# Pictures are read without OpenCV (engine.picture.image); the camera and video files need it, and the
# installers leave it out (its FFmpeg and OpenBLAS were 131 MB of the installed size, docs/install.md).
NO_OPENCV = ("webcam and video input need OpenCV, which the installed program leaves out; "
             "run Moodroll from a source install for them (docs/install.md)")


def capture_available() -> bool:
    """Whether camera and video input can work here (OpenCV installed); the app greys its button out."""
    import importlib.util

    return importlib.util.find_spec("cv2") is not None


def _cv2():
    """OpenCV, imported on the first capture (pictures are read without it: engine.picture.image)."""
    try:
        import cv2
    except ImportError:
        raise WebcamError(NO_OPENCV) from None
    return cv2


def open_capture(source: Source):
    """Open a camera (an index, or a string of digits) or a video file as a ``cv2.VideoCapture``;
    WebcamError if impossible."""
    cv2 = _cv2()
    if isinstance(source, str) and source.strip().isdigit():
        source = int(source.strip())
    if isinstance(source, int):
        with quiet_stderr():  # OpenCV logs its own warnings for missing devices
            cap = cv2.VideoCapture(source)
            ok = cap.isOpened() and cap.read()[0]
        if not ok:
            cap.release()
            raise WebcamError(f"cannot open camera {source}: no camera with that number, or it is in "
                              f"use by another program (try another --webcam number, or a video file)")
        return cap
    path = Path(source)
    if not path.is_file():
        raise WebcamError(f"cannot open video {path}: no such file")
    with quiet_stderr():
        cap = cv2.VideoCapture(str(path))
        ok = cap.isOpened() and cap.read()[0]
        cap.release()
        if ok:
            cap = cv2.VideoCapture(str(path))  # from the first frame again
    if not ok:
        raise WebcamError(f"cannot open video {path}: not a video OpenCV can decode")
    return cap


def iter_frames(source: Source, fps: float = 4.0, realtime: bool = True,
                stop: threading.Event | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(seconds into the source, RGB frame)`` at about ``fps`` frames per second.

    A camera is sampled in real time (frames in between are read and dropped so the picture
    is always fresh). A video file is sampled on its own timeline: in real time, or as fast as
    possible with ``realtime=False`` (tests, benchmarks). Ends at the end of a file.
    """
    cap = open_capture(source)
    cv2 = _cv2()
    is_file = not isinstance(source, int) and not (isinstance(source, str) and source.strip().isdigit())
    file_fps = (cap.get(cv2.CAP_PROP_FPS) or 25.0) if is_file else 0.0
    step = 1.0 / fps
    next_t = 0.0
    t_start = time.monotonic()
    index = 0
    try:
        while stop is None or not stop.is_set():
            ok, bgr = cap.read()
            if not ok:
                if is_file:
                    break
                raise WebcamError("the camera stopped delivering frames (unplugged?)")
            t = index / file_fps if is_file else time.monotonic() - t_start
            index += 1
            if t + 1e-9 < next_t:
                continue
            next_t = next_t + step if t < next_t + step else t + step  # fell behind: no catching up
            if is_file and realtime:
                delay = t - (time.monotonic() - t_start)
                if delay > 0:
                    time.sleep(delay)
            yield t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


class WebcamVA:
    """A thread that turns a camera or video into smoothed VA updates (see module doc)."""

    def __init__(self, source: Source, analyze: Callable[[np.ndarray], tuple],
                 on_update: Callable[[tuple[float, float], np.ndarray | None], None] | None = None,
                 fps: float = 4.0, smoothing: SmoothingOptions = SmoothingOptions(),
                 realtime: bool = True, loop: bool = False):
        if fps <= 0:
            raise ValueError("fps must be positive")
        open_capture(source).release()  # fail now, with a clear message, if it cannot be opened
        self.source, self.analyze, self.on_update = source, analyze, on_update
        self.fps, self.realtime, self.loop = fps, realtime, loop
        self.smoother = VASmoother(smoothing)
        self.frames = 0
        self.error: BaseException | None = None
        self.last_raw: tuple[float, float] | None = None
        self.frame_ms: deque = deque(maxlen=256)  # frame -> smoothed VA, per frame
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webcam-va", daemon=True)

    @property
    def value(self) -> tuple[float, float] | None:
        return self.smoother.value

    def process(self, rgb: np.ndarray) -> bool:
        """Analyse one frame and smooth; True when the published VA changed (then on_update ran)."""
        t0 = time.perf_counter()
        tokens, va = self.analyze(rgb)
        self.last_raw = (float(va[0]), float(va[1]))
        changed = self.smoother.update(va, tokens)
        self.frames += 1
        self.frame_ms.append((time.perf_counter() - t0) * 1000.0)
        if changed and self.on_update is not None:
            self.on_update(self.smoother.value, self.smoother.tokens)
        return changed

    def run(self) -> None:
        """Process the whole source in the calling thread (until its end or :meth:`stop`)."""
        while not self._stop.is_set():
            for _, rgb in iter_frames(self.source, self.fps, self.realtime, self._stop):
                self.process(rgb)
            if not self.loop:
                break

    def _run(self) -> None:
        try:
            self.run()
        except BaseException as e:  # noqa: BLE001 - reported through .error
            self.error = e

    def start(self) -> "WebcamVA":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
