"""Image, audio and video I/O. Images go through Pillow, everything else through PyAV (no ffmpeg binary).

Modules: ``common`` (the error, tensors, opening inputs), ``image``, ``sound``, ``video`` (reading and
probing), ``write`` (the atomic H.264 + AAC writer), ``probe`` (summaries of written files).

Conventions:
- images and video frames are ``uint8`` RGB arrays of shape (H, W, 3);
- audio is ``float32`` mono at 16 kHz, starting at the first decoded sample, with codec delay
  (AAC/MP3/Opus priming) and trailing encoder padding removed;
- video is resampled to a constant frame rate by sample-and-hold: output frame ``k`` is the latest
  source frame whose timestamp is ``<= k / fps`` (timestamps relative to the first frame);
- every failure is a :class:`MediaError` naming the file, the problem and what to do.
"""

from .common import _VIDEO_FORMATS as _VIDEO_FORMATS  # the containers VideoWriter writes
from .common import IMAGE_MAX_PIXELS, MediaError, images_to_tensor, require_file, tensor_to_images
from .image import read_image
from .probe import MediaSummary, StreamSummary, probe_output
from .sound import read_audio, read_audio_native
from .video import MAX_PLAUSIBLE_FPS, MediaWarning, VideoInfo, probe_video, read_video_frames
from .write import VideoWriter

__all__ = [
    "MediaError",
    "MediaWarning",
    "IMAGE_MAX_PIXELS",
    "read_image",
    "read_audio",
    "read_audio_native",
    "VideoInfo",
    "probe_video",
    "read_video_frames",
    "VideoWriter",
    "StreamSummary",
    "MediaSummary",
    "probe_output",
    "images_to_tensor",
    "tensor_to_images",
    "require_file",
    "MAX_PLAUSIBLE_FPS",
]
