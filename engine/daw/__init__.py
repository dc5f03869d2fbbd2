"""DAW bridges over OSC: Moodroll's own control server, AbletonOSC, Reaper's OSC surface.

* :mod:`engine.daw.oscio` — one UDP socket read by its own thread, datagrams parsed by python-osc.
* :mod:`engine.daw.protocol` — the ``Controllable`` interface and the ``/moodroll/*`` message table.
* :mod:`engine.daw.osc_server` — the ``/moodroll/*`` server (``moodroll live --osc``).
* :mod:`engine.daw.transport` — a transport follower fed by OSC (what ``LiveStream(clock=...)`` reads).
* :mod:`engine.daw.ableton` — AbletonOSC: send a take as a clip; follow Live's tempo and play/stop.
* :mod:`engine.daw.live_key` — Live 12's key as the key lock (``--key live``, the app's "Follow Live").
* :mod:`engine.daw.reaper` — follow Reaper's native OSC control surface (play/stop, tempo, beat).

Every message is documented in docs/protocol.md.
"""
