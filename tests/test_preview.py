"""desktop/preview.py: the preview synth renders real sound offline (right pitch, non-silent,
silent after all-notes-off), a LiveStream plays into it like a port, a FanOut forwards to
every sink, and without an audio device it says so in one line."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tinysoundfont")

from engine.live.sinks import FanOut  # noqa: E402
from desktop.preview import (SAMPLE_RATE, PreviewError, PreviewSynth, available, loudness_dbfs,  # noqa: E402
                             render_midi, render_to_wav)
from engine.paths import EXAMPLES  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)[np.argmax(spec)])


def test_a_note_renders_at_its_pitch_and_all_notes_off_silences():
    synth = PreviewSynth(start=False)
    assert synth.render(0.2).max() == 0.0  # nothing sent: digital silence
    synth.note_on(69, 100)  # A4
    tone = synth.render(1.0)
    assert tone.shape == (SAMPLE_RATE, 2) and tone.dtype == np.float32
    assert loudness_dbfs(tone) > -40 and np.abs(tone).max() < 1.0  # audible, not clipping
    assert peak_hz(tone[:, 0]) == pytest.approx(440.0, abs=2.0)
    synth.note_on(57, 90)
    synth.note_on(64, 90)
    synth.render(0.3)
    assert set(synth.sounding) == {(0, 69), (0, 57), (0, 64)}
    synth.all_notes_off()
    assert synth.sounding == {}
    tail = synth.render(2.0)
    assert loudness_dbfs(tail[: SAMPLE_RATE // 10]) > -60  # the release rings on briefly...
    assert loudness_dbfs(tail[-SAMPLE_RATE // 5:]) < -90  # ...then silence: no stuck note
    synth.close()
    assert synth.send((0x90, 60, 100)) is False  # closed: refused, never raises


def test_fan_out_plays_every_message_on_every_synth_and_survives_a_broken_one():
    a, b = PreviewSynth(start=False), PreviewSynth(start=False)

    class Broken:  # a sink whose port died with an exception
        def __getattr__(self, name):
            raise RuntimeError("gone")

    tee = FanOut(a, Broken(), b)
    assert tee.note_on(60, 100) is True and tee.note_on(67, 100) is True
    assert a.sounding == b.sounding == {(0, 60): 100, (0, 67): 100}
    la, lb = loudness_dbfs(a.render(0.5)), loudness_dbfs(b.render(0.5))
    assert la > -40 and abs(la - lb) < 0.01  # both sound, identically
    tee.note_off(60)
    tee.all_notes_off()
    assert a.sounding == b.sounding == {}
    assert loudness_dbfs(a.render(2.0)[-SAMPLE_RATE // 5:]) < -90
    assert loudness_dbfs(b.render(2.0)[-SAMPLE_RATE // 5:]) < -90
    assert a.sent == b.sent and a.sent >= 5  # on, on, off, off, CC 123
    tee.close()
    assert a.send((0x90, 60, 1)) is False and b.send((0x90, 60, 1)) is False


def test_a_live_stream_plays_into_the_preview_like_into_a_port():
    from engine.live.decoder import LiveStream, StreamOptions, TokenReplay
    from engine.music.tokenizer import Tokenizer

    tok = Tokenizer()
    synth = PreviewSynth(start=False)
    stream = LiveStream(TokenReplay(tok.encode(EXAMPLES / "example.mid")), tok, synth,
                        options=StreamOptions(bpm=400, bars=2, realtime=False))
    stream.start()
    assert stream.wait(30) and stream.error is None
    stream.stop()
    assert stream.notes_sent == 24 and synth.sounding == {}  # 2 bars of the example; all released
    audio = synth.render(3.0)
    assert loudness_dbfs(audio) > -45
    assert loudness_dbfs(audio[-SAMPLE_RATE // 5:]) < -90


def test_render_a_take_to_a_wav_file_you_can_listen_to(tmp_path):
    wav = render_to_wav(EXAMPLES / "example.mid", tmp_path / "example.wav")
    with wave.open(str(wav)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, SAMPLE_RATE)
        frames = w.getnframes()
        pcm = np.frombuffer(w.readframes(frames), "<i2").reshape(-1, 2) / 32768.0
    import mido

    assert frames / SAMPLE_RATE == pytest.approx(mido.MidiFile(EXAMPLES / "example.mid").length + 1.5, abs=0.05)
    assert loudness_dbfs(pcm) > -35 and np.abs(pcm).max() < 0.99  # non-silent, no clipping
    if shutil.which("sox"):  # an independent reader agrees
        out = subprocess.run(["sox", str(wav), "-n", "stat"], capture_output=True, text=True).stderr
        rms = float(next(line.split()[-1] for line in out.splitlines() if line.startswith("RMS     amplitude")))
        assert rms > 0.01
    with pytest.raises(PreviewError, match="cannot read MIDI file"):
        render_midi(tmp_path / "example.wav")


def test_without_an_audio_device_it_says_so_in_one_line(monkeypatch):
    # No audio system at all: no JACK server for PortAudio to find, and ALSA without a card.
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "moodroll-no-such-server")
    code = ("from desktop.preview import available, PreviewSynth, PreviewError\n"
            "ok, why = available()\n"
            "try:\n    PreviewSynth(start=True); raised = ''\n"
            "except PreviewError as e:\n    raised = str(e)\n"
            "print(repr((ok, why, raised)))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    ok, why, raised = eval(r.stdout.strip().splitlines()[-1])
    if ok:
        pytest.skip("this machine has a sound card")
    assert why and "\n" not in why and raised == why  # one line, the same from both
    synth = PreviewSynth(start=False)  # everything else goes on: offline rendering works
    synth.note_on(60, 100)
    assert loudness_dbfs(synth.render(0.3)) > -40


def test_plays_through_a_real_audio_device_jack(jack_server):
    """The JACK dummy server is a real audio device for PortAudio: the callback drains what was
    sent and renders block after block; stop releases everything."""
    ok, why = available()
    if not ok:
        pytest.skip(f"PortAudio sees no JACK device here: {why}")
    synth = PreviewSynth(start=True)
    try:
        assert synth.connected and synth.status == "preview sound on"
        synth.note_on(60, 100)
        deadline = time.monotonic() + 10
        while (synth._pending or synth.blocks < 20) and time.monotonic() < deadline:
            time.sleep(0.01)  # waits for the audio thread's progress, not for a time
        assert not synth._pending and synth.blocks >= 20
        assert synth.sounding == {(0, 60): 100}
    finally:
        synth.close()
    assert synth.sounding == {} and not synth.connected
    assert synth.send((0x90, 60, 100)) is False
