"""Tests for pcavs.face: detection, landmarks, official alignment, tracking and paste-back."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")
skdata = pytest.importorskip("skimage.data")
sktf = pytest.importorskip("skimage.transform")

from PIL import Image  # noqa: E402
from scipy import ndimage  # noqa: E402

from pcavs.face import (  # noqa: E402
    TEMPLATE_224,
    FaceAnalyzer,
    FaceLostError,
    FaceNotFoundError,
    FaceTracker,
    align_face,
    alignment_matrix,
    compose,
    crop_matrix,
    default_analyzer,
    detect_faces,
    face_embedding,
    face_mask,
    frame_matrix,
    invert_affine,
    landmarks68,
    matrix_to_params,
    official_sequence_matrices,
    params_to_matrix,
    paste_back,
    similarity_lstsq,
    three_points,
    track_landmarks,
    transform_points,
)

# Template points after the loader crop (pixel-centre convention): x' = (x-16+.5)*7/6-.5, y' = (y+.5)*7/6-.5
NET_TARGET = (TEMPLATE_224 - [16, 0] + 0.5) * 224 / 192 - 0.5  # ~ (82.9, 68.9), (141.3, 68.9), (112.1, 140.1)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return skdata.astronaut()


@pytest.fixture(scope="module")
def lm(photo: np.ndarray) -> np.ndarray:
    return landmarks68(photo)


def _translate(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Shift an image by whole pixels, replicating the edge."""
    pad = np.pad(img, ((abs(dy), abs(dy)), (abs(dx), abs(dx)), (0, 0)), mode="edge")
    h, w = img.shape[:2]
    return np.ascontiguousarray(pad[abs(dy) - dy:abs(dy) - dy + h, abs(dx) - dx:abs(dx) - dx + w])


# ----------------------------------------------------------------------------- detection / landmarks
def test_detects_one_plausible_face(photo: np.ndarray) -> None:
    boxes = detect_faces(photo)
    assert len(boxes) == 1
    b = boxes[0]
    # the astronaut's face is roughly x 175-270, y 80-175 in the 512x512 image
    assert 150 < b.center[0] < 260 and 90 < b.center[1] < 160
    assert 60 < b.width < 140 and 60 < b.height < 140


def test_landmark_geometry(lm: np.ndarray) -> None:
    assert lm.shape == (68, 2)
    le, re, mouth = three_points(lm)
    assert le[0] + 20 < re[0]  # left eye (image left) is left of the right eye
    assert abs(le[1] - re[1]) < 15  # upright face: eyes roughly level
    assert mouth[1] > max(le[1], re[1]) + 20  # mouth below the eyes
    assert le[0] < mouth[0] < re[0]


@pytest.mark.parametrize("img", [np.full((200, 240, 3), 128, np.uint8),
                                 np.random.default_rng(0).integers(0, 256, (200, 240, 3), dtype=np.uint8)],
                         ids=["blank", "noise"])
def test_no_face_raises_actionable_error(img: np.ndarray) -> None:
    with pytest.raises(FaceNotFoundError) as exc:
        detect_faces(img, name="portrait.png")
    msg = str(exc.value)
    assert "portrait.png" in msg and "frontal" in msg and "80 px" in msg
    assert isinstance(exc.value, ValueError)
    assert detect_faces(img, allow_empty=True) == []


def test_two_faces_largest_first(photo: np.ndarray) -> None:
    head = photo[40:260, 120:330]
    canvas = np.full((420, 760, 3), 200, np.uint8)
    canvas[20:240, 20:230] = head  # small copy (face ~90 px)
    canvas[30:382, 300:636] = np.asarray(Image.fromarray(head).resize((336, 352), Image.BICUBIC))
    boxes = detect_faces(canvas)
    assert len(boxes) == 2
    assert boxes[0].area > boxes[1].area
    assert boxes[0].center[0] > 300 and boxes[1].center[0] < 230
    small = landmarks68(canvas, face_index=1)
    assert small[:, 0].max() < 240
    with pytest.raises(FaceNotFoundError, match="face_index=2"):
        landmarks68(canvas, face_index=2)


def test_huge_and_small_images_map_back(photo: np.ndarray, lm: np.ndarray) -> None:
    an = FaceAnalyzer(max_side=256)  # forces the downscale path on the 512 photo
    b = an.detect(photo)[0]
    assert 150 < b.center[0] < 260 and 60 < b.width < 140
    small = np.asarray(Image.fromarray(photo).resize((200, 200), Image.LANCZOS))  # face ~35 px
    bs = detect_faces(small)  # needs the upsampling path
    assert bs and abs(bs[0].center[0] - b.center[0] * 200 / 512) < 10


def test_cnn_fallback_on_strong_roll(photo: np.ndarray) -> None:
    sub = np.ascontiguousarray(photo[0:280, 90:370])
    rolled = np.rint(sktf.rotate(sub / 255.0, 45, mode="edge") * 255).astype(np.uint8)
    boxes = detect_faces(rolled)  # HOG's frontal filters miss a 45-degree roll
    assert boxes[0].detector == "cnn"
    c = np.array([139.5, 139.5])  # where skimage's rotate moves the face centre (132, 126) to
    face_c = c + sktf.EuclideanTransform(rotation=np.deg2rad(45)).inverse(np.array([[132.0, 126.0]]) - c)[0]
    assert np.hypot(*(np.array(boxes[0].center) - face_c)) < 30


def test_embedding_is_stable(photo: np.ndarray, lm: np.ndarray) -> None:
    e = face_embedding(photo, lm)
    assert e.shape == (128,) and np.isfinite(e).all()
    shifted = _translate(photo, 7, -5)
    e2 = face_embedding(shifted)  # detects on its own
    assert np.linalg.norm(e - e2) < 0.3  # dlib's same-person threshold is 0.6


# ----------------------------------------------------------------------------- alignment
def test_similarity_matches_skimage() -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 300, (3, 2))
    t = sktf.SimilarityTransform(scale=1.3, rotation=0.4, translation=(5, -7))
    dst = t(src) + rng.normal(0, 2, (3, 2))
    ref = sktf.SimilarityTransform.from_estimate(src, dst) if hasattr(
        sktf.SimilarityTransform, "from_estimate") else None
    if ref is None:  # older scikit-image
        ref = sktf.SimilarityTransform()
        ref.estimate(src, dst)
    np.testing.assert_allclose(similarity_lstsq(src, dst), ref.params[:2], atol=1e-9)


def test_synthetic_configuration_is_exact() -> None:
    # Landmarks built in the 224 frame with the template three points, then moved into "image"
    # space by a known similarity G; the alignment must undo G exactly.
    rng = np.random.default_rng(2)
    frame_pts = rng.uniform(20, 200, (68, 2))
    hexagon = np.stack([np.cos(np.arange(6) * np.pi / 3), np.sin(np.arange(6) * np.pi / 3)], 1) * [6, 3]
    octagon = np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1) * [9, 4]
    frame_pts[36:42] = TEMPLATE_224[0] + hexagon
    frame_pts[42:48] = TEMPLATE_224[1] + hexagon
    frame_pts[60:68] = TEMPLATE_224[2] + octagon
    th, s = np.deg2rad(20.0), 1.7
    g = np.array([[s * np.cos(th), -s * np.sin(th), 300.0], [s * np.sin(th), s * np.cos(th), 150.0]])
    img_pts = transform_points(g, frame_pts)
    np.testing.assert_allclose(frame_matrix(img_pts), invert_affine(g), atol=1e-9)
    m = alignment_matrix(img_pts)
    np.testing.assert_allclose(transform_points(m, three_points(img_pts)), NET_TARGET, atol=1e-3)
    np.testing.assert_allclose(transform_points(m, img_pts), transform_points(crop_matrix(), frame_pts),
                               atol=1e-6)
    np.testing.assert_allclose(transform_points(invert_affine(m), transform_points(m, img_pts)), img_pts,
                               atol=1e-6)
    # smaller presets: same crop, scaled
    m64 = alignment_matrix(img_pts, size=64)
    np.testing.assert_allclose(transform_points(m64, three_points(img_pts)),
                               (NET_TARGET + 0.5) * 64 / 224 - 0.5, atol=1e-3)


def test_alignment_on_photo(photo: np.ndarray, lm: np.ndarray) -> None:
    crop, m = align_face(photo, lm)
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    pts = transform_points(m, three_points(lm))
    # official rule: least-squares similarity, then the mouth is pinned exactly
    np.testing.assert_allclose(pts[2], NET_TARGET[2], atol=1e-6)
    ref = sktf.SimilarityTransform()
    ref.params = np.vstack([similarity_lstsq(three_points(lm), TEMPLATE_224), [0, 0, 1]])
    expected = ref(three_points(lm))
    expected += TEMPLATE_224[2] - expected[2]
    np.testing.assert_allclose(pts, transform_points(crop_matrix(), expected), atol=1e-6)
    # Eyes land at the least-squares optimum, which for this face (mouth close to the eyes compared
    # with the template) is ~7.5 px from the nominal eye targets; they stay level.
    assert np.abs(pts[:2] - NET_TARGET[:2]).max() < 9
    assert abs(pts[0, 1] - pts[1, 1]) < 1.5
    # Re-detecting on the crop agrees with the transformed landmarks.
    redetected = three_points(landmarks68(crop))
    assert np.abs(redetected - pts).max() < 2.5


def test_crop_matches_independent_two_stage_warp(photo: np.ndarray, lm: np.ndarray) -> None:
    crop, _ = align_face(photo, lm)
    fm = frame_matrix(lm)
    inv = invert_affine(fm)
    gx, gy = np.meshgrid(np.arange(224.0), np.arange(224.0))
    sx = inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2]
    sy = inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]
    frame = np.stack([ndimage.map_coordinates(photo[..., c].astype(float), [sy, sx], order=1, mode="nearest")
                      for c in range(3)], -1)
    frame = np.clip(np.rint(frame), 0, 255).astype(np.uint8)[0:192, 16:208]
    ref = np.asarray(Image.fromarray(frame).resize((224, 224), Image.BILINEAR)).astype(float)
    assert np.abs(ref - crop).mean() < 0.5


@pytest.mark.parametrize("size", [64, 96])
def test_small_presets_are_the_same_crop(photo: np.ndarray, lm: np.ndarray, size: int) -> None:
    big, _ = align_face(photo, lm)
    small, m = align_face(photo, lm, size=size)
    assert small.shape == (size, size, 3)
    down = np.asarray(Image.fromarray(big).resize((size, size), Image.BOX)).astype(float)
    assert np.abs(down - small).mean() < 4


def test_rotation_invariance(photo: np.ndarray, lm: np.ndarray) -> None:
    crop, _ = align_face(photo, lm)
    centre = tuple(three_points(lm).mean(0))
    rot = np.rint(sktf.rotate(photo / 255.0, 15, center=centre, mode="edge") * 255).astype(np.uint8)
    crop_r, _ = align_face(rot, landmarks68(rot))
    assert np.abs(crop_r.astype(float) - crop).mean() < 8  # measured ~4.2 (landmark noise + resampling)


def test_official_sequence_single_frame(lm: np.ndarray) -> None:
    (m,) = official_sequence_matrices([lm])
    np.testing.assert_allclose(m, alignment_matrix(lm), atol=1e-9)


# ----------------------------------------------------------------------------- tracking
def _jittered_sequence(lm: np.ndarray, n: int, seed: int, sigma: float = 1.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    centre = lm.mean(0)
    seq = []
    for _ in range(n):
        th = np.deg2rad(rng.normal(0, 1.0 * sigma))
        s = np.exp(rng.normal(0, 0.02 * sigma))
        rot = s * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
        seq.append((lm - centre) @ rot.T + centre + rng.normal(0, 2.0 * sigma, 2))
    return seq


def test_params_roundtrip(lm: np.ndarray) -> None:
    fm = frame_matrix(lm)
    np.testing.assert_allclose(params_to_matrix(matrix_to_params(fm)), fm, atol=1e-9)


def test_tracker_smooths_jitter(lm: np.ndarray) -> None:
    seq = _jittered_sequence(lm, 80, seed=3)
    tracker = FaceTracker(window=9, keep_frames=False)
    out = []
    for i, x in enumerate(seq):
        out += tracker.push_landmarks(x)
        assert len(out) >= i + 1 - 4  # bounded lookahead: results lag at most window // 2 frames
        assert len(tracker._queue) <= 5
    out += tracker.flush()
    assert [t.index for t in out] == list(range(80))
    crop = invert_affine(crop_matrix())
    raw = np.array([matrix_to_params(compose(crop, t.raw_matrix)) for t in out])[4:-4]
    smooth = np.array([matrix_to_params(compose(crop, t.matrix)) for t in out])[4:-4]
    ratio = raw.var(0) / smooth.var(0)
    assert (ratio > 4).all(), ratio  # ideal for i.i.d. jitter and a 9-tap mean: 9


def test_tracker_keeps_linear_motion_and_fills_gaps(lm: np.ndarray) -> None:
    seq = [lm + [2.0 * i, -1.0 * i] for i in range(20)]
    pushed: list[np.ndarray | None] = list(seq)
    pushed[8:11] = [None, None, None]  # a 3-frame gap
    tracker = FaceTracker(window=5, max_gap=4, keep_frames=False)
    out = [t for x in pushed for t in tracker.push_landmarks(x)] + tracker.flush()
    assert [t.index for t in out] == list(range(20))
    assert [t.interpolated for t in out[7:12]] == [False, True, True, True, False]
    for t, truth in zip(out, seq, strict=True):
        np.testing.assert_allclose(t.landmarks, truth, atol=1e-9)
        # a pure translation passes through the centred average unchanged
        np.testing.assert_allclose(t.matrix, alignment_matrix(truth), atol=1e-6)


@pytest.mark.parametrize("gap", [False, True])
def test_tracker_does_not_smooth_across_cuts(lm: np.ndarray, gap: bool) -> None:
    a, b = lm, lm + [150.0, 20.0]  # a shot cut at frame 10
    seq: list[np.ndarray | None] = [a] * 10 + [b] * 10
    if gap:
        seq[8:12] = [None] * 4
    tracker = FaceTracker(window=9, keep_frames=False)
    out = [t for x in seq for t in tracker.push_landmarks(x)] + tracker.flush()
    ma, mb = alignment_matrix(a), alignment_matrix(b)
    for t in out:
        # every crop is exactly one of the two static framings, never a blend or a sweep
        assert np.allclose(t.matrix, ma, atol=1e-6) or np.allclose(t.matrix, mb, atol=1e-6), t.index
    assert np.allclose(out[9].matrix, ma, atol=1e-6) and np.allclose(out[10].matrix, mb, atol=1e-6)


def test_tracker_long_gap_raises_with_frame_numbers(lm: np.ndarray) -> None:
    seq: list[np.ndarray | None] = [lm] * 5 + [None] * 6 + [lm] * 3
    tracker = FaceTracker(window=3, max_gap=4, keep_frames=False)
    with pytest.raises(FaceLostError, match=r"frames 5-9") as exc:
        for x in seq:
            tracker.push_landmarks(x)
    assert "max_gap=4" in str(exc.value)
    all_lost = FaceTracker(keep_frames=False)
    all_lost.push_landmarks(None)
    with pytest.raises(FaceLostError, match="no face"):
        all_lost.flush()


def test_track_real_frames(photo: np.ndarray, lm: np.ndarray) -> None:
    blank = np.full_like(photo, 90)
    frames = [_translate(photo, 3 * i, 2 * i) for i in range(6)]
    frames[3] = blank  # lost face, interpolated
    hog_only = default_analyzer().with_options(use_cnn=False)  # the CNN would spend seconds on the blank
    out = list(track_landmarks(iter(frames), analyzer=hog_only, window=3, max_gap=2))
    assert [t.index for t in out] == list(range(6))
    assert [t.interpolated for t in out] == [False, False, False, True, False, False]
    for i, t in enumerate(out):
        expected = lm + [3 * i, 2 * i]
        assert np.abs(t.landmarks - expected).mean() < 1.5
        pts = transform_points(t.matrix, three_points(expected))
        assert np.abs(pts[2] - NET_TARGET[2]).max() < 2.0
    tracker = FaceTracker(window=3)
    crop = tracker.aligned(out[4])
    assert crop.shape == (224, 224, 3)


# ----------------------------------------------------------------------------- paste-back
def test_paste_back_roundtrip(photo: np.ndarray, lm: np.ndarray) -> None:
    crop, m = align_face(photo, lm)
    out = paste_back(photo, crop, m)
    assert out.shape == photo.shape and out.dtype == np.uint8
    inner = face_mask(224, feather=0.0) > 0
    gx, gy = np.meshgrid(np.arange(512.0), np.arange(512.0))
    q = transform_points(m, np.stack([gx.ravel(), gy.ravel()], 1))
    qi = np.clip(np.rint(q).astype(int), 0, 223)
    in_face = inner[qi[:, 1], qi[:, 0]].reshape(512, 512) & (q.min(1) >= 0).reshape(512, 512)
    in_face &= (q.max(1) <= 223).reshape(512, 512)
    diff = np.abs(out.astype(float) - photo)
    assert in_face.sum() > 4000
    assert diff[in_face].mean() < 4  # two bilinear resamplings of the same pixels
    # far from the face (beyond the crop) the photo is untouched, bit for bit
    assert np.array_equal(out[:40], photo[:40]) and np.array_equal(out[330:], photo[330:])
    # a generated black face really lands on the face, with a feathered edge
    black = paste_back(photo, np.zeros_like(crop), m)
    c = three_points(lm).mean(0).astype(int)
    assert black[c[1], c[0]].max() < 5
    assert np.array_equal(paste_back(photo, crop, m, mask="rect", feather=0.0)[:40], photo[:40])


def test_paste_back_capped_to_max_size(photo: np.ndarray, lm: np.ndarray) -> None:
    from pcavs.face.paste import fit_paste_back

    crop, m = align_face(photo, lm)
    dark = (crop // 3).astype(np.uint8)  # a visibly different face
    full = paste_back(photo, dark, m)
    bg, m2, note = fit_paste_back(photo, m, 256, name="me.png")
    assert bg.shape == (256, 256, 3) and note is not None and "me.png is 512x512" in note and "256x256" in note
    small = paste_back(bg, dark, m2)
    # the face lands where it does at full size, scaled (a 2x box-filtered copy of the full-size result)
    ref = full.reshape(256, 2, 256, 2, 3).mean((1, 3))
    assert np.abs(small.astype(float) - ref).mean() < 2.5
    # below the cap, or 0 = no cap: the photo as it is (cut to even sizes), no note
    odd = photo[:301, :299]
    bg, m3, note = fit_paste_back(odd, m, 0)
    assert bg.shape == (300, 298, 3) and note is None and np.array_equal(m3, m)
    assert fit_paste_back(photo, m)[2] is None  # 512 <= 1920
    # beyond H.264's largest level (139264 macroblocks): refused, whatever the cap
    huge = np.broadcast_to(np.zeros(3, np.uint8), (6000, 6000, 3))
    with pytest.raises(ValueError, match=r"6000x6000 is beyond H\.264's largest level .*140625"):
        fit_paste_back(huge, m, 0)
    assert fit_paste_back(huge, m)[0].shape == (1920, 1920, 3)


def test_tracker_follows_a_rolled_face_without_full_frame_cnn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where HOG misses a rolled face, the window CNN and landmark following replace the whole-frame CNN."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "tracking.py"
    spec = importlib.util.spec_from_file_location("bench_tracking", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    frames, mats = bench.make_video(40, (640, 360), roll_deg=50.0)
    an = default_analyzer()
    full = []
    detect = type(an).detect
    monkeypatch.setattr(type(an), "detect", lambda self, img, **k: full.append(1) or detect(self, img, **k))
    tracker = FaceTracker(an, window=1, max_gap=1 << 30, keep_frames=False)
    out = [r for f in frames for r in tracker.push(f)] + tracker.flush()
    assert len(out) == 40 and not any(r.interpolated for r in out)
    kinds = {r.box.detector for r in out if r.box is not None}
    assert "landmarks" in kinds  # some frames were followed
    assert len(full) <= 4, len(full)  # the old tracker searched the whole frame (CNN) on 13 of these 40
