"""The music model at run time: the SHA-256-checked bundle (:mod:`.bundle`), ONNX Runtime sessions and
the KV cache (:mod:`.runtime`, :mod:`.cache`), sampling (:mod:`.sampling`), the user's controls
(:mod:`.controls`) and every logit filter (:mod:`.filters`), wired by the generator
(:mod:`.generator`; several streams at once: :mod:`.batch`; int8: :mod:`.quantize`)."""
