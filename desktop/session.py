"""What happens when the user acts, and what the timers show: the main window's controller.

Kept apart from :mod:`desktop.app` (layout) and :mod:`desktop.bridge` (engine objects): here
are the reactions — play, stop, capture, steer, sync, ports — and the two timer callbacks:
:meth:`tick` (30 Hz: piano roll, webcam frame, once per played bar the heard VA and the
phrase autosave) and :meth:`slow_tick` (4 Hz: clock lock, port state, stream errors).
Autosave: every ``PHRASE_BARS`` played bars, at Stop and when the port vanishes, the phrase
is written as a take by :class:`engine.takes.store.PhraseAutosave` on the engine worker.
"""
from __future__ import annotations

from pathlib import Path

from desktop.bridge import first_line
from desktop.preview_rule import PreviewRule, daw_connection

PHRASE_BARS = 8
TAKES_LISTED = 200  # the newest takes shown when a folder is opened


class Session:
    def __init__(self, win, takes_dir: Path):
        self.win, self.bridge = win, win.bridge
        self.takes_dir = Path(takes_dir)
        self.store = None  # engine.takes.store.TakeStore, opened on the worker
        self.autosave = None  # PhraseAutosave of the stream now playing
        self.source_name = "VA"
        self._bars_seen = 0
        self._stream = None
        self._port_ok = True
        self.preview_rule = PreviewRule()
        self._frame_shown = None
        self._sent_seen = None
        self._pending_takes = None  # listed before the takes panel was built
        self.midi_error = ""
        self.bridge.call_soon(self._open_store)
        self.bridge.takeCaptured.connect(self._take_added)

    # -- takes ----------------------------------------------------------------------------------
    @staticmethod
    def _load_store(path: Path):
        """Worker: the takes folder at ``path`` opened, and its newest takes (raises TakeError)."""
        from engine.takes.store import TakeStore

        store = TakeStore(path)
        return store, store.list()[:TAKES_LISTED]

    def _open_store(self):
        from engine.takes.store import TakeError

        try:
            self.store, takes = self._load_store(self.takes_dir)
        except TakeError as e:
            self.bridge.message.emit("error", f"{e}; takes are not saved until you choose another folder")
            return
        self.bridge._deliver.emit(self._show_takes, takes)

    def choose_takes_folder(self) -> None:
        """The takes panel's Folder… button: pick where takes are saved from now on."""
        from PyQt6.QtWidgets import QFileDialog

        path = QFileDialog.getExistingDirectory(self.win, "Save takes in", str(self.takes_dir))
        if path:
            self.set_takes_dir(path)

    def set_takes_dir(self, path) -> None:
        """Save takes in ``path`` from now on (also the phrase being autosaved) and list its takes;
        opened on the worker. A folder that cannot be used is one line, and the old one stays."""
        path = Path(path).expanduser()

        def done(res) -> None:
            self.store, takes = res
            self.takes_dir = path
            if self.autosave is not None:
                self.autosave.store = self.store
            self.win.settings.setValue("takes_folder", str(path))
            self.win.show_takes_folder(path)
            self._show_takes(takes)
            self.win.show_message("info", f"takes are saved in {path} ({len(takes)} there)")

        self.bridge._run(lambda: self._load_store(path), done, lambda line: self.win.show_message(
            "error", f"{line}; takes are still saved in {self.takes_dir}" if self.store else line))

    def _show_takes(self, takes) -> None:
        panel = self.win.takes
        if not self.win.panels_ready:
            self._pending_takes = list(takes)
            return
        panel.store = self.store  # for Save As / delete; listing was done on the worker
        panel.set_takes(takes)

    def _take_added(self, take) -> None:
        if take is None:
            return
        if not self.win.panels_ready:
            self._pending_takes = [take] + (self._pending_takes or [])
        else:
            self.win.takes.add_take(take)
        bars = getattr(take, "bars", None)
        self.win.show_message("info", f"saved take {Path(take.path).name}" + (f" ({bars} bars)" if bars else ""))

    def send_to_live(self, path: str) -> None:
        """Put a take into the track selected in Live, first empty slot from the selected scene down,
        through AbletonOSC (engine/daw)."""
        def send():
            from engine.daw.ableton import send_take

            return send_take(path)

        self.bridge._run(send, lambda line: self.win.show_message("info", line),
                         lambda line: self.win.show_message("error", f"Send to Live: {line} (is Live running "
                                                            "with AbletonOSC?)"))

    def _meta(self):
        from engine.takes.store import TakeMeta

        v, a = self.bridge.va()
        controls, bpm, _ = self.bridge.effective()
        return TakeMeta(valence=round(v, 2), arousal=round(a, 2), key=controls.key, bpm=bpm,
                        source=self.source_name, seed=self.bridge.sampling.seed)

    def capture(self, bars: int) -> None:
        stream, meta = self.bridge.stream, self._meta()

        def write():
            from engine.live.player import CaptureError

            if self.store is None:
                raise ValueError("no takes folder: takes cannot be saved")
            if stream is None:
                raise CaptureError("nothing to capture yet: press Play first")
            return self.store.capture(stream, bars, meta, prefix="capture")

        self.bridge._run(write, self.bridge.takeCaptured.emit)

    def _autosave(self, final: bool = False) -> None:
        auto = self.autosave
        if auto is None:
            return
        self.bridge._run(auto.flush if final else auto.poll, self.bridge.takeCaptured.emit)

    # -- transport ----------------------------------------------------------------------------
    def play(self) -> None:
        if self.win.panels_ready:
            self.win.controls.flush()  # a control edit still in its debounce
        self.win.roll.clear()
        self.win.pad.clear_trail()
        self.bridge.play()

    def stop(self) -> None:
        self.bridge.stop(then=lambda _s: self._autosave(final=True))

    def playing_changed(self, playing: bool) -> None:
        self.win.transport.set_playing(playing)
        s = self.bridge.stream
        if playing and s is not None and s is not self._stream:
            from engine.takes.store import PhraseAutosave

            self._stream, self._bars_seen = s, 0
            self.autosave = PhraseAutosave(self.store, s, PHRASE_BARS, self._meta) if self.store else None

    def stream_status(self, line: str) -> None:
        if not self._port_ok and self.bridge.output is not None:
            return  # the vanished port's error stays up until it returns: the bar-by-bar line would bury it
        late = "behind" in line or "did not reach the port" in line  # the stream's late notes, its shortfall
        self.win.show_message("warning" if late else "info", line)

    def sync_toggled(self, on: bool) -> None:
        if self.win.panels_ready:
            self.win.controls.set_tempo_enabled(not on)
        self.bridge.set_sync(on)

    def preview_changed(self, on: bool, why: str) -> None:
        self.win.transport.set_preview(on)
        if on:
            self.win.show_message("info", why)
        elif why != "preview sound off":
            self.win.show_message("warning", f"{self.midi_error}; and {why}" if self.midi_error
                                  else f"{why}; MIDI to the DAW still works")

    def preview_toggled(self, on: bool) -> None:
        self.preview_rule.user_toggled(on)
        self.win.settings.setValue("preview", bool(on))
        self.bridge.enable_preview(on)

    def port_chosen(self, name) -> None:
        self.bridge.choose_port(name)

    def ports_listed(self, names: list, error: str) -> None:
        self.win.transport.set_ports(names, self.bridge.port_choice)
        self.midi_error = error
        if error:
            self.win.show_message("error", error)
            if self.bridge.preview is None:  # no MIDI system: the preview sound is how to hear it
                self.win.transport.previewButton.setChecked(True)

    # -- steering -----------------------------------------------------------------------------
    def model_ready(self, name: str) -> None:
        dt = __import__("time").perf_counter() - self.win.t_created
        self.win.show_message("info", f"model {name} ready ({dt:.1f} s): drop a picture or press Play")
        self._update_attributes()

    def model_failed(self, line: str) -> None:
        self.win.progress.hide()
        self.win.show_message("error", f"the model could not be loaded: {line}. Reinstall Moodroll or "
                                       "choose another bundle (moodroll app --bundle FOLDER)")

    def picture_analyzed(self, rgb, v: float, a: float, name: str) -> None:
        self.source_name = name
        self.win.source.show_picture(rgb, v, a, name)
        self.win.pad.set_picture_va(v, a)
        self._update_attributes()
        self.win.show_message("info", f"{name}: valence {v:.1f}, arousal {a:.1f}"
                              + (" — heard from the next bar" if self.bridge.stream and self.bridge.stream.running else ""))

    def camera_toggled(self, source) -> None:
        if source is None:
            self.bridge.stop_camera()
        else:
            self.source_name = "webcam"
            self.win.settings.setValue("camera", source)
            self.bridge.start_camera(source)

    def camera_va(self, v: float, a: float) -> None:
        self.bridge.on_camera_va(v, a)
        self.win.pad.set_picture_va(v, a)
        self.win.source.set_va_caption(v, a, "webcam")
        self._update_attributes()

    def target_changed(self, va) -> None:
        self.bridge.set_target(va)
        self._update_attributes()

    def controls_changed(self, *_a) -> None:
        c = self.win.controls
        try:
            controls, sampling = c.controls(), c.sampling()
        except ValueError as e:
            self.win.show_message("error", first_line(e))
            return
        self.bridge.set_controls(controls, sampling, None)  # a tempo lock is in controls.bpm
        self._update_attributes()

    def _update_attributes(self) -> None:
        if self.bridge.gen is None:
            return  # the engine is still loading (its import is what takes the time)
        try:
            controls, bpm, text = self.bridge.effective()
        except ValueError as e:
            self.win.attributesLabel.setText(first_line(e))
            return
        self.win.attributesLabel.setText(text)
        if not self.bridge.sync and self.win.panels_ready:
            self.win.controls.set_tempo(bpm)  # show the tempo that plays (no `changed`)

    # -- timers -------------------------------------------------------------------------------
    def tick(self) -> None:
        b, win = self.bridge, self.win
        frame = b.frame
        if frame is not None and frame is not self._frame_shown and b.webcam is not None:
            self._frame_shown = frame
            win.source.dropZone.show_rgb(frame)
        s = b.stream
        if s is None:
            return
        notes, bars = b.tee.drain() if b.tee is not None else ([], [])
        sent = (s.notes_sent, len(s.played_bars))
        if not notes and not bars and sent == self._sent_seen:
            win.roll.set_playhead(s.playhead)  # nothing new: just scroll
            return
        self._sent_seen = sent
        played = list(s.played_notes)
        win.roll.set_state(s.playhead, played, notes, bars, s.beats_per_bar)
        n_bars = len(s.played_bars)
        if n_bars != self._bars_seen and s is self._stream:
            self._bars_seen = n_bars
            self._bar_played(s, played)

    def _bar_played(self, s, played: list) -> None:
        bars = list(s.played_bars)
        if len(bars) >= 2:
            start = bars[max(0, len(bars) - 3)][1]
            recent = [n for n in played if n[0] >= start]
            try:
                from engine.emotion.judge import estimate_va

                va = estimate_va(recent, s.bpm or 110.0)
            except (ImportError, FileNotFoundError, ValueError):
                va = None
            if va is not None:
                self.win.pad.add_heard(*va)
                self.win.heardLabel.setText(f"heard: valence {va[0]:.1f} · arousal {va[1]:.1f}")
        if self.autosave is not None and self.autosave.pending_bars() >= PHRASE_BARS:
            self._autosave()

    def slow_tick(self) -> None:
        b, t = self.bridge, self.win.transport
        status, daw_bpm, locked = b.clock_state()
        t.set_sync_state(status, daw_bpm, locked)
        if b.sync and daw_bpm and self.win.panels_ready:
            self.win.controls.set_tempo(daw_bpm)
        if b.advance_tempo_ramp() is not None:  # a bar line on a tempo ramp: show the tempo now playing
            self._update_attributes()
        status, connected = b.port_status()
        self.win.portLabel.setText(("● " if connected else "○ ") + status)
        self._preview_beside_daw(daw_connection(b.sync and locked, b.port_choice, connected))  # (no output: not connected)
        s = b.stream
        if connected != self._port_ok:
            self._port_ok = connected
            if not connected and b.output is not None:
                self.win.show_message("error", f"{status} (notes off; it is reopened when it comes back)")
                self._autosave(final=True)
        if s is not None and s is self._stream and not s.running and t.playButton.isChecked():
            t.set_playing(False)
            if s.error is not None:
                self.win.show_message("error", f"playback stopped: {first_line(s.error)}")
            self._autosave(final=True)
        cam = b.webcam
        if cam is not None and cam.error is not None:
            self.win.show_message("error", f"webcam: {first_line(cam.error)}")
            b.stop_camera()

    def _preview_beside_daw(self, daw: str | None) -> None:
        """The preview sound off while a DAW plays the notes, back when it leaves (desktop/preview_rule.py);
        the stored setting is the user's and stays as it is."""
        act = self.preview_rule.step(daw, self.bridge.preview is not None)
        if act == "off":
            self.bridge.enable_preview(False)
            self.win.show_message("info", f"{daw}: preview sound off, so the notes are not heard twice "
                                          "(Preview sound turns it back on)")
        elif act == "on":
            self.bridge.enable_preview(True)

    # -- settings -----------------------------------------------------------------------------
    def restore(self, st) -> None:
        port = st.value("port", "") or None
        self.bridge.port_choice = port
        self.win.transport.set_ports([], port)
        self.win.transport.barsSpin.setValue(int(st.value("capture_bars", 8)))
        cam = st.value("camera", 0)
        self.win.source.set_camera(int(cam) if str(cam).isdigit() else cam)
        if str(st.value("preview", "false")).lower() == "true":
            self.win.transport.previewButton.setChecked(True)
        if st.value("tempo_mode", "own") == "daw":
            self.win.transport.syncButton.setChecked(True)  # -> set_sync via the toggled signal

    def panels_installed(self, st) -> None:
        """The controls and takes panels are built: their settings, and the takes listed so far."""
        c = self.win.controls
        c.load(st)
        self.controls_changed()
        c.set_tempo_enabled(not self.bridge.sync)
        if self._pending_takes is not None:
            takes, self._pending_takes = self._pending_takes, None
            self._show_takes(takes)

    def save(self, st) -> None:
        st.setValue("port", self.bridge.port_choice or "")
        st.setValue("tempo_mode", "daw" if self.bridge.sync else "own")
        st.setValue("takes_folder", str(self.takes_dir))
        st.setValue("capture_bars", self.win.transport.barsSpin.value())
        if self.win.panels_ready:
            self.win.controls.save(st)

    def close(self) -> None:
        """Window closing: stop now (all notes off), then save the last phrase (a small write)."""
        s = self.bridge.stream
        if s is not None:
            s.stop()
        if self.autosave is not None:
            try:
                self.autosave.flush()
            except Exception as e:  # noqa: BLE001 - closing must go on; the reason is printed
                print(f"moodroll: the last phrase was not saved: {first_line(e)}")
