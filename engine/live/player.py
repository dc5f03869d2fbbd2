"""The live stream's playback thread, and what it keeps of what was played (capture).

:class:`Playback` is the half of :class:`engine.live.decoder.LiveStream` that runs on the playback
thread (see engine/live/decoder.py's docstring for the two threads): a heap of decoded events by beat,
sent at their time on the stream's own clock or the DAW's; the transport (start on the DAW's
bar, pause, a DAW stop or locate); MIDI clock out; and the records of what was played
(``played_notes``, ``played_bars``, ``timeline``) that :meth:`Playback.capture` writes to a file.
It reads and writes the stream's state set up in ``LiveStream.__init__``; it never decodes.
"""
from __future__ import annotations

import heapq
import io
import os
import queue
from dataclasses import dataclass, field
from pathlib import Path

from engine.takes.files import FileWriteError, write_atomic
from engine.live.clock import CLOCK, CONTINUE, SONG_POSITION, START, STOP, TICKS_PER_BEAT
from engine.live.ports import MidiOutput
from engine.music.events import BAR, NOTE_OFF, NOTE_ON, TEMPO, TIME_SIGNATURE
from engine.music.tokenizer import held_until_repeat


class CaptureError(ValueError):
    """Nothing to capture yet, or the file cannot be written; one line for the user."""


@dataclass
class _Run:
    """The playback thread's own state while it plays (no other thread reads it). ``out``,
    ``follower`` and ``ts`` are the stream's, taken once as the thread starts."""

    out: MidiOutput
    follower: object  # a ClockFollower, or None on our own clock
    ts: object  # the stream's time source: now / wait_until / idle / notify
    clock_out: bool  # we send MIDI clock (only on our own clock)
    heap: list = field(default_factory=list)  # (beat, kind order, seq, event; None = the end)
    owner: dict = field(default_factory=dict)  # pitch -> onset beat of the note that holds it
    playing: bool = False
    offset: float = 0.0  # clock beat = music beat + offset (DAW song beats; 0 on our own clock)
    resume_at: float = 0.0  # music beat playback (re)starts from
    skip_before: float = 0.0  # note-ons before this beat are not played (after a restart)
    generation: object = None  # the follower's generation playback last aligned to
    next_tick: float | None = None  # music beat of the next MIDI clock we send (clock_out)
    tick0: float = 0.0  # ... = tick0 + ticks / 24
    ticks: int = 0
    was_behind: bool = False  # the playhead was past the decoded music at the last look


class Playback:
    """The playback thread of :class:`engine.live.decoder.LiveStream` (a base class: one job, one file)."""

    def _play_loop(self) -> None:
        opt, follower = self.options, self.follower
        run = _Run(self.output, follower, self.time_source, opt.clock_out and follower is None)
        if opt.realtime:
            try_realtime()
        try:
            while not self._stopping.is_set():
                self._take_decoded(run.heap)
                now = run.ts.now()
                self._follow_transport(run, now)
                if not run.playing and not self._start_playing(run, now):
                    self._idle(run, 0.002)  # paused, or waiting for decoded music or the DAW
                    continue
                if not self._move_playhead(run, now):
                    self._idle(run, 0.001)  # the DAW stopped between our checks
                    continue
                nxt = self._next_due(run)
                if nxt is None:  # nothing to send, or its time not known yet
                    self._idle(run, 0.001)
                    continue
                beat, due, is_tick = nxt
                sent_at = self._wait_until_due(run, beat, due)
                if sent_at is None:  # woken early: look at the queue and transport again
                    continue
                if is_tick:
                    self._send_tick(run)
                    continue
                ev = heapq.heappop(run.heap)[3]
                if ev is None:
                    self._end_of_stream(beat)
                    break
                self._send_event(run, ev, beat, due, sent_at)
        except BaseException as e:  # noqa: BLE001
            self._fail(e, "playback")
        finally:
            self._finish(run)

    def _idle(self, run: _Run, seconds: float) -> None:
        """Nothing to do until another thread moves (or ``seconds`` pass)."""
        run.ts.idle(seconds, self._stopping)

    def _take_decoded(self, heap: list) -> None:
        """Move what the decoder has made from its queue onto the heap."""
        q = self._queue
        while True:
            try:
                heapq.heappush(heap, q.get_nowait())
            except queue.Empty:
                break

    # -- transport: start, pause, DAW start/stop -------------------------------------------------
    def _silence(self, run: _Run) -> None:
        run.playing = False
        run.out.all_notes_off()
        run.owner.clear()

    def _follow_transport(self, run: _Run, now: float) -> None:
        """Stop playing where the DAW moved (start, stop, locate) or the stream is paused."""
        follower = run.follower
        if follower is not None and follower.generation != run.generation and run.playing:
            run.generation = follower.generation  # the DAW moved: stop here, realign in _start_playing
            self._silence(run)
            run.resume_at = self._next_bar_after(self.playhead)
        if self._paused and run.playing:
            if follower is None:  # hold the beat sounding now (playhead was set at the last event)
                self.playhead = max(self.playhead, self.clock.beat_at(now))
            self._silence(run)
            if run.clock_out:
                run.out.send((STOP,))
            run.resume_at = self._next_bar_after(self.playhead) if follower else self.playhead
            self._set_status("paused")

    def _start_playing(self, run: _Run, now: float) -> bool:
        """(Re)start at ``run.resume_at`` once enough is decoded: on our own clock after the
        preroll, following a DAW on its next bar line. False: not yet (paused, or waiting)."""
        opt, follower = self.options, run.follower
        if self._paused or not self._ready_from(run.resume_at, run.heap):
            return False
        if follower is None:
            if self.follow_model_tempo:  # bar 1 at the model's tempo, not default_bpm
                self._tempo_from(run.heap, run.resume_at)
            self.clock.start(now + opt.preroll_s, run.resume_at)
            run.offset = 0.0
            if run.clock_out:
                run.tick0, run.ticks = self._start_clock_out(run.out, run.resume_at), 0
                run.next_tick = run.tick0
        else:
            run.generation = follower.generation
            # The DAW's clock has already been running: no preroll needed beyond
            # our own reaction time, so pressing play at a bar line starts there.
            bar = follower.next_bar(now + 0.003)
            if bar is None:
                self._set_status(follower.status if not follower.running
                                 else "waiting for the DAW's tempo")
                return False
            run.offset = bar - run.resume_at
        run.skip_before = run.resume_at
        run.playing = True
        self._set_status(self._playing_status())
        return True

    def _move_playhead(self, run: _Run, now: float) -> bool:
        """Set the playhead to the beat sounding ``now`` (the decoder may go on) and count an
        underrun when it passes the decoded music. False: the DAW has stopped."""
        follower = run.follower
        beat_now = self.clock.beat_at(now) if follower is None else follower.beat_at(now)
        if beat_now is None:
            return False
        playhead = max(run.resume_at, beat_now - run.offset)
        if playhead != self.playhead:
            self.playhead = playhead
            run.ts.notify()  # the decoder may go on
        behind = self.playhead > self.horizon and not self._decoder_done
        if behind and not run.was_behind:
            self._underrun()
        run.was_behind = behind
        return True

    # -- the next event (or clock tick) and when it is due -------------------------------------
    def _next_due(self, run: _Run) -> tuple[float, float, bool] | None:
        """The next event or MIDI clock: (its music beat, the time it is due, whether it is a
        clock tick); None when there is nothing to send or its time is not known yet."""
        heap, next_tick = run.heap, run.next_tick
        if not heap and next_tick is None:
            return None
        beat = heap[0][0] if heap else float("inf")
        # A clock goes before an event at the same beat, except the end (no clock there).
        is_tick = next_tick is not None and (next_tick < beat or (next_tick == beat and heap[0][3] is not None))
        if is_tick:
            beat = next_tick
        due_of = self.clock.time_of if run.follower is None else run.follower.time_of
        due = due_of(beat + run.offset)
        if due is None:
            return None
        return beat, due, is_tick

    def _wait_until_due(self, run: _Run, beat: float, due: float) -> float | None:
        """Wait until ``due``; the time it is then, or None when woken early. On our own clock an
        event more than ``late_s`` late (the decoder fell behind) slips the clock so that it
        sounds now and the music after it keeps its rhythm (late, never dropped)."""
        if not run.ts.wait_until(due, self._stopping):
            return None
        sent_at = run.ts.now()
        late = sent_at - due
        if run.follower is None and late > self.options.late_s and beat >= run.skip_before:
            self.clock.start(sent_at, beat)
            self.slips += 1
        return sent_at

    # -- sending ---------------------------------------------------------------------------------
    def _send_tick(self, run: _Run) -> None:
        run.out.send((CLOCK,))
        run.ticks += 1
        run.next_tick = run.tick0 + run.ticks / TICKS_PER_BEAT

    def _send_event(self, run: _Run, ev, beat: float, due: float, sent_at: float) -> None:
        """Play one decoded event at its beat (due at ``due``, sent at ``sent_at``)."""
        kind = ev.kind
        if kind == NOTE_ON:
            self._send_note_on(run, ev, beat, due, sent_at)
        elif kind == NOTE_OFF:
            if run.owner.get(ev.pitch) == ev.value:  # only the note that still holds the key
                del run.owner[ev.pitch]
                run.out.note_off(ev.pitch, self.options.channel)
        elif kind == TEMPO:
            if self.follow_model_tempo:
                try:
                    self.clock.set_tempo(ev.value, beat)
                except ValueError:
                    pass
        elif kind == TIME_SIGNATURE:
            self.time_signature = tuple(ev.value)
            self.played_metres.append((beat, self.time_signature))
        elif kind == BAR:
            self.played_bars.append((ev.value, beat))
            self.bar_lines_played += 1
            self._set_status(self._playing_status())

    def _send_note_on(self, run: _Run, ev, beat: float, due: float, sent_at: float) -> None:
        """Send a note-on, unless it is before a restart's beat (not part of the music asked
        for) or, following a DAW, too late to play in time; counted either way."""
        if beat < run.skip_before:
            return
        opt = self.options
        late = sent_at - due
        self.notes_planned += 1
        if late > opt.warn_late_s:
            self._late_note(late)
        if late > opt.late_s and run.follower is not None:
            self.notes_skipped += 1
            return
        pitch, ch = ev.pitch, opt.channel
        if pitch in run.owner:  # the same key again while sounding: release it first
            run.out.note_off(pitch, ch)
        run.owner[pitch] = beat
        self.notes_sent += 1
        if late * 1000.0 > self.max_late_ms:
            self.max_late_ms = late * 1000.0
        if run.out.note_on(pitch, ev.velocity, ch):
            self.timeline.append((beat, due, sent_at, pitch))  # handed to the port
        else:
            self._port_refused()
        self.played_notes.append((beat, pitch, ev.velocity, ev.value))

    def _port_refused(self) -> None:
        """The port is gone or reconnecting: the note is counted as failed, and the status
        line says so at the first and every 100th."""
        self.notes_failed += 1
        if self.notes_failed == 1 or self.notes_failed % 100 == 0:
            self._set_status(self._playing_status())

    # -- the end -----------------------------------------------------------------------------------
    def _end_of_stream(self, beat: float) -> None:
        """END: the bars asked for are played; their last bar is complete."""
        bar_no = self.played_bars[-1][0] + 1 if self.played_bars else 0
        self.played_bars.append((bar_no, beat))
        self.bar_lines_played += 1
        opt = self.options
        self._set_status(f"played {opt.bars} bars" if opt.bars else "the source ended")

    def _finish(self, run: _Run) -> None:
        """However playback ends: every note off (and MIDI Stop if we sent clock), then the
        stream is marked stopping and done."""
        try:
            run.out.all_notes_off()
            if run.clock_out and run.next_tick is not None:
                run.out.send((STOP,))
        finally:
            self._stopping.set()
            run.ts.notify()
            if self.error is None:
                self._set_status("stopped" if not self.status.startswith("played") else self.status)
            self._done.set()

    def _start_clock_out(self, out: MidiOutput, beat: float) -> float:
        if beat <= 0:
            out.send((START,))
        else:
            sixteenths = int(round(beat * 4))
            out.send((SONG_POSITION, sixteenths & 0x7F, (sixteenths >> 7) & 0x7F))
            out.send((CONTINUE,))
            beat = sixteenths / 4.0
        return beat

    def _ready_from(self, beat: float, heap: list) -> bool:
        """Is enough music decoded to start playing at ``beat``? The first start waits for
        ``start_bars`` of decoded music (the model's prefill and warm-up happen before the clock
        runs, so bar 1 is never late); a restart, for a note-on at or after ``beat`` (in
        ``heap``, the playback thread's events) or ``start_beats`` of music; either, for the end."""
        opt = self.options
        if self._decoder_done:
            return True
        if self.notes_planned == 0 and not self.played_bars:  # nothing played yet
            return self.horizon >= beat + opt.start_bars * self.beats_per_bar
        if self.horizon >= beat + opt.start_beats:
            return True
        return any(e[3] is not None and e[3].kind == NOTE_ON and e[0] >= beat for e in heap)

    def _tempo_from(self, heap: list, beat: float) -> None:
        """Set the clock to the last tempo event at or before ``beat`` (decoded, not yet
        played): the first bar then starts at the model's tempo, and the status says it."""
        tempi = [(e[0], e[2], e[3].value) for e in heap
                 if e[3] is not None and e[3].kind == TEMPO and e[0] <= beat + 1e-9]
        if tempi:
            try:
                self.clock.set_tempo(max(tempi)[2], beat)
            except ValueError:
                pass

    def _next_bar_after(self, beat: float) -> float:
        bars = self.decoded_bars
        for b in bars[-64:]:
            if b >= beat - 1e-9:
                return b
        bpb = self.beats_per_bar
        return -(-beat // bpb) * bpb

    def _underrun(self) -> None:
        """The playhead passed the decoded music. Counted only: a gap with nothing due in it is
        not late; a note that really goes out late is reported by :meth:`_late_note`."""
        self.underruns += 1

    def _late_note(self, late: float) -> None:
        """A note-on went out (or, following a DAW, was skipped) ``late`` seconds after its time."""
        self.notes_late += 1
        self.worst_late_ms = max(self.worst_late_ms, late * 1000.0)
        if self.notes_late == 1 or self.notes_late % 10 == 0:
            what = "notes are skipped" if self.follower is not None else "notes come late"
            self._set_status(f"the decoder is behind real time: {what}, {self.notes_late} so far, up to "
                             f"{self.worst_late_ms:.0f} ms late (a faster device, a lower emotion "
                             "strength, a smaller bundle or a lower tempo helps)")

    @property
    def shortfall(self) -> int:
        """Note-ons that were due but did not reach the port: skipped (late) or refused by it."""
        return self.notes_skipped + self.notes_failed

    def _playing_status(self) -> str:
        bar = self.played_bars[-1][0] + 1 if self.played_bars else 1  # 1-based, as DAWs count
        where = "following the DAW" if self.follower is not None else "own tempo"
        bpm = self.bpm
        tempo = f"{bpm:.1f} BPM" if bpm else "tempo unknown"
        line = f"playing bar {bar} at {tempo} ({where})"
        if self.shortfall:
            line += f"; {self.shortfall} of {self.notes_planned} notes did not reach the port"
        return line

    # -- capture -------------------------------------------------------------------------------
    def capture(self, path, bars: int = 8) -> Path:
        """Write the last ``bars`` complete bars that were played to a MIDI file; returns its path."""
        import mido

        if bars < 1:
            raise CaptureError(f"bars must be at least 1, got {bars}")
        played = list(self.played_bars)
        if len(played) < 2:
            raise CaptureError("nothing to capture yet: not one whole bar has been played")
        first = played[max(0, len(played) - 1 - bars)]
        start, end = first[1], played[-1][1]
        notes = [n for n in list(self.played_notes) if start <= n[0] < end]
        tpq = 480
        bpm = self.bpm or self.options.default_bpm
        ch = self.options.channel
        # The metre in force at the start, then its changes inside the captured bars.
        metres = list(self.played_metres)
        first_metre = next((m for b, m in reversed(metres) if b <= start), (4, 4))
        msgs = [(0, 0, mido.MetaMessage("time_signature", numerator=first_metre[0], denominator=first_metre[1]))]
        msgs += [(round((b - start) * tpq), 0, mido.MetaMessage("time_signature", numerator=m[0], denominator=m[1]))
                 for b, m in metres if start < b < end]
        held = held_until_repeat([(pitch, onset, dur) for onset, pitch, _, dur in notes])  # one note per key
        for (onset, pitch, vel, _), dur in zip(notes, held):  # (tick, order, message)
            on = round((onset - start) * tpq)
            off = max(on + 1, round((min(onset + dur, end) - start) * tpq))
            msgs.append((on, 2, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
            msgs.append((off, 1, mido.Message("note_off", channel=ch, note=pitch, velocity=0)))
        msgs.sort(key=lambda m: (m[0], m[1]))
        track = mido.MidiTrack([
            mido.MetaMessage("track_name", name="Moodroll", time=0),
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0),
            mido.Message("program_change", channel=ch, program=0, time=0),
        ])
        now = 0
        for tick, _, msg in msgs:
            track.append(msg.copy(time=tick - now))
            now = tick
        end_tick = round((end - start) * tpq)
        track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
        mid = mido.MidiFile(type=0, ticks_per_beat=tpq)
        mid.tracks.append(track)

        path = Path(path)
        buf = io.BytesIO()
        mid.save(file=buf)
        try:
            write_atomic(path, buf.getvalue())
        except FileWriteError as e:
            raise CaptureError(str(e)) from None
        return path


# Above every ordinary thread, below the MIDI system's own real-time threads: a JACK server runs
# its clients' process threads at its priority - 5 (5 on a default server) and itself above them.
# At 10 the playback thread, spinning up to spin_s before each event, preempted those clients on
# a busy machine; a JACK client late for its cycle loses that cycle's MIDI (docs/reliability.md
# section 9).
REALTIME_PRIORITY = 1


def try_realtime() -> None:
    """Real-time (SCHED_FIFO) priority for the calling thread where the OS allows it; else nothing."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
    except (AttributeError, OSError, PermissionError):
        pass
