"""A stand-in for Live's host API: the ``Live`` module's object model and the
``ableton.v2.control_surface`` classes a Remote Script builds on, as much of them as
AbletonOSC's handlers touch (Song, Song.View, Track, ClipSlot, Clip, Scene,
Live.Clip.MidiNoteSpecification, Live.Application; ControlSurface, Component).

Live's objects call their ``add_<prop>_listener`` callbacks synchronously when a property
changes, on Live's one main thread; so do these (the host, :mod:`tests.live_host.host`,
is that thread). A missing property or listener raises AttributeError as Live's Boost.Python
objects do, so "older Live" is a Song without ``root_note``/``scale_name``.
:func:`install` puts these modules into ``sys.modules`` under Live's names.
"""
from __future__ import annotations

import contextlib
import functools
import sys
import types

_MISSING = object()


class Observable:
    """Properties named in ``_observed`` notify their listeners when they change."""

    _observed: tuple = ()

    def __init__(self):
        object.__setattr__(self, "_listeners", {})

    def __getattr__(self, name):
        for prefix, op in (("add_", "add"), ("remove_", "remove")):
            if name.startswith(prefix) and name.endswith("_listener"):
                prop = name[len(prefix):-len("_listener")]
                if prop in self._observed:
                    return functools.partial(self._listen, op, prop)
        if name.endswith("_has_listener") and name[:-len("_has_listener")] in self._observed:
            prop = name[:-len("_has_listener")]
            return lambda fn: fn in self._listeners.get(prop, ())
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def _listen(self, op, prop, fn) -> None:
        listeners = self._listeners.setdefault(prop, [])
        if op == "add":
            if fn in listeners:
                raise RuntimeError("Listener already connected")
            listeners.append(fn)
        else:
            if fn not in listeners:
                raise RuntimeError("Listener not connected")
            listeners.remove(fn)

    def __setattr__(self, name, value):
        old = self.__dict__.get(name, _MISSING)
        object.__setattr__(self, name, value)
        if name in self._observed and old is not _MISSING and old != value:
            self.notify(name)

    def notify(self, prop: str) -> None:
        for fn in list(self._listeners.get(prop, ())):
            fn()


class MidiNoteSpecification:
    """Live.Clip.MidiNoteSpecification (Live 11+): what Clip.add_new_notes takes."""

    def __init__(self, pitch, start_time, duration, velocity=100.0, mute=False, probability=1.0,
                 velocity_deviation=0.0, release_velocity=64.0):
        if not (isinstance(pitch, int) and 0 <= pitch <= 127):
            raise RuntimeError(f"Invalid pitch {pitch!r}")
        if not duration > 0:
            raise RuntimeError(f"Invalid duration {duration!r}")
        self.pitch, self.start_time, self.duration = pitch, float(start_time), float(duration)
        self.velocity, self.mute = float(velocity), bool(mute)
        self.probability, self.velocity_deviation, self.release_velocity = probability, velocity_deviation, release_velocity


class MidiNote(MidiNoteSpecification):
    """A note in a clip (what get_notes_extended returns): a specification with an id."""

    def __init__(self, spec: MidiNoteSpecification, note_id: int):
        self.__dict__.update(spec.__dict__)
        self.note_id = note_id


class Clip(Observable):
    _observed = ("name", "color", "muted", "looping", "is_playing", "playing_position")

    def __init__(self, length: float):
        super().__init__()
        self.name, self.length, self.color, self.muted, self.looping = "", float(length), 0, False, True
        self.is_midi_clip, self.is_audio_clip, self.is_playing = True, False, False
        self.start_time, self.end_time = 0.0, float(length)
        self.notes: list[MidiNote] = []
        self._next_id = 1

    def add_new_notes(self, specs) -> tuple:
        ids = []
        for s in specs:
            if not isinstance(s, MidiNoteSpecification):
                raise TypeError("add_new_notes takes MidiNoteSpecification objects")
            self.notes.append(MidiNote(s, self._next_id))
            ids.append(self._next_id)
            self._next_id += 1
        return tuple(ids)

    def get_notes_extended(self, from_pitch, pitch_span, from_time, time_span) -> tuple:
        return tuple(n for n in self.notes if from_pitch <= n.pitch < from_pitch + pitch_span
                     and from_time <= n.start_time < from_time + time_span)

    def remove_notes_extended(self, from_pitch, pitch_span, from_time, time_span) -> None:
        gone = set(map(id, self.get_notes_extended(from_pitch, pitch_span, from_time, time_span)))
        self.notes = [n for n in self.notes if id(n) not in gone]


class ClipSlot(Observable):
    _observed = ("has_clip", "is_playing", "is_triggered", "playing_status", "has_stop_button")

    def __init__(self, track: "Track"):
        super().__init__()
        self._track = track
        self.clip = None
        self.has_clip, self.is_playing, self.is_triggered, self.playing_status = False, False, False, 0
        self.has_stop_button, self.controls_other_clips, self.is_group_slot, self.will_record_on_start = True, False, False, False

    def create_clip(self, length) -> None:
        # (Live raises RuntimeError for these; the wording here is the stand-in's)
        if not self._track.has_midi_input:
            raise RuntimeError("MIDI clips can only be created in MIDI tracks")
        if self.clip is not None:
            raise RuntimeError("Clip slot already has a clip")
        if not length > 0:
            raise RuntimeError("Invalid clip length")
        self.clip = Clip(length)
        self.has_clip = True

    def delete_clip(self) -> None:
        if self.clip is None:
            raise RuntimeError("No clip in slot")
        self.clip = None
        self.has_clip = False


class Track(Observable):
    _observed = ("name", "arm", "mute", "solo", "color", "playing_slot_index", "fired_slot_index")

    def __init__(self, name: str, midi: bool = True, scenes: int = 8):
        super().__init__()
        self.name, self.has_midi_input, self.has_audio_input = name, midi, not midi
        self.has_midi_output, self.has_audio_output = midi, True
        self.arm = self.mute = self.solo = False
        self.color, self.playing_slot_index, self.fired_slot_index = 0, -2, -1
        self.is_foldable = self.is_grouped = False
        self.is_visible, self.can_be_armed, self.group_track = True, True, None
        self.devices: list = []
        self.clip_slots = [ClipSlot(self) for _ in range(scenes)]
        self.arrangement_clips: list = []


class Scene(Observable):
    _observed = ("name", "color", "is_triggered")

    def __init__(self, name: str = ""):
        super().__init__()
        self.name, self.color, self.is_triggered, self.is_empty = name, 0, False, True


class SongView(Observable):
    _observed = ("selected_track", "selected_scene")

    def __init__(self, track, scene):
        super().__init__()
        self.selected_track, self.selected_scene = track, scene


class Song(Observable):
    """Live.Song.Song. ``version`` < 12: no song key (``root_note``/``scale_name``).

    The transport runs on the host's clock (``now``): while playing, ``current_song_time``
    is the anchor's beat plus the time since it at the tempo; :meth:`advance` writes it,
    firing its listeners, as Live does at its display rate. A tempo change re-anchors (the
    position is continuous), setting ``current_song_time`` is a locate."""

    _observed = ("tempo", "is_playing", "current_song_time", "signature_numerator", "signature_denominator",
                 "metronome", "loop", "record_mode", "session_record", "arrangement_overdub", "groove_amount")

    def __init__(self, now, tracks: int = 4, audio_tracks=(3,), scenes: int = 8, returns: int = 2,
                 version: int = 12):
        super().__init__()
        object.__setattr__(self, "_now", now)
        object.__setattr__(self, "_anchor", None)  # (host time, beat) while playing
        if version >= 12:
            object.__setattr__(self, "_observed", Song._observed + ("root_note", "scale_name"))
            self.root_note, self.scale_name = 0, "Major"
        self.tracks = [Track(f"{i + 1}-{'Audio' if i in audio_tracks else 'MIDI'}", i not in audio_tracks, scenes)
                       for i in range(tracks)]
        self.return_tracks = [Track(f"{chr(65 + i)}-Return", False, 0) for i in range(returns)]
        self.master_track = Track("Master", False, 0)
        self.scenes = [Scene() for _ in range(scenes)]
        self.view = SongView(self.tracks[0], self.scenes[0])
        self.tempo, self.is_playing, self.current_song_time = 120.0, False, 0.0
        self.signature_numerator, self.signature_denominator = 4, 4
        self.metronome = self.loop = self.session_record = self.arrangement_overdub = False
        self.record_mode, self.groove_amount, self.song_length = False, 0.0, 0.0
        self.can_undo = self.can_redo = False

    def __setattr__(self, name, value):
        if name == "tempo":
            value = min(max(float(value), 20.0), 999.0)
            if self._anchor is not None:  # continuous at the change
                now = self._now()
                object.__setattr__(self, "_anchor", (now, self._beat(now)))
        elif name == "current_song_time":
            value = max(float(value), 0.0)
            if self._anchor is not None:
                object.__setattr__(self, "_anchor", (self._now(), value))
        super().__setattr__(name, value)

    def _beat(self, now: float) -> float:
        t, beat = self._anchor
        return beat + (now - t) * self.tempo / 60.0

    def start_playing(self) -> None:
        if self._anchor is None:
            object.__setattr__(self, "_anchor", (self._now(), self.current_song_time))
            self.is_playing = True

    def continue_playing(self) -> None:
        self.start_playing()

    def stop_playing(self) -> None:
        if self._anchor is not None:
            beat = self._beat(self._now())
            object.__setattr__(self, "_anchor", None)
            self.is_playing = False
            super().__setattr__("current_song_time", beat)  # stays where it stopped

    def advance(self, now: float) -> None:
        """The song position Live shows now (fires the current_song_time listeners while playing)."""
        if self._anchor is not None:
            super().__setattr__("current_song_time", self._beat(now))

    def create_scene(self, index) -> None:
        self.scenes.insert(len(self.scenes) if index < 0 else index, Scene())
        for track in self.tracks:
            track.clip_slots.insert(len(track.clip_slots) if index < 0 else index, ClipSlot(track))


class Application:
    def __init__(self, major: int = 12, minor: int = 1):
        self._version, self.average_process_usage = (major, minor), 0.1

    def get_major_version(self) -> int:
        return self._version[0]

    def get_minor_version(self) -> int:
        return self._version[1]


# -- ableton.v2.control_surface ------------------------------------------------------------------
_surface = None  # the control surface being built (its components find the song through it)


class ControlSurface:
    """The base class of a Remote Script. ``c_instance`` is the host: it owns the song and the
    control-surface timer (``schedule_message`` counts in its ticks, 100 ms in Live)."""

    def __init__(self, c_instance):
        global _surface
        self._c_instance = c_instance
        _surface = self

    @property
    def song(self):
        return self._c_instance.song

    def schedule_message(self, delay_in_ticks, callback, parameter=None) -> None:
        self._c_instance.schedule(delay_in_ticks, callback if parameter is None else functools.partial(callback, parameter))

    def show_message(self, message) -> None:
        self._c_instance.messages.append(str(message))

    @contextlib.contextmanager
    def component_guard(self):
        global _surface
        _surface = self
        yield

    def request_rebuild_midi_map(self) -> None:
        pass

    def disconnect(self) -> None:
        self._c_instance.disconnected = True


class Component:
    def __init__(self, *a, **k):
        self._surface = _surface

    @property
    def song(self):
        return self._surface.song


class EncoderElement:
    pass


def install(application: Application) -> None:
    """Put the stand-in modules into ``sys.modules`` under Live's names (idempotent)."""
    live = types.ModuleType("Live")
    for sub, attrs in {"Song": {"Song": Song}, "Track": {"Track": Track}, "Clip": {"Clip": Clip,
                       "MidiNoteSpecification": MidiNoteSpecification}, "ClipSlot": {"ClipSlot": ClipSlot},
                       "Scene": {"Scene": Scene},
                       "Application": {"Application": Application, "get_application": lambda: application},
                       "MidiMap": {"MapMode": types.SimpleNamespace(absolute=0), "map_midi_cc": lambda *a: None}}.items():
        m = types.ModuleType(f"Live.{sub}")
        m.__dict__.update(attrs)
        setattr(live, sub, m)
        sys.modules[f"Live.{sub}"] = m
    sys.modules["Live"] = live
    cs = types.ModuleType("ableton.v2.control_surface")
    cs.ControlSurface = ControlSurface
    comp = types.ModuleType("ableton.v2.control_surface.component")
    comp.Component = Component
    cs.component = comp
    v2, ab = types.ModuleType("ableton.v2"), types.ModuleType("ableton")
    v2.control_surface, ab.v2 = cs, v2
    fw, enc = types.ModuleType("_Framework"), types.ModuleType("_Framework.EncoderElement")
    enc.EncoderElement = EncoderElement
    fw.EncoderElement = enc
    sys.modules.update({"ableton": ab, "ableton.v2": v2, "ableton.v2.control_surface": cs,
                        "ableton.v2.control_surface.component": comp, "_Framework": fw,
                        "_Framework.EncoderElement": enc})
