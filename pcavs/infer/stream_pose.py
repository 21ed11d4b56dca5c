"""Live head pose: camera frames tracked into pose codes (causal clip crop), and the codes in force per frame."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

from pcavs.face.align import TEMPLATE_224, similarity_lstsq, three_points, transform_points, warp_to_input

from .posesource import PoseCodes

__all__ = ["CAMERA_MAX_SIDE", "CameraPose", "LiveCrop", "LivePose"]

CAMERA_MAX_SIDE = 320  # camera frames are tracked at this size (pose only needs the face's geometry)


class LiveCrop:
    """The official clip crop, made causal for a live camera: the similarity is fitted to the eye and
    mouth points averaged over the first ``settle`` frames seen (then fixed, as one shot), and each
    frame's mouth is pinned by a translation smoothed 0.2/0.8 (as :func:`clip_frame_matrices`)."""

    def __init__(self, size: int, settle: int = 25) -> None:
        self.size, self.settle = size, settle
        self._pts: list[np.ndarray] = []
        self._base: np.ndarray | None = None
        self._bias: np.ndarray | None = None

    def __call__(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        p = three_points(landmarks)
        if len(self._pts) < self.settle:
            self._pts.append(p)
            self._base = similarity_lstsq(np.mean(self._pts, axis=0), TEMPLATE_224)
        base = self._base
        assert base is not None
        bias = TEMPLATE_224[2] - transform_points(base, p[2:3])[0]
        if self._bias is not None:
            bias = 0.2 * self._bias + 0.8 * bias
        self._bias = bias
        m = base.copy()
        m[:, 2] += bias
        return warp_to_input(image, m, self.size)


class CameraPose:
    """Camera frame -> pose code: HOG face and 68 landmarks at <= ``max_side`` px, the causal clip crop
    (:class:`LiveCrop`), then ``encode`` (the model's pose encoder on the crop). Raises LookupError when
    no face is found."""

    def __init__(self, analyzer: Any, encode: Callable[[np.ndarray], torch.Tensor], size: int,
                 max_side: int = CAMERA_MAX_SIDE) -> None:
        # HOG without upsampling: ~10 ms a frame at 320 px; the detector holds the GIL, and a server
        # sending the picture from the same process must not stall behind it
        self.analyzer = analyzer.with_options(use_cnn=False, upsample_levels=0)
        self.encode, self.max_side = encode, max_side
        self.crop = LiveCrop(size)

    def warm(self) -> None:
        """Load the detector and landmark models now (1-3 s, GIL held): not on the first camera frame,
        when the same process is sending a live stream (that stall delayed every send by seconds)."""
        self.analyzer.preload("hog", "shape")

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        h, w = image.shape[:2]
        if max(h, w) > self.max_side:
            f = self.max_side / max(h, w)
            image = np.asarray(Image.fromarray(image).resize((round(w * f), round(h * f)), Image.BILINEAR))
        boxes = self.analyzer.detect(image, name="camera frame", allow_empty=True)
        if not boxes:
            raise LookupError("no face")
        lm = self.analyzer.landmarks(image, boxes[0], name="camera frame")
        with torch.inference_mode():
            return self.encode(self.crop(image, lm))


class LivePose:
    """Pose codes for output frames: the latest code pushed at or before a frame's time, else ``base``."""

    def __init__(self, base: PoseCodes, fps: int = 25) -> None:
        self.base, self.fps = base, fps
        self._times: deque[float] = deque()
        self._codes: deque[torch.Tensor] = deque()

    def push(self, code: torch.Tensor | np.ndarray, t: float) -> None:
        if self._times and t < self._times[-1]:
            raise ValueError(f"pose times must not go back ({t} after {self._times[-1]})")
        self._times.append(float(t))
        self._codes.append(torch.as_tensor(np.asarray(code, np.float32)).reshape(-1))

    def codes(self, start: int, stop: int) -> torch.Tensor:
        base = self.base.codes(start, stop)
        if not self._times:
            return base
        out = base.clone()
        times = list(self._times)
        for j, i in enumerate(range(start, stop)):
            k = bisect.bisect_right(times, i / self.fps) - 1
            if k >= 0:
                out[j] = self._codes[k]
        # codes older than the one in force at `stop` are never needed again
        while len(self._times) > 1 and self._times[1] <= stop / self.fps:
            self._times.popleft()
            self._codes.popleft()
        return out

    def close(self) -> None:
        self.base.close()
