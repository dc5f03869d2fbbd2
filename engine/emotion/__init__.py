"""Emotion you can hear: what valence/arousal mean in notes, and a check of what was heard.

* :mod:`engine.emotion.judge`: music -> VA from hand-crafted features + a ridge fit on EIMG's
  human labels (an independent "heard VA" estimate; never used to train the model).
* :mod:`engine.emotion.attributes`: VA -> musical attributes (mode, tempo, density, velocity,
  register, note length, polyphony) fitted on EIMG, turned into :class:`engine.model.controls.MusicalControls`.
* :mod:`engine.emotion.slideshow`: one continuous piece following pictures or a video.

The fitted numbers live in JSON files beside the code, written by ``python -m training.fit_emotion``.
"""
