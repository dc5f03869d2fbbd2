"""MIDI in real time: ports (python-rtmidi: virtual or existing, reconnecting, never a stuck note),
the DAW's MIDI clock followed and our own clock, and the in-memory port with a virtual time
source that the scheduling tests and the soak run on."""
