"""engine/picture/webcam.py: the VA smoother, clear errors for missing cameras and files, and a
video of real OASIS pictures (pleasant, then unpleasant) through the bundle's image encoder."""
import cv2
import numpy as np
import pytest

from engine.picture.webcam import SmoothingOptions, VASmoother, WebcamError, WebcamVA, iter_frames, open_capture


def test_smoother_ignores_a_single_odd_frame_and_follows_a_lasting_change():
    s = VASmoother(SmoothingOptions(median_of=5, alpha=0.3, hysteresis=0.25))
    assert s.update((7.0, 3.0)) and s.value == (7.0, 3.0)
    for va in [(7.0, 3.0)] * 4 + [(2.0, 8.0)] + [(7.0, 3.0)] * 4:  # one odd frame
        assert not s.update(va)
    assert s.value == (7.0, 3.0) and s.changes == 1
    for _ in range(10):  # jitter smaller than the hysteresis never moves the output
        assert not s.update((7.1, 2.9))
    path = []
    for _ in range(30):  # a lasting change: the output follows, in a few steps, one way
        s.update((2.0, 8.0))
        path.append(s.value)
    assert np.allclose(path[-1], (2.0, 8.0), atol=0.25)
    dist = [abs(v - 2.0) for v, _ in path]
    assert all(b <= a for a, b in zip(dist, dist[1:]))  # no flicker back and forth
    assert 2 <= s.changes - 1 <= 12


def test_smoother_publishes_a_new_scene_with_the_same_mood():
    s = VASmoother(SmoothingOptions(median_of=1, alpha=0.5, token_hysteresis=0.1))
    assert s.update((5, 5), np.ones((2, 3), np.float32))
    assert not s.update((5, 5), np.full((2, 3), 1.1, np.float32))  # 5 % away: noise
    assert s.update((5, 5), np.full((2, 3), 2.0, np.float32))  # the scene changed, VA did not
    assert np.allclose(s.tokens, 0.5 * (0.5 * 1 + 0.5 * 1.1) + 0.5 * 2.0) and s.value == (5.0, 5.0)


def test_missing_camera_or_file_is_one_clear_line(tmp_path):
    with pytest.raises(WebcamError, match="cannot open camera 57: no camera with that number"):
        open_capture("57")
    with pytest.raises(WebcamError, match="no such file"):
        WebcamVA(tmp_path / "nope.mp4", analyze=None)
    (tmp_path / "notes.txt").write_text("not a video")
    with pytest.raises(WebcamError, match="cannot open video .*notes.txt: not a video OpenCV can decode"):
        open_capture(tmp_path / "notes.txt")


@pytest.fixture(scope="module")
def oasis_video(data_dir, tmp_path_factory):
    """3 s of the most pleasant OASIS picture (with one frame of the most unpleasant one in
    it), then 3 s of the most unpleasant, at 10 frames per second."""
    from training.data import load_oasis

    records = sorted(load_oasis(data_dir / "oasis"), key=lambda r: r.valence)
    bad, good = records[0], records[-1]
    size = (320, 240)
    frames = {k: cv2.resize(cv2.imread(str(r.path)), size) for k, r in (("good", good), ("bad", bad))}
    path = tmp_path_factory.mktemp("video") / "scene.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert w.isOpened()
    script = ["good"] * 30 + ["bad"] * 30
    script[15] = "bad"  # someone walks through the picture for one frame
    for k in script:
        w.write(frames[k])
    w.release()
    return path, script, (good, bad)


def test_webcam_video_of_oasis_pictures_moves_smoothly_to_the_new_scene(random_bundle, oasis_video):
    """Frames go through the bundle's real image encoder. (The random test bundle's VA head
    always says 5, 5, so there the scene change shows in the image tokens; with a trained
    bundle the VA moves too, and is checked the same way.)"""
    from engine.model.generator import MusicGenerator

    path, script, _ = oasis_video
    gen = MusicGenerator(random_bundle)
    frames = [rgb for _, rgb in iter_frames(path, fps=10, realtime=False)]
    assert len(frames) == len(script)
    (tok_good, va_good), (tok_bad, va_bad) = gen.analyze_image(frames[0]), gen.analyze_image(frames[-1])
    va_good, va_bad = np.asarray(va_good), np.asarray(va_bad)
    rel = lambda t: float(np.linalg.norm(t - tok_bad) / np.linalg.norm(tok_bad))  # noqa: E731
    assert rel(tok_good) > 0.1  # the two scenes differ

    updates = []  # (frame number, published VA, published image tokens)
    cam = WebcamVA(path, gen.analyze_image, lambda va, tokens: updates.append((cam.frames, va, tokens)),
                   fps=10, realtime=False)
    cam.start().join(120)
    assert cam.error is None and cam.frames == 60

    # While the pleasant picture lasts, the one odd frame (number 16) changes nothing.
    assert [f for f, _, _ in updates if f <= 30] == [1]
    # Then the published condition moves to the unpleasant picture's, never flickering back.
    later = [(np.asarray(va), tokens) for f, va, tokens in updates if f > 30]
    assert 1 <= len(later) <= 10
    dist = [rel(tokens) for _, tokens in later]
    assert all(b <= a + 1e-6 for a, b in zip(dist, dist[1:]))
    assert dist[-1] < 0.1 * rel(tok_good) + 0.1
    d = float(np.max(np.abs(va_bad - va_good)))
    va_dist = [float(np.max(np.abs(va - va_bad))) for va, _ in later]
    assert all(b <= a + 1e-6 for a, b in zip(va_dist, va_dist[1:]))
    assert va_dist[-1] <= max(0.25, 0.3 * d)
