"""A video file a player can watch while it grows: fragmented MP4 or an HLS playlist (H.264 + AAC).

``.mp4``/``.mov``: ``movflags=frag_keyframe+empty_moov+default_base_moof``: the header comes first and
holds no sample table, then one self-contained fragment per keyframe (every ``keyframe_s`` seconds), so
everything before the last complete fragment is playable at any moment (``ffplay``, browsers via MSE,
``pcavs.media.read_video_frames``). ``.m3u8``: an HLS event playlist with ``keyframe_s``-second
MPEG-TS segments next to it (``NAME_00000.ts``, ...), rewritten as each segment completes.

Video frame ``index`` is at ``index / fps`` and audio sample 0 at 0, as in :class:`pcavs.media.VideoWriter`,
so sound and picture share the one timeline the stream's frames were made on. The file is written in
place, not atomically (it is meant to be read while it grows); inputs are checked before it is created,
and a stopped run leaves a valid file up to its last fragment.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pcavs.media import MediaError

__all__ = ["LIVE_FORMATS", "LiveWriter", "check_live_output"]

LIVE_FORMATS = {".mp4": "mp4", ".mov": "mov", ".m3u8": "hls"}


def check_live_output(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """The output path, refused (with the fix) before anything is written."""
    p = Path(path)
    if p.suffix.lower() not in LIVE_FORMATS:
        raise MediaError(f"{p}: unsupported extension {p.suffix!r}; use .mp4 (fragmented) or .m3u8 (HLS)")
    if p.is_dir():
        raise MediaError(f"{p}: is a folder; give a file name such as {p / 'live.mp4'}")
    if not p.parent.is_dir():
        raise MediaError(f"{p}: folder {p.parent} does not exist; create it or choose another -o")
    if p.exists() and not overwrite:
        raise MediaError(f"{p}: already exists; pass --overwrite (-y) to replace it, or choose another -o")
    return p


class LiveWriter:
    """Append frames (by index) and audio (float PCM) as they are made; see the module docstring.

    ``size`` is the frames' (height, width).
    """

    def __init__(self, path: str | os.PathLike[str], size: tuple[int, int], fps: int = 25, sample_rate: int = 16000,
                 keyframe_s: float = 1.0, crf: int = 23, audio_bitrate: int = 64000) -> None:
        self.path = Path(path)
        fmt = LIVE_FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise MediaError(f"{self.path}: unsupported extension; use .mp4 or .m3u8")
        self.fps, self.sample_rate = int(fps), int(sample_rate)
        self._gop = max(1, round(keyframe_s * self.fps))
        if fmt == "hls":
            seg = self.path.with_name(f"{self.path.stem}_%05d.ts")
            options = {"hls_time": f"{keyframe_s:g}", "hls_list_size": "0", "hls_playlist_type": "event",
                       "hls_segment_filename": str(seg)}
        else:
            options = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
        try:
            self._container = av.open(str(self.path), mode="w", format=fmt, options=options)
        except (av.error.FFmpegError, OSError) as e:
            raise MediaError(f"{self.path}: cannot create output ({e}); check folder permissions") from None
        self._vstream = self._container.add_stream("libx264", rate=self.fps)
        self._astream = self._container.add_stream("aac", rate=self.sample_rate, layout="mono")
        self._astream.bit_rate = audio_bitrate
        self._crf = crf
        self._start(*size)  # the muxer opens every encoder at its first packet, audio may come first
        self._audio_pos = 0
        self._last_index = -1
        self.frames_written = 0
        self._closed = False

    def _start(self, h: int, w: int) -> None:
        self._size = (h, w)
        s = self._vstream
        s.width, s.height = w + (w % 2), h + (h % 2)
        s.pix_fmt = "yuv420p"
        s.codec_context.time_base = Fraction(1, self.fps)
        # zerolatency: no lookahead or B-frames, so a frame is in the file as soon as it is encoded;
        # a keyframe every _gop frames starts a fragment / segment a player can join at
        s.options = {"crf": str(self._crf), "preset": "veryfast", "tune": "zerolatency",
                     "x264-params": f"keyint={self._gop}:min-keyint={self._gop}:scenecut=0"}

    def write_frame(self, image: np.ndarray, index: int) -> None:
        """Frame ``index`` (shown at ``index / fps``): (H, W, 3) uint8 RGB; indices must increase."""
        if index <= self._last_index:
            raise MediaError(f"{self.path}: frame {index} after frame {self._last_index}; indices must increase")
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise MediaError(f"{self.path}: a frame must be (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
        h, w = self._size
        if img.shape[:2] != (h, w):
            raise MediaError(f"{self.path}: frame size changed from {(h, w)} to {img.shape[:2]}")
        if h % 2 or w % 2:
            img = np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        vf = vf.reformat(format="yuv420p", dst_colorspace="itu601")
        vf.pts = index
        vf.time_base = Fraction(1, self.fps)
        self._mux(self._vstream.encode(vf))
        self._last_index = index
        self.frames_written += 1

    def write_audio(self, samples: np.ndarray) -> None:
        """Append mono float PCM in [-1, 1] at ``sample_rate``; sample 0 is at time 0."""
        x = np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
        if x.size == 0:
            return
        af = av.AudioFrame.from_ndarray(x[None], format="fltp", layout="mono")
        af.sample_rate = self.sample_rate
        af.pts = self._audio_pos
        af.time_base = Fraction(1, self.sample_rate)
        self._audio_pos += x.size
        self._mux(self._astream.encode(af))

    def close(self) -> None:
        """Flush the encoders and finish the file (the last fragment / segment and the end tag)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._mux(self._vstream.encode(None))
            self._mux(self._astream.encode(None))
        finally:
            self._container.close()

    def __enter__(self) -> LiveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self._container.mux(packets)
        except av.error.FFmpegError as e:
            raise MediaError(f"{self.path}: writing failed ({e}); check free disk space") from None
