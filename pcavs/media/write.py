"""The atomic streaming H.264 (+ AAC) writer."""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.error
import numpy as np
from av.video.reformatter import ColorRange

from .common import _VIDEO_FORMATS, MediaError


class VideoWriter:
    """Streaming H.264 (+ optional AAC) writer, atomic: the file appears only on successful close.

    ``with VideoWriter("out.mp4", audio=wave) as w: w.write(frames)``. Frames are written one
    batch at a time; the audio (float, mono (N,) or (N, 1|2) channels at ``sample_rate``) is interleaved as the video
    advances. Video frame i is at exactly i / fps; audio sample 0 is at time 0 (the AAC encoder
    priming gets negative timestamps, which the MP4 muxer turns into an edit list players honour).
    Odd frame sizes are padded by one replicated row/column (yuv420p needs even sizes). The data
    goes to ``.<name>.partial`` next to the target; without ``with``, call :meth:`close` (keep)
    or :meth:`abort` (discard). Audio longer than the video is kept whole.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: int = 25,
        audio: np.ndarray | None = None,
        sample_rate: int = 16000,
        crf: int = 18,
        preset: str = "medium",
        audio_bitrate: int = 64000,
        threads: int = 0,
    ) -> None:
        self.path = Path(path)
        folder = self.path.parent
        if not folder.is_dir():
            raise MediaError(f"{self.path}: folder {folder} does not exist; create it or choose another -o")
        if self.path.is_dir():
            raise MediaError(f"{self.path}: is a folder; give a file name such as {self.path / 'out.mp4'}")
        fmt = _VIDEO_FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise MediaError(f"{self.path}: unsupported extension {self.path.suffix!r}; use .mp4 (or .mov/.mkv)")
        if audio is not None:
            audio = np.asarray(audio, dtype=np.float32)
            if audio.ndim == 1:
                audio = audio[:, None]
            if audio.ndim != 2 or audio.shape[1] not in (1, 2):
                raise MediaError(f"{self.path}: audio must be mono (N,) or (N, 1|2) samples, got shape "
                                 f"{audio.shape}; downmix it")
            if not np.all(np.isfinite(audio)):
                raise MediaError(f"{self.path}: audio contains NaN/inf samples; fix the waveform")
            audio = np.clip(audio, -1.0, 1.0)
        self.fps = int(fps)
        self.sample_rate = int(sample_rate)
        self._audio = audio
        self._audio_pos = 0
        self._frames = 0
        self._size: tuple[int, int] | None = None  # (H, W) of incoming frames
        self._crf, self._preset, self._threads = crf, preset, threads
        self.tmp_path = folder / f".{self.path.name}.partial"
        options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        try:
            self._container = av.open(str(self.tmp_path), mode="w", format=fmt, options=options)
        except (av.error.FFmpegError, OSError) as e:
            raise MediaError(f"{self.path}: cannot create output ({e}); check folder permissions") from None
        self._closed = False
        try:
            self._vstream = self._container.add_stream("libx264", rate=self.fps)
            self._astream = None
            if audio is not None:
                self._layout = "mono" if audio.shape[1] == 1 else "stereo"
                self._astream = self._container.add_stream("aac", rate=self.sample_rate, layout=self._layout)
                # the default suits 16 kHz mono speech; wider sound keeps ~96 kb/s per channel
                wide = self.sample_rate > 24000 or audio.shape[1] > 1
                self._astream.bit_rate = max(audio_bitrate, 96000 * audio.shape[1]) if wide else audio_bitrate
        except BaseException:
            self.abort()
            raise

    # -- public ------------------------------------------------------------------------------

    @property
    def frames_written(self) -> int:
        return self._frames

    def write(self, frames: np.ndarray) -> None:
        """Append frames: ``uint8`` array (N, H, W, 3) or a single (H, W, 3) frame, RGB."""
        if self._closed:
            raise MediaError(f"{self.path}: writer is already closed")
        arr = np.asarray(frames)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[3] != 3:
            raise MediaError(f"{self.path}: frames must have shape (N, H, W, 3), got {arr.shape}")
        if arr.dtype != np.uint8:
            raise MediaError(
                f"{self.path}: frames must be uint8 RGB, got {arr.dtype}; convert with "
                "(x.clamp(0, 1) * 255).round().to(torch.uint8)"
            )
        if self._size is None:
            self._start(arr.shape[1], arr.shape[2])
        elif arr.shape[1:3] != self._size:
            raise MediaError(
                f"{self.path}: frame size changed from {self._size} to {arr.shape[1:3]}; all frames of a "
                "video must have the same size"
            )
        h, w = self._size  # type: ignore[misc]
        ph, pw = h + (h % 2), w + (w % 2)
        for img in arr:
            if (ph, pw) != (h, w):
                img = np.pad(img, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            vf = vf.reformat(format="yuv420p", dst_colorspace="itu601")
            vf.pts = self._frames
            vf.time_base = Fraction(1, self.fps)
            self._mux(self._vstream.encode(vf))
            self._frames += 1
        self._write_audio_until(math.ceil(self._frames * self.sample_rate / self.fps))

    def close(self) -> None:
        """Flush encoders, finish the file and move it to its final name."""
        if self._closed:
            return
        try:
            if self._frames == 0:
                raise MediaError(f"{self.path}: no frames were written; nothing to save")
            self._mux(self._vstream.encode(None))
            if self._astream is not None and self._audio is not None:
                self._write_audio_until(len(self._audio))
                self._mux(self._astream.encode(None))
            self._container.close()
            self._closed = True
            os.replace(self.tmp_path, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Discard the output: close the container and delete the temporary file."""
        self._closed = True
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - best effort, the file is deleted anyway
            pass
        try:
            self.tmp_path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    # -- internals ---------------------------------------------------------------------------

    def _start(self, h: int, w: int) -> None:
        if h < 2 or w < 2:
            raise MediaError(f"{self.path}: frames of {w}x{h} are too small to encode; use at least 2x2")
        self._size = (h, w)
        s = self._vstream
        s.width, s.height = w + (w % 2), h + (h % 2)
        s.pix_fmt = "yuv420p"
        # Tag BT.601 limited range (AVCOL_SPC_SMPTE170M = 6), the matrix write() converts with, so
        # players do not guess BT.709 for HD sizes and shift the colours.
        s.codec_context.colorspace = 6
        s.codec_context.color_range = ColorRange.MPEG
        s.codec_context.time_base = Fraction(1, self.fps)
        # x264's mb-tree made the bitstream depend on heap contents (same frames, different bytes
        # from run to run); without it the output is byte-identical for identical input
        s.options = {"crf": str(self._crf), "preset": self._preset, "x264-params": "mbtree=0"}
        if self._threads:
            s.options["threads"] = str(self._threads)

    def _write_audio_until(self, stop: int) -> None:
        if self._astream is None or self._audio is None:
            return
        stop = min(stop, len(self._audio))
        if stop <= self._audio_pos:
            return
        chunk = self._audio[self._audio_pos : stop]  # (n, channels)
        af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk.T), format="fltp", layout=self._layout)
        af.sample_rate = self.sample_rate
        af.pts = self._audio_pos  # in samples: sample 0 is at t = 0
        af.time_base = Fraction(1, self.sample_rate)
        self._audio_pos = stop
        self._mux(self._astream.encode(af))

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self._container.mux(packets)
        except av.error.FFmpegError as e:
            raise MediaError(f"{self.path}: writing failed ({e}); check free disk space") from None
