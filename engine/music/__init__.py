"""Music as data: the one vocabulary (:mod:`.tokenizer`, MidiTok REMI), tokens -> timed events
(:mod:`.events`), MIDI files -> note arrays (:mod:`.notes`), keys and scales (:mod:`.theory`) and the
one metrics module (:mod:`.metrics`). Depends on nothing else in the engine."""
