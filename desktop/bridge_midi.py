"""The bridge's MIDI side: listing and opening ports, the preview sink, the DAW clock.

A mixin of :class:`desktop.bridge.EngineBridge` (it uses the bridge's worker, signals and
state): every port is opened on the engine worker; the stream always plays to the bridge's
:class:`engine.live.sinks.FanOut`, whose sinks (the port, the preview synth) are swapped in one
assignment, so a new port or the preview takes over while playing without a restart.
"""
from __future__ import annotations

import sys

from engine.errors import first_line  # noqa: F401  (the bridge's one-line errors)


def midi_hint() -> str:
    """How to get a MIDI system on this OS (one line)."""
    if sys.platform == "win32":
        return "install loopMIDI (or Windows MIDI Services), create a port, then choose it in the port list"
    if sys.platform == "darwin":
        return "CoreMIDI is part of macOS: check Audio MIDI Setup, or start JACK"
    return "load the ALSA sequencer (sudo modprobe snd-seq) or start a JACK server (e.g. QjackCtl)"


class BridgeMidiMixin:
    # -- MIDI ports -----------------------------------------------------------------------------
    def list_ports(self) -> None:
        def probe():
            from engine.live.ports import list_ports, resolve_api

            table = list_ports(self.midi_api) if self.midi_api else {a: v for a, v in list_ports().items()
                                                                        if a in resolve_api()}
            names, errors = [], []
            for api, ports in table.items():
                if "error" in ports:
                    errors.append(ports["error"])
                else:
                    names += [p for p in ports["outputs"] if not p.split(":")[0].startswith(self.port_name)]
            ok = any("error" not in p for p in table.values())
            return names, "" if ok else f"no MIDI system ({'; '.join(errors) or 'none found'}): {midi_hint()}"

        self._run(probe, lambda res: self.portsListed.emit(*res),
                  lambda m: self.portsListed.emit([], f"{m}: {midi_hint()}"))

    def choose_port(self, name: str | None) -> None:
        """None = our virtual port; else an existing port. Reopened now (also while playing)."""
        if name == self.port_choice and self.output is not None:
            return
        self.port_choice = name
        if self.output is not None:
            self._run(self._open_output, lambda _: self.message.emit("info", self.output.status if self.output else ""))

    def _open_output(self):
        """Worker: (re)open the chosen port and swap it into the FanOut; returns the port or None."""
        from engine.live.ports import MidiOutput, MidiPortError

        old = self.output
        try:
            new = MidiOutput(self.port_choice, api=self.midi_api, name=self.port_name)
        except MidiPortError as e:
            new = None
            line = first_line(e)
            hint = f". {midi_hint()}" if "cannot use MIDI API" in line else " (choose another port under Out)"
            self.message.emit("error", line + hint + ("; the preview sound goes on" if self.preview is not None else ""))
        self.output = new
        self._rewire()
        if old is not None:
            old.close()  # all notes off first
        return new

    def enable_preview(self, on: bool) -> None:
        """Turn the built-in preview synth on (opens the audio device, on the worker) or off."""
        if not on:
            old = self.preview
            self.set_preview(None)
            if old is not None:
                self._run(old.close)
            self.previewChanged.emit(False, "preview sound off")
            return

        def open_synth():
            from desktop.preview import PreviewSynth

            return PreviewSynth()

        def done(sink):
            self.set_preview(sink)
            self.previewChanged.emit(True, sink.status)

        def failed(line):
            self.previewChanged.emit(False, line)

        self._run(open_synth, done, failed)

    def set_preview(self, sink) -> None:
        """The built-in preview synth (a MidiOutput-like sink), or None to turn it off."""
        old, self.preview = self.preview, sink
        self._rewire()
        if old is not None and old is not sink:
            old.all_notes_off()

    def _rewire(self) -> None:
        sinks = [s for s in (self.output, self.preview) if s is not None]
        gone = [s for s in self.fan.sinks if s not in sinks]
        self.fan.sinks = sinks  # one assignment: the playback thread sees the old or the new list
        for s in gone:
            s.all_notes_off()

    # -- DAW clock ------------------------------------------------------------------------------
    def set_sync(self, on: bool) -> None:
        """Follow the DAW's MIDI clock on a virtual input port (restarts a playing stream)."""
        on = bool(on)
        if on == self.sync:
            return
        self.sync = on
        playing = self.stream is not None and self.stream.running

        def switch():
            from engine.live.clock import ClockFollower
            from engine.live.ports import MidiInput

            if self.performance is not None:
                self.performance.stop()
            if self.follower is not None:
                self.follower.close()
                self._clock_in.close()
                self.follower = self._clock_in = None
            if on:
                self._clock_in = MidiInput(None, api=self.midi_api, name=self.clock_name)
                self.follower = ClockFollower(self._clock_in).start()
            return playing

        self._run(switch, lambda was: self.play() if was else self.playingChanged.emit(False),
                  lambda m: self.message.emit("error", f"Sync to DAW: {m}. {midi_hint()}"))

    def clock_state(self) -> tuple[str, float | None, bool]:
        f = self.follower
        if f is None:
            return "", None, False
        return f.status, f.bpm, f.ready

    def port_status(self) -> tuple[str, bool]:
        o = self.output
        if o is None:
            return ("no MIDI port" if self.preview is None else "preview sound only"), False
        return o.status, o.connected
