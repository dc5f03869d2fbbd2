"""A JACK timebase master for tests, in its own process as a DAW is: it owns the transport's
bars and beats (BBT) at a tempo and metre that stdin changes.

Commands, one a line: ``tempo BPM``, ``start``, ``stop``, ``locate FRAME``, ``quit``; it answers
each with ``ok`` once JACK has it. ``python -m tests.jack_timebase BPM NUM DEN``.
"""
from __future__ import annotations

import sys
import threading


def main(bpm: float, num: int, den: int) -> None:
    import jack

    client = jack.Client("Test Timebase", no_start_server=True)
    rate = client.samplerate
    lock = threading.Lock()
    anchor = [0, 0.0, bpm]  # (frame, beats at that frame, tempo from there on)

    def beats_at(frame: int) -> float:
        f0, b0, tempo = anchor
        return b0 + (frame - f0) / rate * tempo / 60.0

    @client.set_timebase_callback
    def timebase(state, blocksize, pos, new_pos):
        beats = max(beats_at(pos.frame), 0.0)
        bar, in_bar = divmod(beats, num)
        pos.valid = jack._lib.JackPositionBBT
        pos.bar, pos.beat = int(bar) + 1, int(in_bar) + 1
        pos.ticks_per_beat = 1920.0
        pos.tick = int((in_bar - int(in_bar)) * 1920)
        pos.bar_start_tick = bar * num * 1920.0
        pos.beats_per_bar, pos.beat_type = float(num), float(den)
        pos.beats_per_minute = anchor[2]

    client.activate()
    print("ready", flush=True)
    for line in sys.stdin:
        cmd, *arg = line.split()
        if cmd == "tempo":
            with lock:
                frame = client.transport_frame
                anchor[:] = [frame, beats_at(frame), float(arg[0])]
        elif cmd == "start":
            client.transport_start()
        elif cmd == "stop":
            client.transport_stop()
        elif cmd == "locate":
            frame = int(arg[0])
            anchor[:] = [frame, frame / rate * anchor[2] / 60.0, anchor[2]]
            client.transport_locate(frame)
        elif cmd == "quit":
            break
        print("ok", flush=True)
    client.transport_stop()
    client.deactivate()
    client.close()


if __name__ == "__main__":
    main(float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
