"""Measuring harnesses that are not part of a user's install: ``moodroll bench`` (:mod:`.bench`),
virtual time and an in-memory port (:mod:`.virtual_midi`), the app's start-up measurement
(:mod:`.measure_app`). Tests, training and the soak import them; the installers leave them out."""
