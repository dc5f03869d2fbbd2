"""Performance: one live performance — a generator, its emotion planner, its stream and how they are steered.

Every front end plays through one of these: ``moodroll live`` (:mod:`engine.live.command`), its OSC
control (:class:`engine.daw.live_control.LiveControl`) and the desktop app
(:class:`desktop.bridge.EngineBridge`). The policy therefore lives here once:

* the mood asked for is the user's target (the pad, ``/moodroll/va``), else the picture's
  (a picture, a webcam frame), else ``default_va`` (None: unconditioned music);
* the controls are the user's locks with what they leave open filled by the emotion plan
  (:class:`engine.emotion.planner.EmotionPlanner`); a new mood takes effect at the next bar;
* one tempo per piece: while playing, a new user lock or mood keeps the tempo in force or starts a
  slow ramp, stepped at each bar line by :meth:`on_bar` (own clock only; a DAW's tempo is the DAW's);
* one key signature per take, drawn for the next take when one stops (the mood picks the mode
  on it, and may change it while playing; a key the user locks wins).

Thread-safe: steering comes from the UI or main thread, the webcam's and the OSC server's threads.
Nothing here blocks on the stream; :class:`engine.live.decoder.LiveStream` queues every change
for its decoder's next bar.
"""
from __future__ import annotations

import threading
from dataclasses import replace

from engine.emotion.planner import EmotionPlanner, draw_signature
from engine.model.controls import MusicalControls
from engine.model.generator import Condition


class Performance:
    def __init__(self, generator, user: MusicalControls = MusicalControls(), sampling=None, *,
                 attributes: bool = True, default_va: tuple[float, float] | None = None):
        self.generator = generator
        self.user = user  # the user's own locks (key, tempo, metre, ...): they always win
        self.sampling = sampling if sampling is not None else generator.sampling
        self.attributes = attributes
        self.default_va = default_va
        self.picture_va: tuple[float, float] | None = None
        self.picture_tokens = None  # the picture's image tokens (None: VA only)
        self.target_va: tuple[float, float] | None = None  # the user's own mood (the pad, OSC)
        self.stream = None  # the LiveStream now playing, once started
        self._signature = self._draw_signature()  # the next take's key signature (see EmotionPlanner)
        self._signature_played = False  # a take has started with it
        self._planner = EmotionPlanner(user, enabled=attributes, signature=self._signature)
        self._bars_seen = 0
        self._lock = threading.RLock()

    @property
    def planner(self) -> EmotionPlanner:
        """The emotion planner in force (a new one when the user's locks change)."""
        return self._planner

    # -- what is asked for ---------------------------------------------------------------------
    def va(self) -> tuple[float, float] | None:
        return self.target_va or self.picture_va or self.default_va

    def condition(self) -> Condition:
        va = self.va()
        return Condition() if va is None else Condition(va[0], va[1], self.picture_tokens)

    def playing(self) -> bool:
        return self.stream is not None and self.stream.running

    def effective(self) -> tuple[MusicalControls, float | None, str]:
        """(controls, tempo, one-line description) for the mood asked for now."""
        with self._lock:
            p, va = self._planner_for(self.user), self.va()
            controls = p.retarget(*va) if va is not None else p.user
            bpm = controls.bpm if controls.bpm is not None else (p.plan.bpm if p.plan is not None else None)
            if not self.attributes or p.plan is None:
                return controls, bpm, p.describe()
            return controls, bpm, f"{controls.key or 'any key'} · {bpm:.0f} BPM · {p.plan.density_word}"

    def describe(self) -> str:
        """``"E minor · 72 BPM · sparse"``: the plan in force (or that attributes are off)."""
        with self._lock:
            return self._planner.describe()

    def _planner_for(self, user: MusicalControls) -> EmotionPlanner:
        """The planner for these locks. While a piece plays its tempo is one tempo (new locks keep
        it, or ramp from it); stopped, the next piece starts at its own planned tempo."""
        p = self._planner
        if p.user != user or p.signature != self._signature:
            keep = p.bpm if self.playing() else None
            p = self._planner = EmotionPlanner(user, enabled=self.attributes, signature=self._signature)
            p.bpm = user.bpm if user.bpm is not None else keep
        elif not self.playing():
            p.bpm = user.bpm
        return p

    # -- steering (from the next bar) ----------------------------------------------------------
    def set_target(self, va: tuple[float, float] | None) -> None:
        """The user's mood (None: follow the picture again)."""
        self.target_va = None if va is None else (float(va[0]), float(va[1]))
        self.steer()

    def set_picture(self, va: tuple[float, float], tokens=None) -> None:
        """A picture's (or webcam frame's) estimated mood and image tokens."""
        self.picture_va, self.picture_tokens = (float(va[0]), float(va[1])), tokens
        self.steer()

    def open_picture(self, rgb) -> tuple[float, float]:
        """Analyse a picture (RGB uint8) in the calling thread and steer to it; returns its VA (1-9)."""
        tokens, (v, a) = self.generator.analyze_image(rgb)
        va = (min(9.0, max(1.0, float(v))), min(9.0, max(1.0, float(a))))
        self.set_picture(va, tokens)
        return va

    def set_user(self, user: MusicalControls, sampling=None) -> None:
        """The user's locks (and sampling options)."""
        with self._lock:
            self.user = user
            if sampling is not None:
                self.sampling = sampling
        self.steer()

    def set_key(self, key: str | None) -> None:
        """Lock the key (None: the mood picks it again)."""
        self.set_user(replace(self.user, key=key))

    def set_sampling(self, sampling) -> None:
        self.set_user(self.user, sampling)

    def steer(self) -> None:
        """Send the condition and the controls it implies to the running stream (next bar)."""
        controls, bpm, _ = self.effective()
        s = self.stream
        if s is None or not s.running:
            return
        s.steer(condition=self.condition() if self.va() is not None else None, controls=controls,
                sampling=self.sampling)
        if bpm is not None and self._own_fixed_tempo() and abs(bpm - (s.bpm or bpm)) > 1e-6:
            s.clock.set_tempo(bpm)  # continuous: earlier beats keep their times

    def _own_fixed_tempo(self) -> bool:
        """The stream keeps its own tempo (no DAW, not read from the model's tempo tokens)."""
        s = self.stream
        return s.follower is None and not s.follow_model_tempo

    def on_bar(self) -> float | None:
        """Call often (a UI timer, the CLI's loop): at each new bar line, the tempo ramp's next step
        (own tempo only). Returns the new tempo, or None."""
        s = self.stream
        if s is None or not s.running or s.follower is not None or s.bar_lines_played == self._bars_seen:
            return None
        self._bars_seen = s.bar_lines_played
        with self._lock:
            step = self._planner.on_bar()
        if step is None:
            return None
        s.steer(controls=step)
        if self._own_fixed_tempo():
            s.clock.set_tempo(step.bpm)
        return float(step.bpm)

    # -- the stream ----------------------------------------------------------------------------
    def start(self, output, clock=None, options=None, on_status=None, source=None):
        """A new :class:`LiveStream` from the start of a piece, playing to ``output`` (started).

        ``source`` wraps the generator (the app's look-ahead tee); ``options.bpm`` None with no
        ``clock``: the tempo follows the plan through the model's tempo tokens."""
        from engine.live.decoder import LiveStream, StreamOptions

        self.stop()
        controls, _, _ = self.effective()
        self._signature_played = True
        gen = self.generator
        gen.reset()
        gen.set_controls(controls)
        gen.set_sampling(self.sampling)
        gen.set_condition(self.condition())
        self._bars_seen = 0
        self.stream = LiveStream(source if source is not None else gen, gen.tokenizer, output, clock=clock,
                                 options=options if options is not None else StreamOptions(),
                                 on_status=on_status)
        return self.stream.start()

    def stop(self):
        """Stop the stream (all notes off); returns it (or None). The next take draws its own key
        signature (the same one again when the sampling is seeded)."""
        s = self.stream
        if s is not None:
            s.stop()
            with self._lock:
                if self._signature_played:
                    self._signature, self._signature_played = self._draw_signature(), False
        return s

    def _draw_signature(self) -> int:
        return draw_signature(getattr(self.sampling, "seed", None))
