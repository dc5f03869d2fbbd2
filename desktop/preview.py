"""The built-in preview sound: hear Moodroll without a DAW.

:class:`PreviewSynth` is a MIDI sink shaped like :class:`engine.live.ports.MidiOutput` (``send``,
``note_on``, ``note_off``, ``all_notes_off``, ``close``, ``sounding``, ``connected``,
``status``), so :class:`engine.live.decoder.LiveStream` plays into it as into a port. It renders a
General MIDI SoundFont (pretty_midi's TimGM6mb.sf2, an acoustic piano on every channel but
the drum channel) with tinysoundfont, and plays it through sounddevice (PortAudio).

Real-time rule: the MIDI thread never waits for audio. ``send`` only appends the bytes to a
deque (atomic in CPython); the audio callback drains the deque at the start of each block,
then renders that block. So a note sounds at most one block (256 frames, 5.8 ms) late, and
nothing but the callback touches the synth while a device plays.

No audio device (a server, a CI machine, a locked-down laptop): :func:`available` says so in
one line and the app goes on; the synth still renders offline (:func:`render_midi`,
:func:`write_wav`), which is how the tests listen and measure.

:class:`engine.live.sinks.FanOut` forwards every message to several sinks (the DAW's port and the preview).
"""
from __future__ import annotations

import threading
import wave
from collections import deque
from pathlib import Path
from typing import Sequence

import numpy as np

from engine.live.sinks import Sink

SAMPLE_RATE = 44100
BLOCK = 256  # frames per audio callback: 5.8 ms at 44.1 kHz
DRUM_CHANNEL = 9
GAIN_DB = 6.0  # TimGM6mb is quiet: a chord peaks near -8 dBFS at this gain


class PreviewError(RuntimeError):
    """The preview cannot play; the message is one line for the user."""


def soundfont_path() -> Path:
    """pretty_midi's General MIDI SoundFont (TimGM6mb.sf2, GPL, 6 MB)."""
    import pretty_midi

    return Path(pretty_midi.__file__).resolve().parent / "TimGM6mb.sf2"


_PA_LOCK = threading.Lock()
_pa_module = None


def _portaudio():
    """sounddevice, with PortAudio *not* left initialised (it initialises itself on import).

    PortAudio holds a client of the audio system (a JACK client, an ALSA handle) while it is
    initialised, and terminating it after that system went away aborts the process (JACK:
    an assertion in pa_jack.c at exit). So PortAudio is initialised only while in use: around
    a device query and while the preview plays (its init/terminate calls are counted)."""
    global _pa_module
    with _PA_LOCK:
        if _pa_module is None:
            import sounddevice as sd

            if getattr(sd, "_initialized", 0) > 0:
                sd._terminate()  # the import's own initialisation
            _pa_module = sd
        return _pa_module


def available() -> tuple[bool, str]:
    """Whether the preview can play here, and why not: ``(True, "")`` or ``(False, one line)``."""
    try:
        import tinysoundfont  # noqa: F401
    except ImportError:
        return False, "no preview sound: the tinysoundfont package is missing (pip install tinysoundfont)"
    if not soundfont_path().is_file():
        return False, f"no preview sound: the SoundFont {soundfont_path()} is missing"
    try:
        sd = _portaudio()
    except (ImportError, OSError) as e:  # OSError: the PortAudio library itself is missing
        return False, ("no preview sound: PortAudio is missing (Debian/Ubuntu: apt install libportaudio2; "
                       f"{type(e).__name__}: {e})")
    dev = None
    try:
        sd._initialize()
    except Exception as e:
        return False, f"no preview sound: the audio system cannot be started ({e})"
    try:
        dev = sd.query_devices(kind="output")
    except Exception:  # sounddevice raises PortAudioError / ValueError when there is none
        dev = None
    finally:
        sd._terminate()
    if not dev or dev.get("max_output_channels", 0) < 1:
        return False, "no audio output device found: the preview sound is off (MIDI to your DAW still works)"
    return True, ""


class _Voice:
    """The synth proper: one tinysoundfont Synth with piano on every channel, fed raw MIDI."""

    def __init__(self, soundfont: str | Path | None = None, samplerate: int = SAMPLE_RATE, program: int = 0,
                 gain_db: float = GAIN_DB):
        import tinysoundfont

        path = Path(soundfont) if soundfont else soundfont_path()
        if not path.is_file():
            raise PreviewError(f"no preview sound: the SoundFont {path} is missing")
        self.samplerate = samplerate
        self.synth = tinysoundfont.Synth(gain=gain_db, samplerate=samplerate)
        try:
            self.sfid = self.synth.sfload(str(path))
        except Exception as e:
            raise PreviewError(f"no preview sound: cannot load the SoundFont {path.name}: {e}") from None
        for ch in range(16):
            if ch == DRUM_CHANNEL:
                self.synth.program_select(ch, self.sfid, 128, 0, True)
            else:
                self.synth.program_select(ch, self.sfid, 0, program)

    def apply(self, msg: Sequence[int]) -> None:
        """One raw MIDI message (channel voice messages; system messages such as clock are ignored)."""
        if not msg:
            return
        status = msg[0] & 0xF0
        ch = msg[0] & 0x0F
        s = self.synth
        if status == 0x90 and len(msg) >= 3:
            if msg[2] > 0:
                s.noteon(ch, msg[1], msg[2])
            else:
                s.noteoff(ch, msg[1])
        elif status == 0x80 and len(msg) >= 2:
            s.noteoff(ch, msg[1])
        elif status == 0xB0 and len(msg) >= 3:
            s.control_change(ch, msg[1], msg[2])
        elif status == 0xE0 and len(msg) >= 3:
            s.pitchbend(ch, msg[1] | (msg[2] << 7))
        elif status == 0xC0 and len(msg) >= 2 and ch != DRUM_CHANNEL:
            try:
                s.program_change(ch, msg[1])
            except Exception:  # a preset the SoundFont lacks: keep the piano
                pass

    def render(self, frames: int) -> np.ndarray:
        """The next ``frames`` frames, float32 [frames, 2]."""
        buf = self.synth.generate(frames)
        return np.frombuffer(buf, dtype=np.float32).reshape(frames, 2)


class PreviewSynth(Sink):
    """A MidiOutput-like sink that plays through the computer's speakers (see the module docstring).

    ``start=True`` opens the default audio output now and raises :class:`PreviewError` (one
    line) where there is none; ``start=False`` keeps it closed (offline rendering, tests)."""

    def __init__(self, soundfont: str | Path | None = None, samplerate: int = SAMPLE_RATE, program: int = 0,
                 start: bool = True, device=None, blocksize: int = BLOCK):
        self.name = "Preview"
        self.voice = _Voice(soundfont, samplerate, program)
        self._soundfont, self._program = soundfont, program
        self.samplerate, self.blocksize, self.device = samplerate, blocksize, device
        self.sounding: dict[tuple[int, int], int] = {}  # (channel, pitch) -> velocity, as MidiOutput
        self.channels_used: set[int] = {0}
        self.sent = 0
        self.failed = 0
        self.connected = False
        self.status = "preview sound off"
        self._pending: deque = deque()  # raw messages, MIDI thread -> audio callback
        self.blocks = 0  # audio blocks rendered by the device callback
        self._stream = None
        self._lock = threading.Lock()  # start/stop only; never taken by send or the callback
        self._closed = False
        if start:
            self.start()

    # -- the audio device -------------------------------------------------------------------
    def start(self) -> None:
        """Open the audio output and start playing; PreviewError with one line where it cannot."""
        with self._lock:
            if self._stream is not None:
                return
            ok, why = available()
            if not ok:
                self.status = why
                raise PreviewError(why)
            sd = _portaudio()
            sd._initialize()  # held while playing; stop() terminates it again
            try:
                rate = int(sd.query_devices(self.device, kind="output")["default_samplerate"])
                if rate != self.samplerate:  # render at the device's own rate (JACK runs at 48 kHz)
                    self.voice = _Voice(self._soundfont, rate, self._program)
                    self.samplerate = rate
                stream = sd.OutputStream(samplerate=self.samplerate, channels=2, dtype="float32",
                                         blocksize=self.blocksize, latency="low", device=self.device,
                                         callback=self._callback)
                stream.start()
            except Exception as e:
                sd._terminate()
                self.status = f"no preview sound: the audio device cannot be opened ({e})"
                raise PreviewError(self.status) from None
            self._stream, self.connected = stream, True
            self.status = "preview sound on"

    def stop(self) -> None:
        """Stop the audio (sounding notes are released first)."""
        self.all_notes_off()
        with self._lock:
            stream, self._stream = self._stream, None
            self.connected = False
            self.status = "preview sound off"
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception:
                pass
            finally:
                _portaudio()._terminate()

    def _callback(self, outdata, frames, time_info, status) -> None:  # the audio thread
        self._drain()
        outdata[:] = self.voice.render(frames)
        self.blocks += 1

    def _drain(self) -> None:
        pending, apply = self._pending, self.voice.apply
        while pending:
            try:
                apply(pending.popleft())
            except Exception:  # a malformed message must not silence the preview
                pass

    # -- the MidiOutput interface -----------------------------------------------------------
    def send(self, message: Sequence[int]) -> bool:
        """Queue raw MIDI bytes for the next audio block; never blocks, never raises."""
        if self._closed:
            self.failed += 1
            return False
        self._pending.append(tuple(message))
        self.sent += 1
        return True

    def close(self) -> None:
        if self._closed:
            return
        self.stop()
        self._closed = True
        self.status = "closed"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- offline -----------------------------------------------------------------------------
    def render(self, seconds: float) -> np.ndarray:
        """Without a device: apply what was sent and render the next ``seconds`` of sound
        (float32 [frames, 2]). Not while the device plays (the callback owns the synth then)."""
        if self._stream is not None:
            raise PreviewError("the preview is playing on the audio device; stop it to render offline")
        self._drain()
        return self.voice.render(max(0, int(round(seconds * self.samplerate))))


# -- offline rendering: listen to and measure a take without a device ----------------------------
def render_midi(path, tail_s: float = 1.5, soundfont=None, samplerate: int = SAMPLE_RATE) -> np.ndarray:
    """A MIDI file rendered through the preview's synth: float32 [frames, 2], plus ``tail_s``
    of release after the last event."""
    import mido

    voice = _Voice(soundfont, samplerate)
    chunks, now = [], 0.0
    try:
        midi = mido.MidiFile(str(path))
    except Exception as e:
        raise PreviewError(f"cannot read MIDI file {path}: {type(e).__name__}: {e}") from None
    for msg in midi:  # message times are seconds since the previous one (mido follows the tempo map)
        if msg.time > 0:
            frames = int(round((now + msg.time) * samplerate)) - int(round(now * samplerate))
            chunks.append(voice.render(frames))
            now += msg.time
        if not msg.is_meta:
            voice.apply(msg.bytes())
    chunks.append(voice.render(int(tail_s * samplerate)))
    return np.concatenate(chunks) if chunks else np.zeros((0, 2), np.float32)


def write_wav(path, audio: np.ndarray, samplerate: int = SAMPLE_RATE) -> Path:
    """Float audio [frames, channels] in -1..1 -> a 16-bit PCM WAV file."""
    path = Path(path)
    pcm = (np.clip(np.asarray(audio, np.float32), -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(pcm.shape[1] if pcm.ndim == 2 else 1)
        w.setsampwidth(2)
        w.setframerate(samplerate)
        w.writeframes(pcm.tobytes())
    return path


def render_to_wav(midi_path, wav_path, **kw) -> Path:
    """Render a take to a WAV file you can listen to."""
    return write_wav(wav_path, render_midi(midi_path, **kw), kw.get("samplerate", SAMPLE_RATE))


def loudness_dbfs(audio: np.ndarray) -> float:
    """RMS level in dB relative to full scale (-inf for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(np.asarray(audio, np.float64))))) if len(audio) else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def main(argv=None) -> int:
    """``python -m desktop.preview TAKE.mid [OUT.wav]``: render a take through the preview
    synth, write the WAV, print its level and how much faster than real time it rendered."""
    import argparse
    import time

    ap = argparse.ArgumentParser(prog="python -m desktop.preview", description=main.__doc__.split(":", 1)[0])
    ap.add_argument("midi")
    ap.add_argument("wav", nargs="?")
    args = ap.parse_args(argv)
    try:
        t0 = time.perf_counter()
        audio = render_midi(args.midi)
        took = time.perf_counter() - t0
    except PreviewError as e:
        print(f"error: {e}")
        return 1
    out = Path(args.wav) if args.wav else Path(args.midi).with_suffix(".wav")
    write_wav(out, audio)
    secs = len(audio) / SAMPLE_RATE
    print(f"{out}: {secs:.1f} s, {loudness_dbfs(audio):.1f} dBFS RMS, peak {np.abs(audio).max():.2f}, "
          f"rendered {secs / max(took, 1e-9):.0f}x faster than real time; {available()[1] or 'audio device: ok'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
