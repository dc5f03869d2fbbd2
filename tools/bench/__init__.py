"""``moodroll bench``: decoding speed (run.py), real-time timing at a real port (realtime.py),
and the format-2 / batched / int8 / larger-model measurements (extra.py); one JSON object."""
