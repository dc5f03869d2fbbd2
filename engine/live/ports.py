"""MIDI ports: the virtual "Moodroll" output a DAW records from, and timestamped inputs.

Built on python-rtmidi (the library under mido's ``rtmidi`` backend). We use it directly
rather than through mido ports for three things mido's port wrapper hides: the client name
(what a DAW shows), the per-message timestamps of an input (mido's callback drops them; the
clock follower needs them), and one long-lived "probe" client to watch a port come and go.
mido is used for messages and files elsewhere (capture, tests).

APIs
----
rtmidi talks to one MIDI system at a time: ``alsa`` and ``jack`` (Linux), ``coremidi``
(macOS), ``winmm`` (Windows). Choose one with ``api=`` / ``--midi-api`` or the environment
variable ``MOODROLL_MIDI_API``; otherwise the platform's systems are tried in order (Linux:
ALSA, then JACK). Windows cannot create virtual ports from Python: :func:`open_output`
then says to create one with loopMIDI or Windows MIDI Services and pass its name.

Ports
-----
* :func:`open_output` creates a virtual output port (default name "Moodroll") or connects to
  an existing input port of another program by name. :class:`MidiOutput` remembers which
  notes are sounding, so :meth:`MidiOutput.all_notes_off` can end every one of them (and send
  CC 123). A monitor thread notices when the port it is connected to vanishes (a synth quits,
  a JACK server dies): sending then does nothing and :attr:`MidiOutput.status` says so, and
  the port is reopened when it returns. Nothing here ever raises out of :meth:`send`.
* :func:`open_input` creates a virtual input port (default "Moodroll Clock In") or connects to
  an existing output port. :meth:`MidiInput.poll` returns ``(time, message)`` pairs where
  ``time`` is the arrival time on :func:`time.monotonic`'s clock, rebuilt from rtmidi's
  per-message delta times (taken by the MIDI system's own thread), so it does not depend on
  when Python gets round to polling.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import Iterable, Sequence

import rtmidi

from engine.live.sinks import ALL_NOTES_OFF, Sink

ENV_API = "MOODROLL_MIDI_API"
DEFAULT_OUTPUT_NAME = "Moodroll"
DEFAULT_CLOCK_IN_NAME = "Moodroll Clock In"

# Our names -> rtmidi API constants (aliases accepted by resolve_api).
APIS: dict[str, int] = {
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "winmm": rtmidi.API_WINDOWS_MM,
}
ALIASES = {"core": "coremidi", "macos": "coremidi", "mac": "coremidi", "windows": "winmm",
           "mm": "winmm", "linux_alsa": "alsa", "unix_jack": "jack", "macosx_core": "coremidi",
           "windows_mm": "winmm"}
# Systems tried in order when none is chosen.
PLATFORM_ORDER = {"linux": ["alsa", "jack"], "darwin": ["coremidi", "jack"], "win32": ["winmm"]}

WINDOWS_HINT = ("Windows cannot create virtual MIDI ports from Python: create one with loopMIDI "
                "(https://www.tobias-erichsen.de/software/loopmidi.html) or Windows MIDI Services, "
                "then pass its name, e.g. --port \"loopMIDI Port\"")



class MidiPortError(RuntimeError):
    """A port that cannot be opened or found; the message is one line meant for the user."""


@contextlib.contextmanager
def quiet_stderr():
    """Silence the C libraries' own chatter (libjack, alsa-lib, libpng) on file descriptor 2.
    One thread at a time (a lock): two overlapping redirects could restore the wrong fd and
    leave stderr silenced for good."""
    with _QUIET_LOCK:
        yield from _quiet_stderr()


_QUIET_LOCK = threading.RLock()


def _quiet_stderr():
    try:
        fd = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            sys.stderr.flush()
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(fd, 2)
    finally:
        os.close(fd)


def compiled_apis() -> list[str]:
    """The MIDI systems this python-rtmidi build supports, by our names."""
    have = set(rtmidi.get_compiled_api())
    return [name for name, api in APIS.items() if api in have]


def resolve_api(name: str | None = None) -> list[str]:
    """The API(s) to try: ``name`` (a flag), else ``$MOODROLL_MIDI_API``, else the platform's order."""
    name = name or os.environ.get(ENV_API) or None
    if name:
        key = ALIASES.get(name.strip().lower(), name.strip().lower())
        if key not in APIS:
            raise MidiPortError(f"unknown MIDI API {name!r}; choose one of {', '.join(APIS)}")
        if key not in compiled_apis():
            raise MidiPortError(f"MIDI API {key!r} is not available in this python-rtmidi build "
                                f"(available: {', '.join(compiled_apis()) or 'none'})")
        return [key]
    order = PLATFORM_ORDER.get(sys.platform, PLATFORM_ORDER["linux"])
    return [a for a in order if a in compiled_apis()] or compiled_apis()


def _client(kind, api: str, name: str):
    """A new rtmidi MidiIn/MidiOut client on ``api``; MidiPortError if that MIDI system is down."""
    try:
        with quiet_stderr():
            return kind(APIS[api], name=name)
    except (SystemError, RuntimeError, rtmidi.RtMidiError) as e:
        reason = str(e).split("::")[-1].strip() or type(e).__name__
        if api == "jack":
            reason = "no JACK server is running (start one, e.g. with QjackCtl, or choose --midi-api alsa)"
        elif api == "alsa":
            reason = "the ALSA sequencer is not available (/dev/snd/seq; load snd-seq or choose --midi-api jack)"
        raise MidiPortError(f"cannot use MIDI API {api}: {reason}") from None


def list_ports(api: str | None = None) -> dict[str, dict]:
    """``{api: {"inputs": [...], "outputs": [...]}}`` or ``{api: {"error": "..."}}`` per MIDI system.

    "inputs" are ports we can read from (other programs' outputs), "outputs" ports we can
    send to. With no ``api`` every compiled system is listed.
    """
    apis = resolve_api(api) if api else compiled_apis()
    out: dict[str, dict] = {}
    for a in apis:
        try:
            mi, mo = _client(rtmidi.MidiIn, a, "Moodroll probe"), _client(rtmidi.MidiOut, a, "Moodroll probe")
            with quiet_stderr():
                out[a] = {"inputs": list(mi.get_ports()), "outputs": list(mo.get_ports())}
            mi.delete(), mo.delete()
        except MidiPortError as e:
            out[a] = {"error": str(e)}
    return out


def find_port(names: Sequence[str], wanted: str) -> int | None:
    """Index of the port called ``wanted``: exact name, else the one name containing it
    (case-insensitive; JACK and ALSA add "client:" prefixes and ALSA adds " 128:0")."""
    if wanted in names:
        return list(names).index(wanted)
    low = wanted.lower()
    hits = [i for i, n in enumerate(names) if low in n.lower()]
    if len(hits) == 1:
        return hits[0]
    exact_port = [i for i, n in enumerate(names) if n.lower().split(":", 1)[-1].strip() == low]
    return exact_port[0] if len(exact_port) == 1 else None


def _ports_line(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(repr(n) for n in names) if names else "none"


class _Port:
    """What MidiOutput and MidiInput share: open on an API, virtual or by name, and the monitor.

    Each port is one rtmidi client. Watching whether a port is still there needs a second
    client (the "probe"): opened with the port when a monitor thread watches it (a client
    appearing later would make JACK reorganise its graph mid-stream, a hiccup in the timing),
    else on the first :meth:`check`. Ports that are never watched have none.
    """

    kind = rtmidi.MidiOut  # the rtmidi class of this port

    def __init__(self, port: str | None, api: str | None, name: str, monitor_s: float):
        self.name = name
        self.target = port  # None: our own virtual port
        self.virtual = port is None
        self.full_name = name  # as the MIDI system lists it (e.g. "Moodroll:Moodroll" on JACK)
        self._lock = threading.Lock()  # the port's client (sending never waits for it)
        self._probe_lock = threading.Lock()  # the probe client
        self._closed = False
        self._rt = self._probe = None
        self._misses = 0
        self.connected = False
        self.status = "opening"
        errors = []
        for a in resolve_api(api):
            try:
                self._open(a)
                self.api = a
                break
            except MidiPortError as e:
                errors.append(str(e))
        else:
            raise MidiPortError(errors[0] if len(errors) == 1 else "; ".join(errors))
        self._monitor_s = monitor_s
        if monitor_s > 0:
            with contextlib.suppress(Exception):
                self._present()  # opens the probe now, before any streaming
            threading.Thread(target=self._watch, name=f"midi-monitor {name}", daemon=True).start()

    # -- opening -----------------------------------------------------------------------
    def _open(self, api: str) -> None:
        if self.virtual and api == "winmm":
            raise MidiPortError(WINDOWS_HINT)
        rt = _client(self.kind, api, self.name)
        try:
            with quiet_stderr():
                if self.virtual:
                    rt.open_virtual_port(self.name)
                    full_name = self.name
                else:
                    names = rt.get_ports()
                    i = find_port(names, self.target)
                    if i is None:
                        what = "output" if self.kind is rtmidi.MidiOut else "input"
                        raise MidiPortError(f"no MIDI {what} port {self.target!r} on {api}; "
                                            f"available: {_ports_line(names)}")
                    full_name = names[i]
                    rt.open_port(i, self.name)
        except (rtmidi.RtMidiError, SystemError, RuntimeError) as e:
            rt.delete()
            raise MidiPortError(f"cannot open MIDI port {self.target or self.name!r} on {api}: {e}") from None
        except MidiPortError:
            rt.delete()
            raise
        self._rt, self.full_name = rt, full_name
        self._after_open()
        self.connected = True
        self.status = (f"virtual port {self.name!r} open on {api}" if self.virtual
                       else f"connected to {self.full_name!r} on {api}")

    def _after_open(self) -> None:
        pass

    # -- monitoring --------------------------------------------------------------------
    def _present(self) -> bool:
        """Is the port we use still there? (Our virtual port: is the MIDI system alive?)"""
        with self._probe_lock:
            if self._closed:
                return False
            for attempt in (0, 1):
                if self._probe is None:
                    # Our virtual port is listed by the other direction's clients; a port we
                    # connect to by our own direction's. (MidiPortError: the MIDI system is down.)
                    other = rtmidi.MidiIn if self.kind is rtmidi.MidiOut else rtmidi.MidiOut
                    self._probe = _client(other if self.virtual else self.kind, self.api, f"{self.name} monitor")
                try:
                    with quiet_stderr():
                        names = self._probe.get_ports()
                    break
                except Exception:  # a failing probe says nothing about the port: ask a fresh one once
                    with contextlib.suppress(Exception):
                        self._probe.delete()
                    self._probe = None
                    if attempt:
                        raise
        if self.virtual:  # a port of that name is listed: the MIDI system is alive
            mine = [n for n in names if n.lower().split(":", 1)[-1].strip().startswith(self.name.lower())]
            if mine and self.full_name == self.name:
                self.full_name = mine[-1]  # how the system lists it (the newest, if several)
            return bool(mine)
        return find_port(names, self.full_name) is not None

    MISSES = 2  # a port counts as gone after this many looks in a row do not find it

    def check(self) -> bool:
        """Look whether the port is still there; reopen it when it has come back. A port
        missing from one look only (a busy MIDI system) is not yet counted as gone."""
        if self._closed:
            return False
        try:
            present = self._present()
        except Exception:
            present = False
        self._misses = 0 if present else self._misses + 1
        if self.connected and (present or self._misses < self.MISSES):
            return True
        if self.connected:
            self.connected = False
            self.status = f"MIDI port {self.full_name!r} disappeared; nothing is sent until it returns"
            self._on_lost()
        if present or self.virtual:  # it is back (or, for our own port, the MIDI system may be)
            self._reopen()
        return self.connected

    def _reopen(self) -> None:
        old = self._rt
        with self._lock:
            try:
                self._open(self.api)
            except MidiPortError:
                return
            with contextlib.suppress(Exception):
                old.close_port()
                old.delete()
        if self.virtual:  # the MIDI system itself came back: a fresh probe too
            with self._probe_lock:
                if self._probe is not None:
                    with contextlib.suppress(Exception):
                        self._probe.delete()
                    self._probe = None
        self.status = "reconnected: " + self.status

    def _on_lost(self) -> None:
        pass

    def _watch(self) -> None:
        while not self._closed:
            time.sleep(self._monitor_s)
            if not self._closed:
                with contextlib.suppress(Exception):  # a monitor must never take the program down
                    self.check()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._lock:
            with contextlib.suppress(Exception):
                self._rt.close_port()
                self._rt.delete()
        with self._probe_lock:
            if self._probe is not None:
                with contextlib.suppress(Exception):
                    self._probe.delete()
                self._probe = None
        self.connected = False
        self.status = "closed"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def heard(on: set[tuple[int, int]], m: Sequence[int]) -> set[tuple[int, int]]:
    """The ``(channel, pitch)`` notes a synth plays after receiving message ``m``, given ``on``
    before it (updated in place where it can be; use the result)."""
    if len(m) < 3:
        return on
    kind, ch = m[0] & 0xF0, m[0] & 0x0F
    if kind == 0x90 and m[2] > 0:
        on.add((ch, m[1]))
    elif kind == 0x80 or (kind == 0x90 and m[2] == 0):
        on.discard((ch, m[1]))
    elif kind == 0xB0 and m[1] in (120, ALL_NOTES_OFF):  # all sound off / all notes off
        on = {n for n in on if n[0] != ch}
    return on


def sounding_notes(messages: Iterable[tuple[float, Sequence[int]]]) -> set[tuple[int, int]]:
    """``(channel, pitch)`` of the notes a synth that received ``(time, bytes)`` ``messages``
    would still be playing (note-on without its note-off; CC 120 / 123 end a channel's notes)."""
    on: set[tuple[int, int]] = set()
    for _, m in messages:
        on = heard(on, m)
    return on


def note_ons(messages: Iterable[tuple[float, Sequence[int]]]) -> list[tuple[float, int, int]]:
    """``(time, pitch, velocity)`` of every note-on (velocity > 0) among ``(time, bytes)`` messages."""
    return [(t, m[1], m[2]) for t, m in messages if len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2] > 0]


class MidiOutput(Sink, _Port):
    """An output port that never raises from :meth:`send` and knows which notes are sounding."""

    kind = rtmidi.MidiOut

    def __init__(self, port: str | None = None, api: str | None = None,
                 name: str = DEFAULT_OUTPUT_NAME, monitor_s: float = 0.5):
        self._init_notes()
        self.sent = 0
        self.failed = 0
        super().__init__(port, api, name, monitor_s)

    def send(self, message: Sequence[int]) -> bool:
        """Send raw MIDI bytes; False when the port is gone or being reopened. Never raises
        and never waits (a reconnect in progress drops the message instead)."""
        if not self.connected or not self._lock.acquire(blocking=False):
            self.failed += 1
            return False
        try:
            self._rt.send_message(message)
            self.sent += 1
            return True
        except Exception as e:  # rtmidi errors, a client torn down under us
            self.failed += 1
            self.connected = False
            self.status = f"sending to {self.full_name!r} failed ({e}); will reconnect"
            return False
        finally:
            self._lock.release()

    def _on_lost(self) -> None:
        self.sounding.clear()  # the receiver is gone, and its notes with it

    def close(self) -> None:
        if not self._closed and self.connected:
            self.all_notes_off()
        super().close()


class MidiInput(_Port):
    """An input port read by polling, with arrival times on :func:`time.monotonic`'s clock.

    rtmidi stamps every message with the time since the previous one, measured by the MIDI
    system's own thread. Summing them gives each message's time on the input's own clock;
    ``offset`` maps that clock to ``time.monotonic()``: it is the smallest ``poll time -
    input time`` seen, i.e. the offset measured by the poll that came closest to an arrival
    (it relaxes by 20 ppm per second so slow drift between the two clocks is followed).
    """

    kind = rtmidi.MidiIn
    DRIFT = 20e-6

    def __init__(self, port: str | None = None, api: str | None = None,
                 name: str = DEFAULT_CLOCK_IN_NAME, monitor_s: float = 0.5,
                 ignore_clock: bool = False):
        self._ignore_clock = ignore_clock
        super().__init__(port, api, name, monitor_s)

    def _after_open(self) -> None:
        self._rt.ignore_types(sysex=True, timing=self._ignore_clock, active_sense=True)
        self._stamp = None  # input-clock time of the last message
        self.offset = None
        self._offset_at = 0.0

    def poll(self) -> list[tuple[float, list[int]]]:
        """All messages waiting, as ``(monotonic arrival time, bytes)``; never raises or waits."""
        out: list = []
        if not self.connected or not self._lock.acquire(blocking=False):
            return out
        try:
            while True:
                m = self._rt.get_message()
                if m is None:
                    break
                now = time.monotonic()
                data, delta = m
                self._stamp = 0.0 if self._stamp is None else self._stamp + delta
                cand = now - self._stamp
                relaxed = None if self.offset is None else self.offset + self.DRIFT * (now - self._offset_at)
                self.offset = cand if relaxed is None else min(cand, relaxed)
                self._offset_at = now
                out.append((self._stamp, data))
        except Exception as e:
            self.connected = False
            self.status = f"reading from {self.full_name!r} failed ({e}); will reconnect"
        finally:
            self._lock.release()
        # Stamps are mapped with the newest offset, the best estimate so far.
        return [(s + self.offset, d) for s, d in out]
