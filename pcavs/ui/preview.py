"""The face preview of ``pcavs ui``: the photo with its 68 landmarks and crop outline beside the aligned crop."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from pcavs.face import Box, align_face, alignment_matrix, invert_affine, transform_points

__all__ = ["PREVIEW_HEIGHT", "describe_face", "draw_face_preview"]

PREVIEW_HEIGHT = 320  # px of the preview panels
SMALL_FACE_PX = 112  # a crop enlarged from fewer photo pixels than this looks soft: the user is told

# 68-point iBUG groups: (first, last, closed) -> drawn as polylines
_GROUPS = [
    (0, 16, False),  # jaw
    (17, 21, False),  # brows
    (22, 26, False),
    (27, 30, False),  # nose bridge
    (30, 35, True),  # nostrils (closed through the tip)
    (36, 41, True),  # eyes
    (42, 47, True),
    (48, 59, True),  # outer lips
    (60, 67, True),  # inner lips
]
_FACE_COLOUR = (0, 230, 120)
_MOUTH_COLOUR = (255, 60, 160)  # the mouth drives lip sync: shown apart
_CROP_COLOUR = (255, 210, 0)


def _panel(image: np.ndarray, height: int, max_width: int) -> tuple[Image.Image, float]:
    h, w = image.shape[:2]
    scale = min(height / h, max_width / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return Image.fromarray(image).resize(size, Image.BILINEAR), scale


def _draw_landmarks(draw: ImageDraw.ImageDraw, pts: np.ndarray, radius: float, width: int) -> None:
    for first, last, closed in _GROUPS:
        seg = [tuple(map(float, p)) for p in pts[first : last + 1]]
        if closed:
            seg.append(seg[0])
        colour = _MOUTH_COLOUR if first >= 48 else _FACE_COLOUR
        draw.line(seg, fill=colour, width=width)
    for i, (x, y) in enumerate(pts):
        colour = _MOUTH_COLOUR if i >= 48 else _FACE_COLOUR
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour, outline=(0, 0, 0))


def draw_face_preview(
    photo: np.ndarray, landmarks: np.ndarray, crop_size: int = 224, height: int = PREVIEW_HEIGHT
) -> np.ndarray:
    """Side by side: the photo with its 68 landmarks and the crop outline, and the aligned crop.

    The crop is the official PC-AVS alignment (:func:`pcavs.face.align_face`) with the landmarks
    mapped into it; the yellow outline on the photo is the region that crop covers.
    """
    crop, matrix = align_face(photo, landmarks, size=crop_size)
    left, scale = _panel(photo, height, max_width=2 * height)
    d = ImageDraw.Draw(left)
    c = crop_size - 0.5
    corners = transform_points(invert_affine(matrix), np.array([[-0.5, -0.5], [c, -0.5], [c, c], [-0.5, c]]))
    outline = [tuple(map(float, p)) for p in (corners + 0.5) * scale]
    d.line([*outline, outline[0]], fill=_CROP_COLOUR, width=2)
    face_px = float(np.ptp(landmarks[:, 0])) * scale  # dots sized to the face as drawn, not to the panel
    _draw_landmarks(d, (landmarks + 0.5) * scale, radius=min(max(face_px / 70, 1.0), height / 160), width=1)
    right, cscale = _panel(crop, height, max_width=height)
    _draw_landmarks(ImageDraw.Draw(right), (transform_points(matrix, landmarks) + 0.5) * cscale,
                    radius=max(1.5, height / 160), width=1)
    gap = 12
    canvas = Image.new("RGB", (left.width + gap + right.width, max(left.height, right.height)), (255, 255, 255))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + gap, 0))
    return np.asarray(canvas)


def describe_face(photo: np.ndarray, boxes: list[Box], landmarks: np.ndarray) -> str:
    """The Markdown status under the preview: how many faces, the size of the one used, and a note when
    it is so small that the 224 px crop is enlarged (a soft video)."""
    box = boxes[0]
    region = 224.0 / math.sqrt(abs(np.linalg.det(alignment_matrix(landmarks, 224)[:, :2])))  # photo px in crop
    faces = f"{len(boxes)} faces found; the largest is used" if len(boxes) > 1 else "face found"
    text = (
        f"**{faces.capitalize()}** ({box.width:.0f}×{box.height:.0f} px in a "
        f"{photo.shape[1]}×{photo.shape[0]} photo). Left: the 68 landmarks and, in yellow, the region "
        "the model sees; right: that aligned crop. The eyes should be level and the mouth centred."
    )
    if region < SMALL_FACE_PX:
        text += (f" The face is small: the 224 px crop is enlarged from {region:.0f} px of the photo, so the "
                 "result may look soft; a larger face gives a sharper video.")
    return text
