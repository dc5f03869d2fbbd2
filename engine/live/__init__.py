"""Playing live: one :class:`.performance.Performance` per session (mood, plan, steering), the decoder
thread (:mod:`.decoder`) and the playback thread (:mod:`.player`), clocks (:mod:`.clock`), MIDI ports
(:mod:`.ports`) and sinks (:mod:`.sinks`); ``moodroll live`` / ``moodroll ports`` (:mod:`.command`)."""
