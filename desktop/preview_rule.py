"""When the preview sound steps aside: off while a DAW is connected, back when it leaves.

With a DAW connected the notes already sound through the DAW's instrument; the preview
playing the same notes on this computer's speakers doubles them (and late, by the audio
buffer). "Connected" is what Moodroll can see: the DAW's MIDI clock is locked (Sync to DAW),
or the notes go to an existing port the user chose (a DAW's or a synth's input); a DAW
reading the virtual port cannot be seen from rtmidi. The user has the last word: turning the
preview on while the DAW is connected keeps it on until the DAW leaves. Qt-free, decided by
the calls alone (the session calls :meth:`step` on its slow tick).
"""
from __future__ import annotations


def daw_connection(sync_locked: bool, chosen_port: str | None, port_connected: bool) -> str | None:
    """What says a DAW (or a synth) plays the notes, as a few words for the status line; None if nothing."""
    if sync_locked:
        return "the DAW's clock is locked"
    if chosen_port and port_connected:
        return f"the notes go to {chosen_port!r}"
    return None


class PreviewRule:
    """Turns the preview off once when a DAW connects and back on when it leaves."""

    def __init__(self):
        self.daw: str | None = None  # the connection seen at the last step
        self.switched_off = False  # the rule (not the user) turned the preview off
        self.user_kept = False  # the user turned it on while the DAW was connected

    def step(self, daw: str | None, preview_on: bool) -> str | None:
        """``daw``: :func:`daw_connection` now. Returns "off", "on" or None (leave it)."""
        was, self.daw = self.daw, daw
        if daw and not was:
            if preview_on and not self.user_kept:
                self.switched_off = True
                return "off"
        elif was and not daw:
            self.user_kept = False
            if self.switched_off:
                self.switched_off = False
                return "on"
        return None

    def user_toggled(self, on: bool) -> None:
        """The user pressed Preview sound: while a DAW is connected, their choice stands."""
        self.switched_off = False
        if self.daw:
            self.user_kept = on
