"""Live stream: generated notes played on time to a MIDI port, steerable while playing.

Two threads and a queue::

    token source --next_token()--> [decoder thread] --events--> queue --> [playback thread] --> MidiOutput
                                   StreamingDecoder                        monotonic clock, heap by beat

* The **decoder thread** asks the token source (a :class:`engine.model.generator.MusicGenerator`,
  or anything with ``next_token()``) for tokens, turns them into timed events with
  :class:`engine.music.events.StreamingDecoder`, and stays ``ahead_bars`` (default 1.5) bars
  ahead of playback, never more (the bounded queue: it waits once it is that far ahead).
* The **playback thread** owns a heap of events ordered by beat. It sleeps until shortly
  (``spin_s``) before the next event is due, then spins on :func:`time.monotonic` and sends
  it. It never waits for the decoder: an empty heap just means silence (counted as an
  underrun). On its own clock an event that comes more than ``late_s`` late (the decoder fell
  behind) slips the clock: it is played late, the music after it keeps its rhythm, nothing is
  dropped. Following a DAW the clock cannot wait: such a note-on is skipped rather than
  played out of time. It asks the OS for real-time priority where allowed and shortens
  Python's GIL switch interval while streaming, so a busy decoder delays it by well under a
  millisecond.

Steering (:meth:`LiveStream.steer`, :meth:`set_image`, :meth:`set_va`, :meth:`set_controls`,
:meth:`set_sampling`) is applied by the decoder thread at the next ``Bar`` token it decodes,
so every bar is generated under one setting; the generator's self-attention cache is never
cleared (``set_condition`` recomputes only the cross-attention K/V). Because the decoder is
1-1.5 bars ahead, a change is heard from the bar after the one already written.

Start: the clock starts once the first ``start_bars`` (one bar) are decoded, so the model's
prefill and its first, slow steps (ONNX Runtime's warm-up) are behind it and bar 1 plays at the
tempo its Tempo token says; then ``preroll_s`` (a few ms of safety margin) later it plays, and
the decoder runs ahead of the playhead (``ahead_bars``). A restart (resume, a DAW's
Continue) goes as soon as a note-on at the restart beat is decoded (or ``start_beats``).

Accounting: ``notes_planned`` note-ons were due, ``notes_sent`` went to the output,
``notes_failed`` of them it refused (gone or reconnecting), ``notes_skipped`` came too late for
the DAW's time; ``shortfall`` = skipped + failed shows in the status line. A note-on sent more
than ``warn_late_s`` late is counted in ``notes_late`` and reported with how late it was.

Tempo (what drives the beat -> seconds map)
-------------------------------------------
1. Following a DAW (``clock=ClockFollower``): the DAW's tempo and bar lines, always.
   Playback starts (and restarts after Stop / Continue / a locate) on the DAW's next bar line
   (the bar the DAW starts at, when its tempo is known from clocks sent while stopped).
2. Else ``bpm`` given: that tempo, fixed; the model's Tempo tokens are ignored.
3. Else the model's Tempo tokens, as a suggestion: the first one sets the tempo and later ones
   change it at their beat; ``default_bpm`` until the model has given one.

Status lines (``on_status``) are delivered by a small notifier thread, never by playback
itself; a GUI must still hand them to its own thread (Qt: a queued signal).

Safety: every way out of playback (stop, error, :meth:`LiveStream.stop` at interpreter exit
via :mod:`atexit`) ends every sounding note with a note-off and sends CC 123 (all notes off).
The CLI turns SIGINT/SIGTERM into a clean stop.

The playback thread, and capture, are :class:`engine.live.player.Playback` (engine/live/player.py).

Capture: :meth:`LiveStream.capture` writes the last N complete bars that were played to a
``.mid`` file (written to a temporary file, then renamed into place).
"""
from __future__ import annotations

import atexit
import queue
import sys
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Sequence

from engine.live.clock import ClockFollower, InternalClock, SystemTime, check_bpm
from engine.live.ports import MidiOutput
from engine.live.player import Playback
from engine.model.filters.state import BOS
from engine.music.events import BAR, KIND_ORDER, NOTE_OFF, NOTE_ON, StreamingDecoder
from engine.music.humanize import EventHumanizer, check_humanize
from engine.music.tokenizer import Tokenizer

END = "end"  # our own event kind: the last bar asked for is over
_ORDER = {**KIND_ORDER, END: -1}


@dataclass(frozen=True)
class StreamOptions:
    bpm: float | None = None  # fixed tempo (ignored when following a DAW); None = model's suggestion
    default_bpm: float = 110.0  # own tempo until the model suggests one
    ahead_bars: float = 1.5  # the decoder keeps this much music decoded beyond the playhead
    start_bars: float = 1.0  # the first start waits for this much decoded music (prefill, warm-up)
    start_beats: float = 0.25  # a restart: a note-on decoded, or this much music without one
    preroll_s: float = 0.01  # own clock: playback starts this long after the first note is decoded
    # (a few ms of safety margin for the rest of a chord; the decoder then keeps ahead)
    channel: int = 0  # MIDI channel 0..15
    late_s: float = 0.05  # a later note-on slips our clock, or is skipped following a DAW
    warn_late_s: float = 0.02  # a note-on this late is reported in the status line
    spin_s: float = 0.0015  # sleep until this long before an event, then spin
    bars: int | None = None  # stop after this many bars; None = endless
    history_bars: int = 64  # how far back capture() can reach
    clock_out: bool = False  # also send MIDI clock + Start/Stop/Continue (own tempo only)
    realtime: bool = True  # ask for real-time scheduling of the playback thread (best effort)
    switch_interval_s: float = 0.0005  # Python's GIL switch interval while streaming
    humanize_ms: float = 0.0  # seeded onset spread (engine.music.humanize); own clock only, never following a DAW
    humanize_seed: int | None = None

    def __post_init__(self):
        if self.bpm is not None:
            check_bpm(self.bpm)
        check_bpm(self.default_bpm)
        if not 0 <= self.channel <= 15:
            raise ValueError(f"MIDI channel must be 0..15, got {self.channel}")
        if self.ahead_bars < 1.0:
            raise ValueError("the decoder must stay at least one bar ahead (ahead_bars >= 1)")
        if not 0.0 <= self.start_bars <= self.ahead_bars:
            raise ValueError("start_bars must be between 0 and ahead_bars")
        if self.bars is not None and self.bars < 1:
            raise ValueError(f"bars must be at least 1, got {self.bars}")
        check_humanize(self.humanize_ms)


class TokenReplay:
    """A token source that replays a fixed token sequence (e.g. a MIDI file through the tokenizer),
    looping if asked. For demos, tests and timing benchmarks without a model."""

    def __init__(self, ids: Sequence[int], loop: bool = True):
        if not len(ids):
            raise ValueError("TokenReplay needs at least one token")
        self.ids, self.loop, self.i = list(ids), loop, 0

    def next_token(self) -> int:
        if self.i >= len(self.ids):
            if not self.loop:
                raise StopIteration("end of the token sequence")
            self.i = 0
        tok = self.ids[self.i]
        self.i += 1
        return tok


class LiveStream(Playback):
    """Plays a token source to a :class:`MidiOutput`; see the module docstring."""

    def __init__(self, source, tokenizer: Tokenizer, output: MidiOutput,
                 clock: ClockFollower | None = None, options: StreamOptions = StreamOptions(),
                 on_status: Callable[[str], None] | None = None, time_source=None):
        if not hasattr(source, "next_token"):
            raise TypeError("the token source needs a next_token() method")
        self.source, self.tokenizer, self.output, self.options = source, tokenizer, output, options
        self.follower = clock
        # now / wait_until / idle / notify (engine.live.clock.SystemTime; tests: tools.virtual_midi.VirtualTime)
        self.time_source = time_source if time_source is not None else SystemTime(spin_s=options.spin_s)
        self.clock = InternalClock(options.bpm or options.default_bpm)
        self.follow_model_tempo = clock is None and options.bpm is None
        self.on_status = on_status
        self.status = "not started"
        self.error: BaseException | None = None

        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._done = threading.Event()
        self._steer_lock = threading.Lock()
        self._pending: dict = {}
        self._paused = False
        self._threads: list[threading.Thread] = []
        self._status_lines: deque = deque()
        self._status_event = threading.Event()
        self._notifier: threading.Thread | None = None
        self._old_switch: float | None = None
        self._started = False
        self._stopped = False

        # Shared by the two threads (single writer each; floats and appends are atomic).
        self.horizon = 0.0  # music beat up to which everything is decoded (decoder writes)
        self.playhead = 0.0  # music beat now sounding (playback writes)
        self.decoded_bars: list[float] = []  # beat of each bar line decoded, the last 2048-4096 (decoder appends)
        self.beats_per_bar = 4.0  # of the bar being decoded
        self._decoder_done = False

        # Playback's own (plus what capture() and benchmarks read).
        n = options.history_bars
        self.played_notes: deque = deque(maxlen=n * 64)  # (onset beat, pitch, velocity, duration)
        self.played_bars: deque = deque(maxlen=n + 1)  # (bar number, beat)
        self.bar_lines_played = 0  # bar lines played so far (played_bars keeps only the last n + 1)
        self.played_metres: deque = deque(maxlen=n + 1)  # (beat, (numerator, denominator)) changes
        self.timeline: deque = deque(maxlen=1 << 16)  # (beat, due time, sent time, pitch) per note-on
        self.time_signature = (4, 4)
        self.tokens = 0
        self.notes_planned = 0  # note-ons due to be played (from the start beat on)
        self.notes_sent = 0  # ... sent to the output (notes_failed of them refused: port gone)
        self.notes_failed = 0
        self.notes_skipped = 0  # ... not sent: too late to play in the DAW's time
        self.notes_late = 0  # ... sent (or skipped) more than warn_late_s after their time
        self.worst_late_ms = 0.0  # the latest of those
        self.underruns = 0  # times the playhead passed the decoded music (late or not)
        self.slips = 0  # own clock: times the clock waited for a late decoder (notes late, not dropped)
        self.max_late_ms = 0.0  # the latest note-on sent

    # -- control ---------------------------------------------------------------------------
    def start(self) -> "LiveStream":
        if self._started:
            raise RuntimeError("this stream was already started")
        self._started = True
        self._old_switch = sys.getswitchinterval()
        sys.setswitchinterval(min(self._old_switch, self.options.switch_interval_s))
        atexit.register(self.stop)
        self._set_status("decoding the first bar")
        if self.on_status is not None:
            self._notifier = threading.Thread(target=self._notify_loop, name="moodroll-status", daemon=True)
            self._notifier.start()
        for target, name in ((self._decode_loop, "moodroll-decoder"), (self._play_loop, "moodroll-playback")):
            t = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(t)
            t.start()
            self.time_source.started(t)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads; every sounding note gets its note-off and CC 123 is sent.
        Safe to call more than once, from any thread (also runs at interpreter exit)."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self.time_source.notify()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)
        try:
            self.output.all_notes_off()  # again, in case playback could not
        except Exception:
            pass
        if self._old_switch is not None:
            sys.setswitchinterval(self._old_switch)
            self._old_switch = None
        atexit.unregister(self.stop)
        if self.error is None and self.status != "stopped":
            self._set_status("stopped")
        self._done.set()
        n = self._notifier
        if n is not None and n is not threading.current_thread():
            self._status_event.set()
            n.join(1.0)
            while self._status_lines and not n.is_alive():  # what came after it finished
                try:
                    self.on_status(self._status_lines.popleft())
                except Exception:
                    pass

    def wait(self, timeout: float | None = None) -> bool:
        """True once the stream has ended (stopped, ``bars`` played, or an error: see ``error``)."""
        return self._done.wait(timeout)

    @property
    def running(self) -> bool:
        return self._started and not self._done.is_set()

    def pause(self) -> None:
        """Silence now (all notes off) and hold the playhead; the decoder waits, ahead."""
        self._paused = True
        self.time_source.notify()

    def resume(self) -> None:
        """Go on where paused (following a DAW: from the next bar, on the DAW's next bar line)."""
        self._paused = False
        self.time_source.notify()

    @property
    def paused(self) -> bool:
        return self._paused

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- steering (applied by the decoder thread at the next Bar) ------------------------------
    def steer(self, condition=None, controls=None, sampling=None) -> None:
        """Queue a new condition / musical controls / sampling options for the next bar."""
        for what, value in (("set_condition", condition), ("set_controls", controls), ("set_sampling", sampling)):
            if value is not None and not hasattr(self.source, what):
                raise TypeError(f"this token source cannot be steered ({what} is missing)")
        with self._steer_lock:
            for what, value in (("set_condition", condition), ("set_controls", controls), ("set_sampling", sampling)):
                if value is not None:
                    self._pending[what] = value

    def set_image(self, rgb) -> tuple[float, float]:
        """Steer by a picture (RGB uint8): its image tokens and estimated VA from the next bar.
        The image encoder runs in the calling thread, not the decoder's. Returns the VA."""
        from engine.model.generator import Condition

        tokens, (v, a) = self.source.analyze_image(rgb)
        self.steer(condition=Condition(v, a, tokens))
        return v, a

    def set_va(self, valence: float, arousal: float) -> None:
        """Steer to a valence/arousal point (1-9), keeping the current picture's image tokens."""
        from engine.model.generator import Condition

        current = self._pending.get("set_condition") or getattr(self.source, "condition", None)
        tokens = getattr(current, "image_tokens", None)
        self.steer(condition=Condition(valence, arousal, tokens))

    def set_controls(self, controls) -> None:
        self.steer(controls=controls)

    def set_sampling(self, sampling) -> None:
        self.steer(sampling=sampling)

    def _apply_pending(self) -> None:
        with self._steer_lock:
            pending, self._pending = self._pending, {}
        for what, value in pending.items():
            getattr(self.source, what)(value)

    # -- status ------------------------------------------------------------------------------
    def _set_status(self, text: str) -> None:
        """Record a status line; ``on_status`` gets it from the notifier thread (playback never
        waits for a callback: printing to a full pipe or a GUI must not delay a note)."""
        if text == self.status:
            return
        self.status = text
        if self.on_status is not None:
            self._status_lines.append(text)
            self._status_event.set()

    def _notify_loop(self) -> None:
        while True:
            self._status_event.wait(0.1)
            self._status_event.clear()
            while self._status_lines:
                try:
                    self.on_status(self._status_lines.popleft())
                except Exception:
                    pass
            if self._done.is_set() and not self._status_lines:
                return

    def _fail(self, e: BaseException, where: str) -> None:
        if self.error is None:
            self.error = e
            self._set_status(f"error in {where}: {type(e).__name__}: {e}")
        self._stopping.set()
        self.time_source.notify()

    @property
    def bpm(self) -> float | None:
        return self.follower.bpm if self.follower is not None else self.clock.bpm

    # -- the decoder thread --------------------------------------------------------------------
    def _shared_decoder(self):
        """The source's own event decoder when it has one and is at the start of a piece (a
        generator keeps a :class:`engine.model.filters.state.MusicState`): its ``last_events``
        are then played as they are, with no second decoding of the tokens. Else our own."""
        state = getattr(self.source, "state", None)
        fresh = state is not None and getattr(state, "last", None) == BOS and getattr(state, "notes", 1) == 0
        if fresh and hasattr(self.source, "last_events"):
            return state.decoder
        return None

    def _decode_loop(self) -> None:
        shared = self._shared_decoder()
        dec = shared if shared is not None else StreamingDecoder(self.tokenizer)
        source = self.source
        order = _ORDER
        seq = 0
        put = self._queue.put
        bars_wanted = self.options.bars
        humanize = EventHumanizer(self.options.humanize_ms if self.follower is None else 0.0, self.options.humanize_seed)
        ts = self.time_source
        news = False  # events or horizon not yet announced to playback (ts.notify)
        try:
            while not self._stopping.is_set():
                ahead = self.options.ahead_bars * self.beats_per_bar
                if self.horizon - self.playhead >= ahead:
                    if news:
                        ts.notify()
                        news = False
                    ts.idle(None, self._stopping)  # until playback moves on
                    continue
                if news:  # before a source that may take a while (virtual time: may wait)
                    ts.notify()
                    news = False
                try:
                    token = self.source.next_token()
                except StopIteration:  # a finite source ran out
                    events = dec.finish()
                    end = max(dec.next_bar_beat, self.horizon)
                    for ev in events:
                        put((ev.beat, order[ev.kind], seq, ev)); seq += 1
                    put((end, order[END], seq, None))
                    self.horizon = float("inf")
                    self._decoder_done = True
                    ts.notify()
                    break
                self.tokens += 1
                for ev in (source.last_events if shared is not None else dec.feed(token)):
                    if ev.kind == BAR:
                        if bars_wanted is not None and ev.value >= bars_wanted:
                            put((ev.beat, order[END], seq, None))
                            self.horizon = float("inf")
                            self._decoder_done = True
                            ts.notify()
                            return
                        self.decoded_bars.append(ev.beat)
                        if len(self.decoded_bars) > 4096:  # endless streams: keep the recent bars only
                            del self.decoded_bars[:2048]
                        self.beats_per_bar = dec.beats_per_bar
                        self._apply_pending()  # the new bar is written under the new setting
                    if humanize.on and ev.kind in (NOTE_ON, NOTE_OFF):
                        ev = humanize(ev, self.clock.bpm)
                    put((ev.beat, order[ev.kind], seq, ev))
                    seq += 1
                    news = True
                if dec.beat > self.horizon:
                    self.horizon = dec.beat
                    news = True
        except BaseException as e:  # noqa: BLE001 - reported, and playback stops cleanly
            self._fail(e, "the decoder")
        finally:
            self._decoder_done = True
            ts.notify()

    # -- the playback thread ---------------------------------------------------------------------
