"""Takes on disk: the takes folder and its metadata (:mod:`.store`), a take as a DAW clip
(:mod:`.clip`) and the one atomic file writer (:mod:`.files`)."""
