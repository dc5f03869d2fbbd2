"""EngineBridge: the one QObject that owns the engine and turns its threads' news into Qt signals.

The engine is Qt-free (Frescobaldi/friture style); this is its thin adapter. It owns the
:class:`MusicGenerator`, the :class:`LiveStream`, the :class:`MidiOutput`, the
:class:`ClockFollower` and the :class:`WebcamVA`. Threads:

* **UI thread**: calls the public methods here; they never block. Steering a running stream
  (``LiveStream.set_va`` / ``steer``) only queues a value for the decoder's next bar.
* **one engine worker** (a single-thread executor): everything slow or blocking, in order —
  loading and verifying the bundle, opening ONNX sessions, decoding and analysing pictures,
  opening MIDI ports and cameras, starting and stopping streams, writing takes. Results come
  back through ``_deliver``, a signal, so they are handled on the UI thread (queued).
* **the engine's own threads** (decoder, playback, status notifier, webcam, clock follower,
  port monitor): they only call plain Python callbacks that emit signals or store a value;
  the real-time playback thread never sees Qt at all (it talks to a :class:`FanOut`).

The UI reads live state (playhead, played notes, look-ahead, clock, port) with timers. The
MIDI side (ports, preview sink, DAW clock) is :class:`desktop.bridge_midi.BridgeMidiMixin`.
"""
from __future__ import annotations

import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PyQt6.QtCore import QObject, pyqtSignal

from desktop.bridge_midi import BridgeMidiMixin, first_line, midi_hint
from desktop.taps import LookaheadTee
from engine.live.sinks import FanOut

NEUTRAL_VA = (5.0, 5.0)


class EngineBridge(BridgeMidiMixin, QObject):
    loadProgress = pyqtSignal(int, str)  # percent, what is happening
    modelReady = pyqtSignal(str)  # bundle name
    modelFailed = pyqtSignal(str)  # one line
    message = pyqtSignal(str, str)  # level ("info" | "warning" | "error"), one line
    streamStatus = pyqtSignal(str)  # LiveStream status lines
    playingChanged = pyqtSignal(bool)
    pictureAnalyzed = pyqtSignal(object, float, float, str)  # RGB uint8, valence, arousal, name
    cameraVA = pyqtSignal(float, float)  # smoothed VA from the webcam
    cameraRunning = pyqtSignal(bool)
    portsListed = pyqtSignal(list, str)  # output port names, error ("" if fine)
    takeCaptured = pyqtSignal(object)  # the new take (engine.takes.store.Take)
    previewChanged = pyqtSignal(bool, str)  # preview sound on/off, why
    _deliver = pyqtSignal(object, object)  # (callback, result): run callback(result) on the UI thread

    def __init__(self, bundle=None, midi_api: str | None = None, port_name: str = "Moodroll",
                 clock_name: str = "Moodroll Clock In", threads: int | None = None, parent=None):
        super().__init__(parent)
        self.bundle_path, self.midi_api, self.threads = bundle, midi_api, threads
        self.port_name, self.clock_name = port_name, clock_name
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="moodroll-engine")
        self._deliver.connect(lambda cb, res: cb(res))
        self.gen = None  # MusicGenerator, once loaded
        self.performance = None  # engine.live.performance.Performance: mood, controls, the stream
        self.tee: LookaheadTee | None = None
        self.fan = FanOut()
        self.output = None  # MidiOutput
        self.port_choice: str | None = None  # None = our virtual port
        self.preview = None  # the built-in preview synth (a MidiOutput-like sink), when on
        self.follower = None
        self._clock_in = None
        self.sync = False
        self.webcam = None
        self.frame = None  # latest webcam frame (RGB, small), written by the webcam thread
        self.picture_rgb = None  # the picture (or webcam frame) the VA came from, for variations
        self._camera_tokens = None  # the webcam's latest image tokens (webcam thread writes)
        self.user_controls = None  # engine.model.controls.MusicalControls; made on first use (_defaults)
        self.sampling = None  # engine.model.sampling.SamplingOptions
        self.user_bpm: float | None = None  # None: the tempo the emotion plan suggests
        self._pending_image = None
        self._closed = False

    # -- plumbing -----------------------------------------------------------------------------
    def _run(self, fn, done=None, failed=None) -> None:
        """Run ``fn()`` on the engine worker; ``done(result)`` / ``failed(line)`` on the UI thread."""
        if self._closed:
            return

        def job():
            try:
                res = fn()
            except BaseException as e:  # noqa: BLE001 - every failure becomes one line in the window
                if not isinstance(e, (ValueError, OSError, RuntimeError)):
                    traceback.print_exc()
                line = first_line(e)
                self._deliver.emit(failed or (lambda m: self.message.emit("error", m)), line)
                return
            if done is not None:
                self._deliver.emit(done, res)

        self._worker.submit(job)

    def call_soon(self, fn) -> None:
        """Run ``fn`` on the engine worker after what is queued (tests wait on this too)."""
        self._run(fn)

    def _defaults(self) -> None:
        """The engine's default controls and sampling (importing the engine: on the worker at start)."""
        if self.user_controls is None or self.sampling is None or self.performance is None:
            from engine.model.controls import MusicalControls
            from engine.model.sampling import DEFAULT_GUIDANCE, SamplingOptions

            if self.user_controls is None:
                self.user_controls = MusicalControls(time_signature=(4, 4))
            if self.sampling is None:
                self.sampling = SamplingOptions(guidance=DEFAULT_GUIDANCE)
        if self.performance is None:
            from engine.live.performance import Performance

            self.performance = Performance(self.gen, self._user(), self.sampling, default_va=NEUTRAL_VA)

    # -- model -------------------------------------------------------------------------------
    def load_model(self) -> None:
        def load():
            self._defaults()
            from engine.model.bundle import load_bundle
            from engine.model.generator import MusicGenerator
            from engine.model.runtime import Runtime

            self.loadProgress.emit(5, "checking the model bundle (SHA-256)")
            bundle = load_bundle(self.bundle_path)
            self.loadProgress.emit(40, f"opening {bundle.name}: decoder")
            rt = Runtime(bundle, device="auto", threads=self.threads)
            self.loadProgress.emit(70, "opening the image encoder")
            rt.image_encoder  # noqa: B018 - open the session now, not on the first picture
            self.loadProgress.emit(90, "preparing the generator")
            return MusicGenerator(bundle, self.sampling, runtime=rt)

        def ready(gen):
            self.gen = gen
            self._defaults()
            self.performance.generator = gen
            self.loadProgress.emit(100, "model ready")
            self.modelReady.emit(gen.bundle.name)
            if self._pending_image is not None:
                path, self._pending_image = self._pending_image, None
                self.open_image(path)

        self._run(load, ready, lambda m: self.modelFailed.emit(m))

    # -- the mood and the controls (engine.live.performance: the policy lives there) -----------
    @property
    def stream(self):
        """The LiveStream now playing (or the last one), None before the first Play."""
        return self.performance.stream if self.performance is not None else None

    @property
    def picture_va(self) -> tuple[float, float] | None:
        return self.performance.picture_va if self.performance is not None else None

    @property
    def target_va(self) -> tuple[float, float] | None:
        return self.performance.target_va if self.performance is not None else None

    def va(self) -> tuple[float, float]:
        self._defaults()
        return self.performance.va()

    def effective(self):
        """(controls, bpm, one-line description) for the current VA: the user's controls, with
        what they left open filled by the emotion attribute plan (engine.emotion.attributes)."""
        self._defaults()
        return self.performance.effective()

    def _user(self):
        """The user's controls as the performance takes them: the metre locked so bars line up
        with the DAW's, the tempo box's value as the tempo lock."""
        from dataclasses import replace

        user = self.user_controls
        if user.time_signature is None:
            user = replace(user, time_signature=(4, 4))
        if self.user_bpm is not None and user.bpm is None:
            user = replace(user, bpm=self.user_bpm)
        return user

    def _playing(self) -> bool:
        return self.performance is not None and self.performance.playing()

    def advance_tempo_ramp(self) -> float | None:
        """UI timer: at each new bar line of the playing piece, the tempo ramp's next step (own
        tempo only; a DAW's tempo is the DAW's). Returns the new tempo, or None."""
        return self.performance.on_bar() if self.performance is not None else None

    def set_target(self, va: tuple[float, float] | None) -> None:
        """The puck: a VA the user chose (None = follow the picture). From the next bar."""
        self._defaults()
        self.performance.set_target(va)

    def set_controls(self, controls, sampling=None, bpm: float | None = None) -> None:
        """The user's controls / sampling / tempo (None = the emotion's); from the next bar."""
        self._defaults()
        self.user_controls = controls
        if sampling is not None:
            self.sampling = sampling
        self.user_bpm = bpm
        self.performance.set_user(self._user(), self.sampling)

    # -- pictures -------------------------------------------------------------------------------
    def open_image(self, source, name: str | None = None) -> None:
        """A path or encoded bytes: decode and analyse on the worker; ``pictureAnalyzed`` after."""
        label = name or (Path(source).name if not isinstance(source, (bytes, bytearray)) else "pasted picture")
        if self.gen is None:
            self._pending_image = source
            self.message.emit("info", f"{label}: analysed once the model has loaded")
            return

        def analyse():
            from engine.picture.image import load_image

            rgb = load_image(source)
            tokens, (v, a) = self.gen.analyze_image(rgb)
            return rgb, tokens, v, a

        def done(res):
            rgb, tokens, v, a = res
            self.stop_camera()
            self.picture_rgb = rgb
            self.performance.set_picture((v, a), tokens)
            self.pictureAnalyzed.emit(rgb, v, a, label)

        self._run(analyse, done)

    # -- webcam -------------------------------------------------------------------------------
    def start_camera(self, source) -> None:
        """A camera number or a video file (looped). Opening happens on the worker."""
        if self.gen is None:
            self.message.emit("warning", "the model is still loading: start the camera in a moment")
            return
        self.stop_camera()
        from engine.picture.webcam import WebcamVA

        gen = self.gen
        is_file = not str(source).strip().isdigit()

        def analyse(rgb):  # webcam thread: keep a small copy of the frame for the view
            from engine.picture.image import resize_area

            h, w = rgb.shape[:2]
            self.frame = resize_area(rgb, (320, max(1, round(320 * h / w))))
            return gen.analyze_image(rgb)

        def update(va, tokens):  # webcam thread
            self._camera_tokens, self.picture_rgb = tokens, self.frame
            self.cameraVA.emit(float(va[0]), float(va[1]))

        def open_cam():
            return WebcamVA(source, analyse, update, fps=4.0, loop=is_file).start()

        def done(cam):
            if self._closed:
                cam.stop()
                return
            self.webcam = cam
            self.cameraRunning.emit(True)

        def failed(line):
            self.message.emit("error", line)
            self.cameraRunning.emit(False)

        self._run(open_cam, done, failed)

    def on_camera_va(self, v: float, a: float) -> None:
        self._defaults()
        self.performance.set_picture((v, a), self._camera_tokens)

    def stop_camera(self) -> None:
        cam, self.webcam = self.webcam, None
        if cam is not None:
            self._run(cam.stop)
            self.cameraRunning.emit(False)

    # -- transport ------------------------------------------------------------------------------
    def play(self) -> None:
        if self.gen is None:
            self.message.emit("warning", "the model is still loading: Play starts once it is ready")
            return
        if self._playing():
            return
        _, bpm, _ = self.effective()

        def start():
            from engine.live.decoder import StreamOptions

            self.performance.stop()
            if self.output is None:
                self._open_output()
            if not self.fan.sinks:
                raise RuntimeError(f"nothing to play to: no MIDI port and no preview sound. {midi_hint()}")
            tee = LookaheadTee(self.gen)
            options = StreamOptions(bpm=None if self.follower else bpm, default_bpm=bpm)
            stream = self.performance.start(self.fan, clock=self.follower, options=options,
                                            on_status=self.streamStatus.emit, source=tee)
            self.tee = tee
            return stream

        self._run(start, lambda _: self.playingChanged.emit(True))

    def stop(self, then=None) -> None:
        def stop():
            return self.performance.stop() if self.performance is not None else None

        def done(stream):
            self.playingChanged.emit(False)
            if then is not None:
                then(stream)

        self._run(stop, done)

    # -- shutdown --------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Close everything now (window closing): the stream stops with all notes off."""
        self._closed = True
        s, cam = self.stream, self.webcam
        if s is not None:
            s.stop()  # joins its threads; all notes off
        if cam is not None:
            cam.stop()
        self._worker.shutdown(wait=True, cancel_futures=True)
        for obj in (self.follower, self._clock_in, self.output, self.preview):
            close = getattr(obj, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass
        self.fan.all_notes_off()
