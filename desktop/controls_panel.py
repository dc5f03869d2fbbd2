"""The musical controls: key/scale lock, emotion strength, variation, density, polyphony, range,
tempo and a "new variation" seed, as one panel.

Every value maps onto the engine's own option dataclasses: :meth:`ControlsPanel.controls`
gives a :class:`engine.model.controls.MusicalControls`, :meth:`ControlsPanel.sampling` a
:class:`engine.model.sampling.SamplingOptions`; both constructors validate, so the panel can never
hand the engine a setting it would refuse. ``changed`` is emitted once per burst of user edits
(debounced: dragging a slider steers the music once, when the hand rests, not fifty times);
programmatic changes (:meth:`load`) do not emit it. Values persist in QSettings under
``controls/``.
"""
from __future__ import annotations

import random

from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (QAbstractSpinBox, QCheckBox, QComboBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider,
                             QSpinBox, QWidget)

from engine.model.controls import MusicalControls
from engine.music.theory import SCALES, parse_key
from engine.daw.live_key import LIVE_KEY
from engine.model.sampling import DEFAULT_GUIDANCE, SamplingOptions

AUTO_KEY = "Auto (from emotion)"
FOLLOW_LIVE = "Follow Live"  # the key of Ableton Live 12's set, over AbletonOSC (engine/daw/live_key.py)
DEBOUNCE_MS = 150
SHARP_TONICS = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]  # minor-flavoured spellings
FLAT_TONICS = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
DEFAULTS = dict(key=None, guidance=DEFAULT_GUIDANCE, temperature=1.0, density=0.0, polyphony=0,
                low=21, high=108, bpm=110, tempo_lock=False, seed=None)


def key_names() -> list[str]:
    """Every key the combo offers: the 24 major/minor keys first, then the modes and other scales."""
    main = [f"{t} {m}" for i in range(12) for t, m in ((FLAT_TONICS[i], "major"), (SHARP_TONICS[i], "minor"))]
    other = [f"{(SHARP_TONICS if 'minor' in s or s == 'blues' else FLAT_TONICS)[i]} {s}"
             for s in SCALES if s not in ("major", "minor") for i in range(12)]
    return main + other


def note_name(pitch: int) -> str:
    """MIDI pitch -> scientific pitch name (60 = C4)."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


class NoteSpinBox(QSpinBox):
    """A MIDI pitch shown as a note name (C4 = 60); typing either works."""

    def textFromValue(self, v: int) -> str:  # noqa: N802 - Qt's name
        return note_name(v)

    def valueFromText(self, text: str) -> int:  # noqa: N802
        t = text.strip().upper().replace("♯", "#")
        if t.isdigit():
            return int(t)
        for n in range(128):
            if note_name(n).upper() == t:
                return n
        return self.value()

    def validate(self, text, pos):  # noqa: D102 - accept anything; valueFromText decides
        from PyQt6.QtGui import QValidator

        return QValidator.State.Acceptable, text, pos


class ValueSlider(QWidget):
    """A horizontal slider over ``steps`` integer positions with its value shown to the right."""

    valueChanged = pyqtSignal(int)

    def __init__(self, lo: int, hi: int, fmt, parent=None):
        super().__init__(parent)
        self.setObjectName("row")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(lo, hi)
        self.fmt = fmt
        self.label = QLabel()
        self.label.setMinimumWidth(46)
        self.label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.label)
        self.slider.valueChanged.connect(self._moved)
        self._moved(self.slider.value())

    def _moved(self, v: int) -> None:
        self.label.setText(self.fmt(v))
        self.valueChanged.emit(v)

    def value(self) -> int:
        return self.slider.value()

    def setValue(self, v: int) -> None:  # noqa: N802
        self.slider.setValue(int(v))
        self.label.setText(self.fmt(self.slider.value()))

    def setToolTip(self, text: str) -> None:  # noqa: N802
        super().setToolTip(text)
        self.slider.setToolTip(text)
        self.label.setToolTip(text)


class ControlsPanel(QWidget):
    """Key lock, emotion strength, variation, density, polyphony, range, tempo, seed."""

    changed = pyqtSignal()
    liveKeySaid = pyqtSignal(object, str)  # (key or None, line): from the AbletonOSC thread to this one

    def __init__(self, parent=None):
        super().__init__(parent)
        self._seed: int | None = None
        self._tempo_enabled = True
        self._quiet = 0  # > 0 while values are set by code (no ``changed``)
        self._debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS, timeout=self._emit_changed)

        self._live_box: list = []  # the LiveKey follower while "Follow Live" is chosen
        self._live_key: str | None = None  # the key Live said last (None: the mood picks it)
        self.keyCombo = QComboBox(objectName="keyCombo")
        self.keyCombo.addItem(AUTO_KEY, None)
        self.keyCombo.addItem(FOLLOW_LIVE, LIVE_KEY)
        self.keyCombo.setItemData(1, "The key of the Live set (Live 12, through AbletonOSC), followed while "
                                     "playing", Qt.ItemDataRole.ToolTipRole)
        self.keyCombo.insertSeparator(self.keyCombo.count())
        names = key_names()
        for i, name in enumerate(names):
            if i == 24:
                self.keyCombo.insertSeparator(self.keyCombo.count())
            self.keyCombo.addItem(name, name)
        self.keyCombo.setMaxVisibleItems(20)
        self.keyCombo.setToolTip("Key/scale lock: only notes of this scale are played. "
                                 "Auto lets the model choose the key that fits the emotion.")

        self.strength = ValueSlider(10, 30, lambda v: f"{v / 10:.1f}×")
        self.strength.setObjectName("strengthSlider")
        self.strength.setToolTip("Emotion strength: how strongly the music follows the picture and the "
                                 "target emotion (classifier-free guidance; 1 = off, 2 = default, 3 = strongest; "
                                 "higher needs more computer)")
        self.variation = ValueSlider(2, 15, lambda v: f"{v / 10:.1f}")
        self.variation.setObjectName("variationSlider")
        self.variation.setToolTip("Variation (sampling temperature): low = safe and repetitive, "
                                  "high = adventurous and surprising")
        self.density = ValueSlider(0, 16, lambda v: "any" if v == 0 else f"{v / 2:g}/beat")
        self.density.setObjectName("densitySlider")
        self.density.setToolTip("Density: the most new notes per beat (any = as many as the model likes)")

        self.polyphony = QSpinBox(objectName="polyphonySpin")
        self.polyphony.setRange(0, 10)
        self.polyphony.setSpecialValueText("any")
        self.polyphony.setToolTip("Maximum polyphony: the most notes sounding at once (any = no limit)")
        self.low, self.high = NoteSpinBox(objectName="lowSpin"), NoteSpinBox(objectName="highSpin")
        for box, what in ((self.low, "lowest"), (self.high, "highest")):
            box.setRange(21, 108)
            box.setToolTip(f"Pitch range: the {what} note played (piano keys A0–C8; type C4 or 60)")
        self.low.valueChanged.connect(lambda v: self.high.setMinimum(v))
        self.high.valueChanged.connect(lambda v: self.low.setMaximum(v))

        self.tempo = QSpinBox(objectName="tempoSpin")
        self.tempo.setRange(20, 400)
        self.tempo.setSuffix(" BPM")
        self.tempo.setToolTip("Tempo of the app's own clock (when not synced to the DAW)")
        self.tempoLock = QCheckBox("lock", objectName="tempoLock")
        self.tempoLock.setToolTip("Locked: always this tempo. Unlocked: the model suggests tempos near "
                                  "the emotion (fast for excited, slow for calm), starting here")

        self.seedButton = QPushButton("⟳ New variation", objectName="seedButton")
        self.seedButton.setToolTip("A new random seed: the same settings, a different melody "
                                   "(from the next bar)")
        self.seedLabel = QLabel(objectName="dim")
        self.seedLabel.setToolTip("The seed of the current variation: the same seed and settings "
                                  "give the same music again")
        self.errorLabel = QLabel(objectName="errorLabel")
        self.errorLabel.setWordWrap(True)
        self.errorLabel.setStyleSheet("color: #e0555f;")
        self.errorLabel.hide()
        self.liveLabel = QLabel(objectName="dim")
        self.liveLabel.setWordWrap(True)
        self.liveLabel.setStyleSheet("font-size: 8pt;")
        self.liveLabel.hide()
        self.liveKeySaid.connect(self._live_said)
        self.keyCombo.currentIndexChanged.connect(self._key_chosen)
        self._live_client = None  # the AbletonOSC connection, opened the first time Follow Live is chosen
        self.destroyed.connect(lambda *_a, box=self._live_box: [k.close() for k in box])
        self.destroyed.connect(lambda *_a: self._live_client is not None and self._live_client.close())

        for box in (self.polyphony, self.low, self.high, self.tempo):  # value fields: type, scroll or arrow keys
            box.setButtonSymbols(QAbstractSpinBox.ButtonSymbols.NoButtons)
            box.setAlignment(Qt.AlignmentFlag.AlignCenter)
            box.setToolTip(box.toolTip() + " — type a value, or scroll / use the arrow keys")
        # The rows' containers take the panel's colour; the lock box gets a visible frame.
        self.setStyleSheet("QWidget#row { background: transparent; }"
                           "QCheckBox { background: transparent; }"
                           "QCheckBox::indicator { width: 14px; height: 14px; border-radius: 3px;"
                           " border: 1px solid palette(mid); background: palette(base); }"
                           "QCheckBox::indicator:checked { background: palette(highlight);"
                           " border-color: palette(highlighted-text); }")
        self._layout()
        self._apply(DEFAULTS)
        for sig in (self.keyCombo.currentIndexChanged, self.strength.valueChanged, self.variation.valueChanged,
                    self.density.valueChanged, self.polyphony.valueChanged, self.low.valueChanged,
                    self.high.valueChanged, self.tempo.valueChanged, self.tempoLock.toggled):
            sig.connect(self._edited)
        self.seedButton.clicked.connect(self.new_seed)

    def _layout(self) -> None:
        g = QGridLayout(self)
        g.setContentsMargins(0, 0, 0, 0)
        g.setHorizontalSpacing(10)
        g.setVerticalSpacing(7)

        def label(text, buddy):
            lab = QLabel(text, objectName="dim")
            lab.setToolTip(buddy.toolTip())
            lab.setBuddy(buddy)
            return lab

        rng = QWidget(objectName="row")
        rl = QHBoxLayout(rng)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.low, 1)
        dash = QLabel("–", objectName="dim")
        rl.addWidget(dash)
        rl.addWidget(self.high, 1)
        tempo = QWidget(objectName="row")
        tl = QHBoxLayout(tempo)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.tempo, 1)
        tl.addWidget(self.tempoLock)
        seed = QWidget(objectName="row")
        sl = QHBoxLayout(seed)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(self.seedButton)
        sl.addWidget(self.seedLabel, 1)

        left = [("&Key", self.keyCombo), ("Emotion &strength", self.strength), ("&Variation", self.variation),
                ("&Density", self.density)]
        right = [("&Polyphony", self.polyphony), ("&Range", rng), ("&Tempo", tempo), ("Seed", seed)]
        for r, ((lt, lw), (rt, rw)) in enumerate(zip(left, right)):
            g.addWidget(label(lt, lw), r, 0)
            g.addWidget(lw, r, 1)
            buddy = {"&Range": self.low, "&Tempo": self.tempo, "Seed": self.seedButton}.get(rt, rw)
            g.addWidget(label(rt, buddy), r, 2)
            g.addWidget(rw, r, 3)
        g.addWidget(self.errorLabel, len(left), 0, 1, 4)
        g.addWidget(self.liveLabel, len(left) + 1, 0, 1, 4, Qt.AlignmentFlag.AlignTop)
        hint = QLabel("Changes are heard from the next bar; the takes keep what was played.", objectName="dim")
        hint.setStyleSheet("font-size: 8pt;")
        hint.setWordWrap(True)
        g.addWidget(hint, len(left) + 2, 0, 1, 4, Qt.AlignmentFlag.AlignBottom)
        g.setColumnStretch(1, 3)
        g.setColumnStretch(3, 2)
        g.setColumnMinimumWidth(2, 64)
        g.setRowStretch(len(left) + 1, 1)

    # -- values -------------------------------------------------------------------------------
    def key(self) -> str | None:
        """The key lock: the chosen key, Live's while following Live, None for the mood's."""
        data = self.keyCombo.currentData()
        return self._live_key if data == LIVE_KEY else data

    @property
    def following_live(self) -> bool:
        return self.keyCombo.currentData() == LIVE_KEY

    # -- Follow Live (answers arrive on the AbletonOSC client's thread; nothing here waits) -------
    def _key_chosen(self, *_a) -> None:
        if self.following_live and not self._live_box:
            from engine.daw.ableton import LiveBridgeError
            from engine.daw.live_key import LiveKey

            from engine.daw.ableton import AbletonOSCClient

            self._live_key = None
            try:  # binds a UDP port and sends two requests: nothing waits for Live
                if self._live_client is None:  # kept while the panel lives: choosing again needs no new port
                    self._live_client = AbletonOSCClient.open()
                self._live_box.append(LiveKey(self._live_client, on_change=self.liveKeySaid.emit).start())
            except LiveBridgeError as e:
                self._show_live(f"cannot follow Live's key: {e}".splitlines()[0])
                return
            self._show_live("asking Live for its key…")
        elif not self.following_live and self._live_box:
            self.stop_following_live()

    def stop_following_live(self) -> None:
        """Close the Live key follower (on a helper thread: closing joins its socket thread)."""
        import threading

        while self._live_box:
            threading.Thread(target=self._live_box.pop().close, daemon=True).start()
        self._live_key = None
        self.liveLabel.hide()
        self.keyCombo.setItemText(1, FOLLOW_LIVE)

    def _live_said(self, key, line: str) -> None:
        if not self.following_live:
            return
        self._live_key = key
        self.keyCombo.setItemText(1, f"{FOLLOW_LIVE}: {key}" if key else f"{FOLLOW_LIVE} (auto)")
        self._show_live(line)
        if self._validate():
            self._debounce.stop()
            self._emit_changed()  # heard from the next bar, like any key change

    def _show_live(self, line: str) -> None:
        self.liveLabel.setText(line)
        self.liveLabel.setToolTip(line)
        self.liveLabel.show()

    def tempo_bpm(self) -> float | None:
        """The locked tempo, or None (the model's suggestion, or the DAW's when synced)."""
        return float(self.tempo.value()) if self._tempo_enabled and self.tempoLock.isChecked() else None

    def start_bpm(self) -> float:
        """The app's own tempo to start at (also when not locked)."""
        return float(self.tempo.value())

    def controls(self) -> MusicalControls:
        """The engine's MusicalControls for these values (metre locked to 4/4 as the CLI does)."""
        d = self.density.value()
        return MusicalControls(key=self.key(), pitch_range=(self.low.value(), self.high.value()),
                               max_polyphony=self.polyphony.value() or None, density=d / 2 if d else None,
                               bpm=self.tempo_bpm(), time_signature=(4, 4))

    def sampling(self) -> SamplingOptions:
        return SamplingOptions(temperature=self.variation.value() / 10, guidance=self.strength.value() / 10,
                               seed=self._seed)

    @property
    def seed(self) -> int | None:
        return self._seed

    def new_seed(self) -> int:
        """Pick a new random seed (the "new variation" button); emits ``changed`` at once."""
        self._seed = random.SystemRandom().randrange(2**31)
        self._show_seed()
        self._debounce.stop()
        self._emit_changed()
        return self._seed

    def set_tempo_enabled(self, on: bool) -> None:
        """Off while synced to the DAW: the DAW's tempo rules and the tempo box is greyed out."""
        self._tempo_enabled = bool(on)
        for w in (self.tempo, self.tempoLock):
            w.setEnabled(self._tempo_enabled)
        tip = "" if on else " (now following the DAW's tempo: turn off Sync to set it here)"
        self.tempo.setToolTip("Tempo of the app's own clock (when not synced to the DAW)" + tip)

    def set_tempo(self, bpm: float) -> None:
        """Show a tempo (e.g. the DAW's detected one) without emitting ``changed``."""
        self._quiet += 1
        try:
            self.tempo.setValue(int(round(bpm)))
        finally:
            self._quiet -= 1

    # -- edits --------------------------------------------------------------------------------
    def _edited(self, *_):
        if self._quiet:
            return
        if self._validate():
            self._debounce.start()  # restarts: one ``changed`` per burst of edits

    def flush(self) -> None:
        """Emit a pending ``changed`` now (e.g. before Play or generating variations)."""
        if self._debounce.isActive():
            self._debounce.stop()
            self._emit_changed()

    def _emit_changed(self) -> None:
        if self._validate():
            self.changed.emit()

    def _validate(self) -> bool:
        """Build the engine's options; show the one-line reason when they are refused."""
        try:
            c = self.controls()
            self.sampling()
            scale = c.scale
            lo, hi = c.pitch_range
            if scale is not None and not any(scale.contains(p) for p in range(lo, hi + 1)):
                raise ValueError(f"no note of {scale.label} lies between {note_name(lo)} and {note_name(hi)}")
        except ValueError as e:
            self.errorLabel.setText(str(e))
            self.errorLabel.show()
            return False
        self.errorLabel.hide()
        return True

    # -- settings -----------------------------------------------------------------------------
    def values(self) -> dict:
        return dict(key=self.keyCombo.currentData(), guidance=self.strength.value() / 10, temperature=self.variation.value() / 10,
                    density=self.density.value() / 2, polyphony=self.polyphony.value(), low=self.low.value(),
                    high=self.high.value(), bpm=self.tempo.value(), tempo_lock=self.tempoLock.isChecked(),
                    seed=self._seed)

    def _apply(self, v: dict) -> None:
        self._quiet += 1
        try:
            i = self.keyCombo.findData(v["key"]) if v["key"] else 0
            self.keyCombo.setCurrentIndex(max(0, i))
            self.strength.setValue(round(v["guidance"] * 10))
            self.variation.setValue(round(v["temperature"] * 10))
            self.density.setValue(round(v["density"] * 2))
            self.polyphony.setValue(int(v["polyphony"]))
            self.low.setMaximum(108), self.high.setMinimum(21)
            lo, hi = sorted((int(v["low"]), int(v["high"])))
            self.low.setValue(lo), self.high.setValue(hi)
            self.tempo.setValue(int(v["bpm"]))
            self.tempoLock.setChecked(bool(v["tempo_lock"]))
            self._seed = v["seed"]
            self._show_seed()
        finally:
            self._quiet -= 1
        self._validate()

    def _show_seed(self) -> None:
        self.seedLabel.setText("seed: random" if self._seed is None else f"seed {self._seed}")

    def save(self, settings: QSettings) -> None:
        for k, v in self.values().items():
            settings.setValue(f"controls/{k}", "" if v is None else v)

    def load(self, settings: QSettings) -> None:
        """Restore saved values; anything missing or unreadable falls back to its default."""
        v = dict(DEFAULTS)
        for k, default in DEFAULTS.items():
            raw = settings.value(f"controls/{k}", None)
            if raw is None or raw == "":
                continue
            try:
                if k == "key":
                    v[k] = LIVE_KEY if str(raw) == LIVE_KEY else (
                        parse_key(str(raw)) and str(raw) if self.keyCombo.findData(str(raw)) >= 0 else None)
                elif k == "tempo_lock":
                    v[k] = raw if isinstance(raw, bool) else str(raw).lower() in ("true", "1", "yes")
                elif k == "seed":
                    v[k] = int(raw)
                else:
                    v[k] = type(DEFAULTS[k] if DEFAULTS[k] is not None else 0.0)(float(raw))
            except (TypeError, ValueError):
                continue
        self._apply(v)
