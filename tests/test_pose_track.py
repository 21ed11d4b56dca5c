"""Pose tracks and the official clip crop: the driver's roll and zoom reach the crops the pose encoder sees."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pcavs.face import FaceTracker, compose, crop_matrix, invert_affine, transform_points, warp_to_input

pytest.importorskip("dlib")
skdata = pytest.importorskip("skimage.data")

FRAMES = 30


def _eye_angle_and_span(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eye-line angle (degrees, image y down) and inter-ocular distance of (T, 68, 2) landmarks."""
    d = lm[:, 42:48].mean(1) - lm[:, 36:42].mean(1)
    return np.degrees(np.arctan2(d[:, 1], d[:, 0])), np.hypot(d[:, 0], d[:, 1])


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / (x * x).sum())


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A 256x256 pose video of the astronaut whose head rolls +-12 deg, zooms +-10 % and moves sideways;
    returns the file and the exact landmarks of every frame (the photo's, moved by each frame's warp)."""
    from pcavs.face import landmarks68
    from pcavs.media import VideoWriter

    photo = skdata.astronaut()
    lm = landmarks68(photo)
    centre = lm[27:36].mean(0)  # the nose: rotate and zoom about the face
    t = np.arange(FRAMES) / FRAMES
    roll = 12 * np.sin(2 * np.pi * t)
    zoom = 1 + 0.1 * np.sin(2 * np.pi * 2 * t + 1.0)
    shift = 10 * np.sin(2 * np.pi * t + 2.0)
    frames, truth = [], []
    for r, z, dx in zip(roll, zoom, shift, strict=True):
        a = np.radians(r)  # clockwise in the image (y down) for r > 0
        lin = 1.4 * z * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        m = np.hstack([lin, (np.array([128.0 + dx, 120.0]) - lin @ centre)[:, None]])
        frames.append(np.clip(np.rint(warp_affine_frame(photo, m)), 0, 255).astype(np.uint8))
        truth.append(transform_points(m, lm))
    path = tmp_path_factory.mktemp("driver") / "roll.mp4"
    with VideoWriter(path, crf=12, preset="ultrafast") as w:
        w.write(np.stack(frames))
    return path, np.stack(truth)


def warp_affine_frame(img: np.ndarray, m: np.ndarray) -> np.ndarray:
    from pcavs.face.align import warp_affine

    return warp_affine(img, m, (256, 256))


def test_extracted_crops_follow_the_drivers_roll_and_zoom(driver: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    """The issue's check: in the crops `pcavs pose extract --crops` writes, the eye line follows the
    driver's roll with slope >= 0.9 (the v1 tracker levelled it: slope ~0.1) and the eye span its zoom."""
    from pcavs.face import default_analyzer
    from pcavs.media import read_video_frames
    from pcavs.posetrack import extract_track

    path, truth = driver
    track = extract_track(path, size=128, crops=tmp_path / "crops.mp4")
    assert len(track) == FRAMES and not track.filled.any() and set(track.shot) == {0}
    an = default_analyzer()
    seen = np.stack([an.landmarks(c, an.detect(c)[0]) for c in read_video_frames(tmp_path / "crops.mp4")])
    angle_true, span_true = _eye_angle_and_span(truth)
    angle_crop, span_crop = _eye_angle_and_span(seen)
    assert _slope(angle_true, angle_crop) >= 0.9
    assert _slope(span_true / span_true.mean(), span_crop / span_crop.mean()) == pytest.approx(1.0, abs=0.15)
    # the mouth stays pinned: its centre moves by under 2 px of the 128 crop
    mouth = seen[:, 60:68].mean(1)
    assert np.abs(mouth - mouth.mean(0)).max() < 2.0
    # the v1 policy (per-frame alignment smoothed over 9 frames) levelled the eyes
    tracker = FaceTracker(size=128, window=9, keep_frames=False)
    old = [tf.matrix for lm in truth for tf in tracker.push_landmarks(lm)] + [tf.matrix for tf in tracker.flush()]
    angle_old, _ = _eye_angle_and_span(np.stack([transform_points(m, lm) for m, lm in zip(old, truth, strict=True)]))
    assert abs(_slope(angle_true, angle_old)) < 0.3


def test_track_file_round_trip_and_matrix(driver: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    from pcavs.media import read_video_frames
    from pcavs.posetrack import TRACK_VERSION, extract_track, load_track

    path, _ = driver
    track = extract_track(path, size=64)
    out = track.save(tmp_path / "t.npz")
    back = load_track(out)
    assert back.meta["version"] == TRACK_VERSION and back.meta["crop_size"] == 64 and back.fps == 25
    for key in ("time", "landmarks", "matrix", "angles", "filled", "shot"):
        np.testing.assert_array_equal(getattr(back, key), getattr(track, key))
    assert back.time[1] == pytest.approx(0.04)
    # the matrix maps source pixels into the crop: warping with it gives the crop generate encodes
    frame = next(iter(read_video_frames(path)))
    frame_m = compose(invert_affine(crop_matrix(64)), back.matrix[0])
    crop = warp_to_input(frame, frame_m, 64)
    assert crop.shape == (64, 64, 3)
    # roll > 0 is clockwise in the image (eval/headpose.py): the angles follow the eye line's sign
    angle, _ = _eye_angle_and_span(back.landmarks)
    assert np.corrcoef(angle, back.angles[:, 2])[0, 1] > 0.9


def _bad_tracks(tmp_path: Path, good: Path) -> dict[str, tuple[Path, str]]:
    data = good.read_bytes()
    trunc = tmp_path / "truncated.npz"
    trunc.write_bytes(data[: len(data) // 2])
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    old = tmp_path / "old.npz"
    np.savez(old, **{**arrays, "meta": np.array(json.dumps({**meta, "version": 99}))})
    missing = tmp_path / "missing.npz"
    np.savez(missing, **{k: v for k, v in arrays.items() if k != "matrix"})
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    return {
        "truncated": (trunc, "truncated or not an .npz"),
        "version": (old, "version 99; this pcavs reads version 1"),
        "keys": (missing, "missing arrays matrix"),
        "foreign": (other, "has no 'meta' entry"),
    }


def test_bad_track_files_are_refused(driver: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    from pcavs.posetrack import TrackFileError, extract_track, load_track

    good = extract_track(driver[0], size=32).save(tmp_path / "good.npz")
    for path, message in _bad_tracks(tmp_path, good).values():
        with pytest.raises(TrackFileError, match=message):
            load_track(path)
    assert zipfile.is_zipfile(good)


def test_pose_extract_cli(driver: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    out, crops = tmp_path / "track.npz", tmp_path / "crops.mp4"
    cmd = [sys.executable, "-m", "pcavs", "pose", "extract", str(driver[0]), "-o", str(out), "--crops", str(crops),
           "--size", "64"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{FRAMES} frames" in r.stdout and "1 shot(s)" in r.stdout and out.is_file() and crops.is_file()
    bad_cmd = [sys.executable, "-m", "pcavs", "pose", "extract", str(driver[0]), "-o", str(tmp_path / "x.txt")]
    bad = subprocess.run(bad_cmd, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "is an .npz file" in bad.stderr and not (tmp_path / "x.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crops.mp4", "track.npz"]


def test_generate_from_a_track_equals_generate_from_its_video(driver: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    """`--pose track.npz` (extracted from the video) gives the pose codes of `--pose video.mp4` exactly,
    whether the track holds this model's codes or they are computed from its source video."""
    import torch

    from pcavs.infer import TalkingFacePipeline
    from pcavs.infer.pipeline import GenerationOptions, prepare_inputs
    from pcavs.posetrack import extract_track, load_track
    from pcavs.posetrack.extract import add_codes

    weights = Path(__file__).parents[1] / "pcavs" / "assets" / "weights" / "synthtalk-small"
    pipe = TalkingFacePipeline.from_pretrained(weights, device="cpu")
    path = driver[0]
    audio = np.zeros(FRAMES * 640, np.float32)
    audio[::50] = 0.1
    photo = skdata.astronaut()

    def codes(pose: object) -> torch.Tensor:
        inputs = prepare_inputs(photo, audio, pose, analyzer=pipe.analyzer)
        crop, _ = pipe.align_identity(inputs)
        stream = pipe._pose_codes(inputs, crop, GenerationOptions())
        return stream.codes(0, FRAMES)

    from_video = codes(str(path))
    track = extract_track(path, size=pipe.image_size)
    plain = track.save(tmp_path / "plain.npz")
    from_track = codes(str(plain))
    assert torch.equal(from_video, from_track)
    add_codes(track, pipe)
    cached = track.save(tmp_path / "cached.npz")
    assert set(load_track(cached).codes) == {pipe.pose_encoder_hash}
    moved = tmp_path / "elsewhere.mp4"
    path.rename(moved)  # cached codes: the source video is not needed any more
    try:
        assert torch.equal(codes(str(cached)), from_video)
        with pytest.raises(Exception, match="source video .* is not found"):
            codes(str(plain))
    finally:
        moved.rename(path)


def _track(n: int = 50, **arrays: np.ndarray):
    from pcavs.posetrack import PoseTrack

    base = {"time": np.arange(n) / 25, "landmarks": np.zeros((n, 68, 2)), "matrix": np.zeros((n, 2, 3)),
            "align": np.zeros((n, 2, 3)), "angles": np.zeros((n, 3)), "score": np.ones(n),
            "filled": np.zeros(n, bool), "shot": np.zeros(n, int), "frame": np.arange(n), "source": np.zeros(n, int)}
    return PoseTrack(**{**base, **arrays}, meta={"fps": 25, "crop_size": 64, "sources": ["x.mp4"]})


def test_check_finds_gaps_cuts_profiles_and_weak_frames() -> None:
    from pcavs.posetrack.check import check_track

    clean = check_track(_track())
    assert clean.ok and not clean.warnings and "verdict: usable" in clean.text()
    gap = np.zeros(50, bool)
    gap[10:30] = True  # a 20-frame gap: longer than the 12 frames interpolation may cover
    r = check_track(_track(filled=gap))
    assert not r.ok and "no face for more than 12 frames at 0.40-1.20 s (frames 10-29)" in r.problems[0]
    short = np.zeros(50, bool)
    short[5:8] = True
    r = check_track(_track(filled=short))
    assert r.ok and "no face in 3 frame(s)" in r.warnings[0]
    r = check_track(_track(shot=np.repeat([0, 1], 25)))
    assert r.ok and "1 shot cut(s) at 1.00 s" in r.warnings[0]
    profile = np.zeros((50, 3))
    profile[:, 0] = 70.0
    r = check_track(_track(angles=profile), model_family="official")
    assert not r.ok and "|yaw| beyond 45 deg" in r.problems[0] and "profile view" in r.problems[0]
    tilt = np.zeros((50, 3))
    tilt[:10, 2] = 20.0
    r = check_track(_track(angles=tilt))
    assert r.ok and "|roll| beyond 15 deg, the range the small model saw in training, in 20 %" in r.warnings[0]
    weak = np.ones(50)
    weak[3] = 0.1
    assert "weak detections" in check_track(_track(score=weak)).warnings[0]
    r = check_track(_track(), source_fps=25, source_frames=90, duration=0.0333)
    assert "variable frame rate" in r.warnings[0]


def test_pose_check_show_and_csv_cli(driver: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pcavs", "pose", *args], capture_output=True, text=True,
                              timeout=300)

    r = run("check", str(driver[0]))
    assert r.returncode == 0 and f"{FRAMES} frames at 25 fps" in r.stdout and "verdict: usable" in r.stdout
    track = tmp_path / "t.npz"
    assert run("extract", str(driver[0]), "-o", str(track), "--size", "64").returncode == 0
    r = run("show", str(track), "-o", str(tmp_path / "t.png"))
    assert r.returncode == 0 and (tmp_path / "t.png").stat().st_size > 10_000
    r = run("export-csv", str(track), "-o", str(tmp_path / "t.csv"))
    rows = (tmp_path / "t.csv").read_text().splitlines()
    assert r.returncode == 0 and rows[0].startswith("frame,time_s,yaw_deg,pitch_deg,roll_deg") and len(rows) == 31
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    r = run("check", str(bad))
    assert r.returncode == 2 and "truncated or not an .npz" in r.stderr


def test_edits_trim_retime_smooth_mirror_and_meta() -> None:
    from pcavs.posetrack import apply_code_edits
    from pcavs.posetrack.codes import loop_index
    from pcavs.posetrack.edit import TrackEdit, edit_track

    n = 50
    angles = np.zeros((n, 3))
    angles[:, 0] = np.arange(n)  # yaw ramps 0..49
    angles[:, 2] = 5.0
    t = _track(n, angles=angles)
    t.codes["h"] = np.stack([np.arange(n), np.zeros(n)], 1).astype(np.float32)
    trimmed = edit_track(t, TrackEdit(trim=(0.4, 1.2)))  # frames 10..29
    assert len(trimmed) == 20 and trimmed.frame[0] == 10 and trimmed.codes["h"][0, 0] == 10
    fast = edit_track(t, TrackEdit(speed=2.0))
    assert len(fast) == 25 and np.allclose(fast.angles[:, 0], np.arange(0, 50, 2))
    slow = edit_track(t, TrackEdit(speed=0.5))
    assert len(slow) == 99 and slow.angles[1, 0] == pytest.approx(0.5) and slow.codes["h"][3, 0] == pytest.approx(1.5)
    held = edit_track(t, TrackEdit(offset=0.2))  # 5 frames of the first pose, then the motion
    assert len(held) == 55 and np.all(held.angles[:6, 0] == 0) and held.angles[6, 0] == 1
    jitter = angles.copy()
    jitter[::2, 1] += 4.0
    smooth = edit_track(_track(n, angles=jitter), TrackEdit(smooth=2.0))
    assert np.abs(np.diff(smooth.angles[:, 1])).mean() < 0.2 * np.abs(np.diff(jitter[:, 1])).mean()
    mirrored = edit_track(t, TrackEdit(mirror=True))
    assert mirrored.meta["mirror"] and not mirrored.codes
    assert mirrored.angles[3, 0] == -3 and mirrored.angles[0, 2] == -5
    e = edit_track(t, TrackEdit(amplitude=0.5, start_from_photo=True, loop="hold"))
    assert "amplitude" not in t.meta and t.time is not e.time  # the input track is left as it was
    assert e.meta["edits"] == ["amplitude 0.5", "start_from_photo True", "loop hold"]
    codes = apply_code_edits(t.codes["h"], e.meta, still=np.array([100.0, 1.0]))
    assert codes[0].tolist() == [100.0, 1.0] and codes[10, 0] - codes[0, 0] == pytest.approx(5.0)  # half the motion
    assert [loop_index(k, 3, "pingpong") for k in range(6)] == [0, 1, 2, 1, 0, 1]
    assert [loop_index(k, 3, "repeat") for k in range(5)] == [0, 1, 2, 0, 1]
    assert [loop_index(k, 3, "hold") for k in range(5)] == [0, 1, 2, 2, 2]


def test_concat_and_crossfade() -> None:
    from pcavs.posetrack import TrackFileError
    from pcavs.posetrack.edit import concat_tracks

    a, b = _track(20), _track(10)
    a.codes["h"] = np.zeros((20, 2), np.float32)
    b.codes["h"] = np.ones((10, 2), np.float32)
    joined = concat_tracks(a, b)
    assert len(joined) == 30 and joined.meta["sources"] == ["x.mp4", "x.mp4"] and joined.source[20] == 1
    assert joined.shot[20] == 1 and joined.codes["h"][19, 0] == 0 and joined.codes["h"][20, 0] == 1
    faded = concat_tracks(a, b, crossfade=4)
    assert len(faded) == 26
    np.testing.assert_allclose(faded.codes["h"][15:21, 0], [0, 0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-6)
    with pytest.raises(TrackFileError, match="cache them in both tracks"):
        concat_tracks(_track(20), _track(10), crossfade=4)


def test_generate_applies_pose_edits_to_a_video(driver: tuple[Path, np.ndarray]) -> None:
    """`generate --pose-amplitude 0 --pose-loop hold` (no track file): the video is tracked, edited and encoded;
    amplitude 0 leaves every frame at the mean pose code."""
    import torch

    from pcavs.infer import TalkingFacePipeline
    from pcavs.infer.pipeline import GenerationOptions, prepare_inputs
    from pcavs.posetrack import TrackEdit

    weights = Path(__file__).parents[1] / "pcavs" / "assets" / "weights" / "synthtalk-small"
    pipe = TalkingFacePipeline.from_pretrained(weights, device="cpu")
    audio = np.full(FRAMES * 640, 0.01, np.float32)
    inputs = prepare_inputs(skdata.astronaut(), audio, str(driver[0]), analyzer=pipe.analyzer)
    crop, _ = pipe.align_identity(inputs)
    plain = pipe._pose_codes(inputs, crop, GenerationOptions()).codes(0, FRAMES)
    flat = pipe._pose_codes(inputs, crop, GenerationOptions(pose_edit=TrackEdit(amplitude=0.0))).codes(0, FRAMES)
    assert torch.allclose(flat, plain.mean(0, keepdim=True).expand_as(flat), atol=1e-5)
    fast = pipe._pose_codes(inputs, crop, GenerationOptions(pose_edit=TrackEdit(speed=2.0, loop="hold")))
    assert fast.source_frames == FRAMES // 2 and torch.equal(fast.codes(20, 22)[0], fast.codes(14, 15)[0])
