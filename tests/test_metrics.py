"""Tests for pcavs.eval metrics: oracle comparisons (scikit-image, the `cpbd` package) and known answers."""

from __future__ import annotations

import importlib

import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi

from pcavs.eval.metrics import (
    MODEL_LANDMARK_INDICES,
    MODEL_POINTS_3D,
    camera_matrix,
    canny,
    cpbd,
    csim,
    euler_to_matrix,
    head_pose_from_landmarks,
    head_pose_sequence,
    lmd,
    luma_bt601,
    pose_error,
    psnr,
    psnr_batch,
    ssim,
    ssim_batch,
    sync_offset,
    sync_offset_from_scores,
    sync_scores,
    sync_scores_from_similarity,
)

skimage_data = pytest.importorskip("skimage.data")
skimage_metrics = pytest.importorskip("skimage.metrics")

SK_SSIM = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)


def _noisy(img: np.ndarray, std: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(img + rng.normal(0.0, std, img.shape)), 0, 255).astype(np.uint8)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma == 0:
        return img
    return np.clip(np.rint(ndi.gaussian_filter(img.astype(np.float64), sigma)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()[:256, 128:384]  # 256x256 RGB, the face region


# ----------------------------------------------------------------------------- SSIM / PSNR


def test_ssim_matches_skimage_rgb_gray_and_batch(astronaut: np.ndarray) -> None:
    noisy = _noisy(astronaut, 20.0)
    ref = skimage_metrics.structural_similarity(astronaut, noisy, channel_axis=-1, **SK_SSIM)
    assert abs(ssim(astronaut, noisy) - ref) < 1e-4
    g0, g1 = astronaut[..., 1], noisy[..., 1]
    assert abs(ssim(g0, g1) - skimage_metrics.structural_similarity(g0, g1, **SK_SSIM)) < 1e-4
    y0, y1 = luma_bt601(astronaut), luma_bt601(noisy)
    ref_y = skimage_metrics.structural_similarity(y0, y1, **SK_SSIM)
    assert abs(ssim(astronaut, noisy, channel_mode="luma") - ref_y) < 1e-4

    frames = np.stack([_noisy(astronaut, s, seed=i) for i, s in enumerate((2.0, 8.0, 30.0))])
    refs = np.stack([astronaut] * 3)
    batch = ssim_batch(refs, frames)
    oracle = [
        skimage_metrics.structural_similarity(r, f, channel_axis=-1, **SK_SSIM)
        for r, f in zip(refs, frames, strict=True)
    ]
    assert batch.shape == (3,)
    np.testing.assert_allclose(batch, oracle, atol=1e-4)
    # grayscale batches and float [0, 1] inputs with their own data_range
    np.testing.assert_allclose(
        ssim_batch(refs[..., 0], frames[..., 0])[1], ssim(refs[1, ..., 0], frames[1, ..., 0])
    )
    assert abs(ssim(astronaut / 255.0, noisy / 255.0, data_range=1.0) - ref) < 1e-9


def test_ssim_identity_and_noise_monotonic(astronaut: np.ndarray) -> None:
    assert ssim(astronaut, astronaut) == pytest.approx(1.0, abs=1e-12)
    scores = [ssim(astronaut, _noisy(astronaut, s)) for s in (1.0, 5.0, 15.0, 40.0)]
    assert np.all(np.diff(scores) < 0), scores
    with pytest.raises(ValueError):
        ssim(astronaut[:8, :8], astronaut[:8, :8])  # smaller than the 11x11 window


def test_psnr(astronaut: np.ndarray) -> None:
    assert psnr(astronaut, astronaut) == float("inf")
    noisy = _noisy(astronaut, 10.0)
    ref = skimage_metrics.peak_signal_noise_ratio(astronaut, noisy, data_range=255)
    assert psnr(astronaut, noisy) == pytest.approx(ref, abs=1e-9)
    out = psnr_batch(np.stack([astronaut, astronaut]), np.stack([astronaut, noisy]))
    assert out[0] == float("inf") and out[1] == pytest.approx(ref, abs=1e-9)
    # known answer: constant error of 1 grey level -> 10*log10(255^2)
    assert psnr(np.zeros((4, 4)), np.ones((4, 4))) == pytest.approx(20 * np.log10(255.0))


# ----------------------------------------------------------------------------- CPBD


def _cpbd_images() -> dict[str, np.ndarray]:
    face = np.rint(luma_bt601(skimage_data.astronaut())).astype(np.uint8)
    return {"camera": skimage_data.camera(), "astronaut": face, "face224": face[20:244, 140:364]}


# Values of the reference `cpbd` 1.0.7 package on these exact inputs (see the
# oracle test); pinned so the check also runs where the package is absent.
PINNED_CPBD = {
    ("camera", 0): 0.7481657466284677,
    ("camera", 1): 0.34811843812669574,
    ("camera", 2): 0.016053141433711594,
    ("camera", 3): 0.006881720430107527,
    ("astronaut", 0): 0.38368206916594016,
    ("astronaut", 1): 0.1265773636187148,
    ("astronaut", 2): 0.004614940871070089,
    ("astronaut", 3): 0.0,
}


@pytest.fixture(scope="module")
def cpbd_reference():
    """The `cpbd` PyPI package, importable on modern SciPy via a test-only shim.

    cpbd 1.0.7 does ``from scipy.ndimage import imread`` (removed in SciPy 1.2) at
    import time, for its CLI only. Install with ``pip install --no-deps cpbd==1.0.7``.
    """
    mp = pytest.MonkeyPatch()
    mp.setattr(ndi, "imread", lambda *a, **k: None, raising=False)
    try:
        edges = importlib.import_module("skimage.filters.edges")
        if not hasattr(edges, "HSOBEL_WEIGHTS"):  # in case a future skimage drops it
            mp.setattr(
                edges, "HSOBEL_WEIGHTS", np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]]) / 4.0, raising=False
            )
        try:
            mod = importlib.import_module("cpbd")
        except ImportError:
            pytest.skip("reference package not installed: pip install --no-deps cpbd==1.0.7")
        yield mod
    finally:
        mp.undo()


def test_cpbd_matches_reference_package(cpbd_reference) -> None:
    for name, img in _cpbd_images().items():
        for sigma in (0, 1, 2, 3):
            x = _blur(img, sigma)
            ref = float(cpbd_reference.compute(x))
            assert abs(cpbd(x) - ref) < 0.01, (name, sigma)
            assert cpbd(x) == pytest.approx(ref, abs=1e-9), (name, sigma)  # in practice it is exact


def test_cpbd_pinned_values_and_monotonic_blur() -> None:
    images = _cpbd_images()
    for (name, sigma), ref in PINNED_CPBD.items():
        assert cpbd(_blur(images[name], sigma)) == pytest.approx(ref, abs=1e-9), (name, sigma)
    for name in ("camera", "face224"):
        vals = [cpbd(_blur(images[name], s)) for s in (0, 1, 2, 3)]
        assert np.all(np.diff(vals) < 0), (name, vals)
    assert cpbd(np.full((128, 128), 90, np.uint8)) == 0.0  # no edges at all
    assert cpbd(images["camera"].astype(np.float64)) == cpbd(images["camera"])
    with pytest.raises(ValueError):
        cpbd(skimage_data.astronaut())


def test_canny_matches_skimage() -> None:
    feature = pytest.importorskip("skimage.feature")
    for img in (skimage_data.camera(), skimage_data.coins(), _blur(skimage_data.camera(), 2)):
        x = img.astype(np.float64)
        np.testing.assert_array_equal(canny(x), feature.canny(x))
        np.testing.assert_array_equal(
            canny(x, sigma=2.0, low=5.0, high=20.0),
            feature.canny(x, sigma=2.0, low_threshold=5.0, high_threshold=20.0),
        )


# ----------------------------------------------------------------------------- LMD


def _face_landmarks(t: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(40, 180, size=(t, 68, 2))


def test_lmd_known_answers() -> None:
    real = _face_landmarks()
    assert lmd(real, real) == 0.0
    assert lmd(real + np.array([7.5, -3.0]), real) == pytest.approx(0.0, abs=1e-12)
    assert lmd(real + np.array([7.5, -3.0]), real, mouth_only=False) == pytest.approx(0.0, abs=1e-12)

    # Zero-mean per-point displacement of the 20 mouth points: the centroid is
    # unchanged, so LMD is exactly the mean displacement length.
    rng = np.random.default_rng(1)
    d = rng.normal(0, 2.0, size=(5, 20, 2))
    d -= d.mean(axis=1, keepdims=True)
    gen = real.copy()
    gen[:, 48:68] += d
    expected = np.linalg.norm(d, axis=-1).mean()
    assert lmd(gen, real) == pytest.approx(expected, rel=1e-12)
    # full face: the 48 untouched points contribute 0 distance
    assert lmd(gen, real, mouth_only=False) == pytest.approx(expected * 20 / 68, rel=1e-12)
    # a single frame works too, and (dx, dy) = (3, 4) on two opposite points gives 5 * 2 / 20
    one = real[0].copy()
    one[48] += [3.0, 4.0]
    one[54] -= [3.0, 4.0]
    assert lmd(one, real[0]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        lmd(real, real[:3])


# ----------------------------------------------------------------------------- CSIM


def test_csim() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 128))
    assert np.allclose(csim(a, 3.0 * a), 1.0)
    assert np.allclose(csim(a, -a), -1.0)
    e0, e1 = np.eye(128)[0], np.eye(128)[1]
    assert csim(e0, e1) == 0.0 and isinstance(csim(e0, e1), float)
    assert csim(np.array([1.0, 1.0]), np.array([1.0, 0.0])) == pytest.approx(np.sqrt(0.5))
    assert csim(a, a[0]).shape == (4,)
    assert csim(np.zeros(128), e0) == 0.0


# ----------------------------------------------------------------------------- head pose


def _project(yaw: float, pitch: float, roll: float, size: int | tuple[int, int], t=(4.0, -6.0, 1000.0)):
    rvec, _ = cv2.Rodrigues(euler_to_matrix(yaw, pitch, roll))
    pts, _ = cv2.projectPoints(MODEL_POINTS_3D, rvec, np.asarray(t), camera_matrix(size), np.zeros(4))
    lm = np.zeros((68, 2))
    lm[list(MODEL_LANDMARK_INDICES)] = pts[:, 0]
    return lm


def test_head_pose_recovers_known_rotation() -> None:
    lm = _project(20.0, -10.0, 5.0, 224)
    yaw, pitch, roll = head_pose_from_landmarks(lm, 224)
    assert max(abs(yaw - 20.0), abs(pitch + 10.0), abs(roll - 5.0)) < 1.0
    # non-square frame (height, width) and a sequence
    angles = np.array([[0.0, 0.0, 0.0], [-30.0, 15.0, -10.0], [35.0, 5.0, 12.0]])
    seq = np.stack([_project(*a, (256, 320), t=(10.0, 5.0, 1400.0)) for a in angles])
    est = head_pose_sequence(seq, (256, 320))
    assert est.shape == (3, 3)
    assert pose_error(est, angles) < 0.1


def test_head_pose_sign_convention() -> None:
    def eyes_mid(lm: np.ndarray) -> np.ndarray:
        return (lm[36] + lm[45]) / 2

    frontal = _project(0, 0, 0, 224)
    turned = _project(25, 0, 0, 224)
    assert (turned[30, 0] - eyes_mid(turned)[0]) < (
        frontal[30, 0] - eyes_mid(frontal)[0]
    )  # nose to image left
    down = _project(0, 20, 0, 224)
    assert (down[30, 1] - eyes_mid(down)[1]) > (frontal[30, 1] - eyes_mid(frontal)[1])  # nose lower
    tilted = _project(0, 0, 15, 224)
    assert tilted[45, 1] > tilted[36, 1]  # clockwise: image-right eye drops


def test_pose_error() -> None:
    assert pose_error(np.array([10.0, 0.0, -5.0]), np.array([12.0, 1.0, -5.0])) == pytest.approx(1.0)
    assert pose_error(np.array([[179.0, 0, 0]]), np.array([[-179.0, 0, 0]])) == pytest.approx(2.0 / 3.0)


# ----------------------------------------------------------------------------- sync


def test_sync_offset_recovers_shift() -> None:
    rng = np.random.default_rng(0)
    t, d, k = 80, 32, 3
    feats = rng.normal(size=(t + k, d))
    audio, visual = feats[:t], feats[k : k + t]  # visual[i] == audio[i + 3]
    offset, conf = sync_offset(audio, visual, max_shift=8)
    assert offset == 3 and conf > 0.5
    offset, conf = sync_offset(visual, audio, max_shift=8)
    assert offset == -3 and conf > 0.5
    scores = sync_scores(audio, visual, 8)
    assert scores.shape == (17,) and scores[8 + 3] == pytest.approx(1.0)
    # same answer from a precomputed (negative distance) similarity matrix
    sim = -np.linalg.norm(visual[:, None] - audio[None], axis=-1)
    assert sync_offset_from_scores(sync_scores_from_similarity(sim, 8))[0] == 3
    # shifts beyond the overlap are ignored rather than winning
    assert np.isneginf(sync_scores(audio[:2], visual[:2], 3)[0])
