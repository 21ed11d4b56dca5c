"""Head pose (yaw, pitch, roll) from 68-point landmarks via ``cv2.solvePnP``.

Model: the widely used six-point generic face (nose tip, chin, outer eye
corners, mouth corners; arbitrary units, ~0.1 mm) matched to iBUG-68 indices
30, 8, 36, 45, 48, 54. Its published coordinates are y-up / z-towards-viewer;
here they are rotated 180 degrees about x into OpenCV's camera convention
(x right, y down, z away from the camera), so the identity rotation is a face
looking straight into the camera.

Camera: pinhole, focal length = image width (pixels), principal point at the
image centre ``(W/2, H/2)``, no distortion.

Euler convention (degrees), object-to-camera rotation
``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)`` with right-handed rotations about the
camera axes:

* yaw > 0: the face turns towards image left (the subject's own right);
* pitch > 0: the face tilts down (nose towards image bottom);
* roll > 0: in-plane clockwise tilt as seen in the image.
"""

from __future__ import annotations

import cv2
import numpy as np

# iBUG-68 indices of the model points below, in the same order.
MODEL_LANDMARK_INDICES = (30, 8, 36, 45, 48, 54)
# Generic 6-point face, y-up / z-out as usually published: nose tip (0,0,0),
# chin (0,-330,-65), eye corners (+-225,170,-135), mouth corners (+-150,-150,-125);
# stored with y and z negated (OpenCV camera axes).
MODEL_POINTS_3D = np.array(
    [
        [0.0, 0.0, 0.0],  # nose tip (30)
        [0.0, 330.0, 65.0],  # chin (8)
        [-225.0, -170.0, 135.0],  # outer corner of the image-left eye (36)
        [225.0, -170.0, 135.0],  # outer corner of the image-right eye (45)
        [-150.0, 150.0, 125.0],  # image-left mouth corner (48)
        [150.0, 150.0, 125.0],  # image-right mouth corner (54)
    ]
)
_EYE_SPAN = 450.0  # model distance between the outer eye corners


def camera_matrix(image_size: int | tuple[int, int]) -> np.ndarray:
    """Intrinsics for ``image_size`` = side or ``(height, width)``: f = width, centred principal point."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    return np.array([[w, 0.0, w / 2.0], [0.0, w, h / 2.0], [0.0, 0.0, 1.0]], dtype=np.float64)


def euler_to_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """``Rz(roll) @ Ry(yaw) @ Rx(pitch)`` from degrees (see module docstring)."""
    y, p, r = np.radians([yaw, pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def matrix_to_euler(rot: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`euler_to_matrix`: (yaw, pitch, roll) in degrees, yaw in [-90, 90]."""
    yaw = np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0))
    pitch = np.arctan2(rot[2, 1], rot[2, 2])
    roll = np.arctan2(rot[1, 0], rot[0, 0])
    return float(np.degrees(yaw)), float(np.degrees(pitch)), float(np.degrees(roll))


def head_pose_from_landmarks(
    landmarks68: np.ndarray, image_size: int | tuple[int, int]
) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of one face from its ``(68, 2)`` pixel landmarks."""
    pts = np.asarray(landmarks68, dtype=np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {pts.shape}")
    img_pts = pts[list(MODEL_LANDMARK_INDICES)]
    k = camera_matrix(image_size)
    # Start from a frontal face at the distance implied by the eye span: the
    # iterative (Levenberg-Marquardt) solver then stays in the frontal basin
    # instead of the mirrored solution a 6-point fit sometimes prefers.
    span = max(float(np.linalg.norm(img_pts[3] - img_pts[2])), 1e-6)
    tz = k[0, 0] * _EYE_SPAN / span
    tvec = np.array([(img_pts[0, 0] - k[0, 2]) * tz / k[0, 0], (img_pts[0, 1] - k[1, 2]) * tz / k[1, 1], tz])
    rvec = np.zeros(3)
    ok, rvec, tvec = cv2.solvePnP(
        MODEL_POINTS_3D,
        img_pts,
        k,
        np.zeros(4),
        rvec=rvec.reshape(3, 1),
        tvec=tvec.reshape(3, 1),
        useExtrinsicGuess=True,
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok:
        raise RuntimeError("cv2.solvePnP failed")
    rot, _ = cv2.Rodrigues(rvec)
    return matrix_to_euler(rot)


def head_pose_sequence(landmarks: np.ndarray, image_size: int | tuple[int, int]) -> np.ndarray:
    """Per-frame (yaw, pitch, roll) in degrees for ``(T, 68, 2)`` landmarks; returns ``(T, 3)``."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 3:
        raise ValueError(f"expected (T, 68, 2) landmarks, got {lm.shape}")
    return np.array([head_pose_from_landmarks(f, image_size) for f in lm]).reshape(-1, 3)


def pose_error(gen_angles: np.ndarray, ref_angles: np.ndarray) -> float:
    """Mean absolute angle difference in degrees over all frames and axes (wrapped to [-180, 180))."""
    g = np.asarray(gen_angles, dtype=np.float64)
    r = np.asarray(ref_angles, dtype=np.float64)
    if g.shape != r.shape or g.size == 0:
        raise ValueError(f"angle arrays must be non-empty and equal in shape: {g.shape} vs {r.shape}")
    d = (g - r + 180.0) % 360.0 - 180.0
    return float(np.abs(d).mean())
