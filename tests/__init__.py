"""Moodroll's tests (a package so that helper modules such as tests/jack.py can be imported)."""
