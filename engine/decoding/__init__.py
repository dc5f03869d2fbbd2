"""Decoding machinery beyond the single stream: the fixed-capacity in-place KV cache of bundle
format 2 (:mod:`engine.decoding.fixed_cache`), several streams in one batch
(:mod:`engine.decoding.batch`), int8 decoder quantisation (:mod:`engine.decoding.quantize`)."""
