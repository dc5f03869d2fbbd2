"""Pictures in: reading any image file safely and the preprocessing shared with training
(:mod:`.image`), and a webcam or video as a smoothed valence/arousal (:mod:`.webcam`)."""
