"""desktop/preview_rule.py: the preview sound steps aside while a DAW is connected, decided by
the calls alone (the window-level check is in test_desktop_app's play test)."""
from desktop.preview_rule import PreviewRule, daw_connection


def test_what_counts_as_a_daw_connected():
    assert daw_connection(True, None, False) == "the DAW's clock is locked"
    assert daw_connection(False, "Reaper MIDI In", True) == "the notes go to 'Reaper MIDI In'"
    assert daw_connection(False, "Reaper MIDI In", False) is None  # the chosen port vanished
    assert daw_connection(False, None, True) is None  # our own virtual port: nobody seen reading it


def test_off_when_a_daw_connects_and_back_when_it_leaves():
    r = PreviewRule()
    assert r.step(None, True) is None
    assert r.step("the DAW's clock is locked", True) == "off"
    assert r.step("the DAW's clock is locked", False) is None  # once, not at every tick
    assert r.step(None, False) == "on"
    assert r.step(None, True) is None


def test_the_users_choice_stands_while_the_daw_is_connected():
    r = PreviewRule()
    r.step("x", True)  # off
    r.user_toggled(True)  # the user wants it on beside the DAW
    assert r.step("x", True) is None
    assert r.step(None, True) is None  # leaving does not touch what the user chose
    assert r.step("x", True) == "off"  # a new connection: the rule applies again


def test_a_preview_that_was_off_stays_off():
    r = PreviewRule()
    assert r.step("x", False) is None
    assert r.step(None, False) is None
    r.step("x", True)
    r.user_toggled(False)  # the user turned it off themselves: nothing to give back
    assert r.step(None, False) is None
