"""Face detection, 68-point landmarks, official PC-AVS alignment, video tracking and paste-back.

All images are numpy HxWx3 uint8 RGB arrays.  Typical use::

    from pcavs.face import landmarks68, align_face, paste_back
    lm = landmarks68(photo, name="photo.jpg")      # largest face; FaceNotFoundError if none
    crop, m = align_face(photo, lm)                # 224x224 network input + original->input matrix
    ...                                            # generate a new 224x224 face
    frame = paste_back(photo, generated, m)        # back into the full-resolution photo

Models (dlib, shipped in wheels) are loaded lazily on first use; importing this package is cheap.
"""

from .align import (
    ALIGN_FRAME,
    LOADER_CROP,
    TEMPLATE_224,
    align_face,
    alignment_matrix,
    clip_frame_matrices,
    compose,
    crop_matrix,
    frame_matrix,
    invert_affine,
    official_sequence_matrices,
    similarity_lstsq,
    three_points,
    transform_points,
    warp_to_input,
)
from .clip import ClipTrack, clip_crops, track_clip
from .detect import (
    Box,
    FaceAnalyzer,
    FaceNotFoundError,
    as_rgb_uint8,
    default_analyzer,
    detect_face,
    detect_faces,
    face_embedding,
    landmarks68,
)
from .paste import face_mask, paste_back
from .track import (
    FaceLostError,
    FaceTracker,
    TrackedFrame,
    matrix_to_params,
    params_to_matrix,
    track_landmarks,
)

__all__ = [
    "ALIGN_FRAME",
    "LOADER_CROP",
    "TEMPLATE_224",
    "Box",
    "ClipTrack",
    "FaceAnalyzer",
    "FaceLostError",
    "FaceNotFoundError",
    "FaceTracker",
    "TrackedFrame",
    "align_face",
    "alignment_matrix",
    "as_rgb_uint8",
    "clip_crops",
    "clip_frame_matrices",
    "compose",
    "crop_matrix",
    "default_analyzer",
    "detect_face",
    "detect_faces",
    "face_embedding",
    "face_mask",
    "frame_matrix",
    "invert_affine",
    "landmarks68",
    "matrix_to_params",
    "official_sequence_matrices",
    "params_to_matrix",
    "paste_back",
    "similarity_lstsq",
    "three_points",
    "track_clip",
    "track_landmarks",
    "transform_points",
    "warp_to_input",
]
