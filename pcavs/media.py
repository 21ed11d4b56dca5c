"""Image, audio and video I/O. Images go through Pillow, everything else through PyAV (no ffmpeg binary).

Conventions:
- images and video frames are ``uint8`` RGB arrays of shape (H, W, 3);
- audio is ``float32`` mono at 16 kHz, starting at the first decoded sample, with codec delay
  (AAC/MP3/Opus priming) and trailing encoder padding removed;
- video is resampled to a constant frame rate by sample-and-hold: output frame ``k`` is the latest
  source frame whose timestamp is ``<= k / fps`` (timestamps relative to the first frame);
- every failure is a :class:`MediaError` naming the file, the problem and what to do.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.error
import numpy as np
import torch
from av.video.reformatter import ColorRange
from PIL import Image, ImageOps, UnidentifiedImageError

from pcavs.errors import UserError

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
]

IMAGE_MAX_PIXELS = 100_000_000
_VIDEO_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


class MediaError(UserError, ValueError):
    """A media file could not be read or written; the message names the file and the fix."""


# --------------------------------------------------------------------------------------- images


def images_to_tensor(images: np.ndarray, device: str | torch.device | None = None) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1]: the official ToTensor + Normalize(0.5, 0.5)."""
    arr = np.ascontiguousarray(images)
    if not arr.flags.writeable:  # PIL-backed crops are read-only; torch.from_numpy warns on those
        arr = arr.copy()
    return torch.from_numpy(arr).to(device).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def tensor_to_images(frames: torch.Tensor) -> np.ndarray:
    """Network output (B, 3, H, W) in [-1, 1] -> uint8 (B, H, W, 3), rounded."""
    x = frames.detach().clamp(-1.0, 1.0).add(1.0).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def require_file(path: str | os.PathLike[str], role: str = "", error: type[Exception] = MediaError) -> Path:
    """The path of an input that exists and is a file; ``role`` ("audio", ...) names it in the message."""
    p = Path(path)
    label = f"{role} {p}" if role else str(p)
    if not p.exists():
        raise error(f"{label}: file not found; check the path")
    if p.is_dir():
        raise error(f"{label}: is a folder, not a file; pass the file inside it")
    return p


def _scale16(arr: np.ndarray) -> np.ndarray:
    # 0..65535 -> 0..255 with rounding (65535 maps to 255, 32896 to 128).
    a = np.clip(arr.astype(np.int64), 0, 65535)
    return ((a * 255 + 32767) // 65535).astype(np.uint8)


def _pil_to_rgb8(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(im)
        # 'I' holds 32-bit ints; Pillow uses it for 16-bit PNG/TIFF data, so treat it as 16-bit
        # unless every value already fits 8 bits.
        if mode == "I" and arr.max(initial=0) <= 255:
            gray = np.clip(arr, 0, 255).astype(np.uint8)
        else:
            gray = _scale16(arr)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        scale = 255.0 if finite.size and finite.max() <= 1.0 else 1.0  # [0,1] floats vs 0..255 floats
        gray = np.clip(np.nan_to_num(arr) * scale + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info)
    if has_alpha:
        # Composite on white: transparent cut-out portraits are meant to be seen on a light page,
        # and the RGB stored under alpha=0 is arbitrary (often black), so dropping alpha is worse.
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint16)
        a = rgba[:, :, 3:4]
        rgb = (rgba[:, :, :3] * a + 255 * (255 - a) + 127) // 255
        return rgb.astype(np.uint8)
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def read_image(path: str | os.PathLike[str], max_pixels: int = IMAGE_MAX_PIXELS) -> np.ndarray:
    """Read an image file as RGB ``uint8`` (H, W, 3), upright per EXIF, alpha composited on white.

    The size is checked from the header before any pixel is decoded; images above
    ``max_pixels`` are refused (Pillow itself refuses anything above ~179 MP).
    """
    p = require_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we apply our own limit
        try:
            im = Image.open(p)  # lazy: parses the header only
        except Image.DecompressionBombError as e:
            m = re.search(r"\((\d+) pixels\)", str(e))
            size = f"{int(m.group(1)) / 1e6:.0f} MP" if m else "too large"
            raise MediaError(
                f"{p}: image is {size}, larger than the {max_pixels / 1e6:.0f} MP limit; downscale it "
                "(e.g. to at most 4096 px on the long side)"
            ) from None
        except UnidentifiedImageError:
            raise MediaError(f"{p}: not an image Pillow can read; use a PNG, JPEG, WebP, BMP or TIFF file") from None
        except OSError as e:
            raise MediaError(f"{p}: cannot open image ({e}); check the file and its permissions") from None
    with im:
        w, h = im.size
        if w * h > max_pixels:
            raise MediaError(
                f"{p}: image is {w}x{h} ({w * h / 1e6:.0f} MP), larger than the {max_pixels / 1e6:.0f} MP "
                "limit; downscale it (e.g. to at most 4096 px on the long side)"
            )
        if w == 0 or h == 0:
            raise MediaError(f"{p}: image has zero size ({w}x{h}); use a real image")
        try:
            im.load()
            try:
                upright = ImageOps.exif_transpose(im)
            except (SyntaxError, ValueError, TypeError, KeyError, OSError):
                upright = im  # unreadable EXIF: keep the stored orientation rather than fail
            if upright is None:
                upright = im
            return _pil_to_rgb8(upright)
        except (OSError, SyntaxError, ValueError) as e:
            raise MediaError(f"{p}: image data is truncated or corrupt ({e}); re-export or re-download it") from None


# ---------------------------------------------------------------------------------------- input


def _open_input(path: str | os.PathLike[str]) -> tuple[Path, av.container.InputContainer]:
    p = require_file(path)
    try:
        container = av.open(str(p), mode="r")
    except av.error.FFmpegError as e:
        raise MediaError(
            f"{p}: not a readable media file ({e.strerror or e}); it may be truncated, still being "
            "written, or not audio/video at all; re-export it as .wav/.mp3/.mp4"
        ) from None
    try:
        if not container.streams.video and not container.streams.audio:
            raise MediaError(
                f"{p}: contains no audio or video stream; it is truncated or not a media file; "
                "re-export it as .wav/.mp3/.mp4"
            )
        _check_not_truncated(p, container)
    except BaseException:
        container.close()
        raise
    return p, container


def _check_not_truncated(p: Path, container: av.container.InputContainer) -> None:
    # MP4/MOV keep a sample index in the header; FFmpeg silently stops at EOF when the data it
    # points to is missing (a cut-short download), so compare the index with the file size.
    if "mp4" not in container.format.name and "mov" not in container.format.name:
        return
    size = p.stat().st_size
    needed = 0
    for stream in container.streams:
        try:
            entries = stream.index_entries
        except AttributeError:  # older PyAV: no index access, skip the check
            return
        # A cut-short file loses its tail, so the last entries of each stream suffice (and keep
        # this O(1) for hour-long videos).
        n = len(entries)
        for i in range(max(0, n - 16), n):
            e = entries[i]
            needed = max(needed, e.pos + e.size)
    if needed > size:
        raise MediaError(
            f"{p}: file is truncated: it is {size} bytes but its index refers to data up to byte "
            f"{needed}; the copy or download was cut short; get the complete file"
        )


def read_audio(path: str | os.PathLike[str], sr: int = 16000) -> np.ndarray:
    """Decode the first audio stream of any PyAV-readable file to float32 mono at ``sr`` Hz.

    Encoder priming is removed: FFmpeg applies the container's skip information (MP4 edit list,
    MP3 LAME header, Opus pre-skip); samples that still carry negative timestamps are dropped and
    the last frame is cut to its packet duration (AAC end padding), so a sound at time t in the
    source is at sample ``t * sr`` in the result.
    """
    return _decode_audio(path, sr, "mono")[0].reshape(-1)


def read_audio_native(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """``(samples (N, C) float32, rate)``: the first audio stream at its own rate, mono or stereo (more
    channels are downmixed to stereo), priming removed as in :func:`read_audio`. For the output's
    soundtrack: the model reads :func:`read_audio`'s 16 kHz mono, the viewer hears the original."""
    p, container = _open_input(path)
    with container:
        if not container.streams.audio:
            raise MediaError(f"{p}: has no audio stream; pass an audio file or a video with sound")
        stream = container.streams.audio[0]
        rate, channels = int(stream.rate or 16000), int(stream.channels or 1)
    layout = "mono" if channels == 1 else "stereo"
    return _decode_audio(path, rate, layout)[0], rate


def _decode_audio(path: str | os.PathLike[str], sr: int, layout: str) -> tuple[np.ndarray, int]:
    """(samples (N, C), rate) of the first audio stream resampled to ``sr`` Hz and ``layout``."""
    nch = 1 if layout == "mono" else 2
    p, container = _open_input(path)
    with container:
        if not container.streams.audio:
            raise MediaError(f"{p}: has no audio stream; pass an audio file or a video with sound")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout=layout, rate=sr)
        chunks: list[np.ndarray] = []
        drop_s = Fraction(0)  # leading seconds with negative timestamps (priming not removed)
        tail_excess_s = Fraction(0)  # decoded-but-padding seconds in the last frame
        decoded_s = Fraction(0)
        try:
            for frame in container.decode(stream):
                if frame.samples == 0:
                    continue
                rate = frame.sample_rate
                tb = frame.time_base
                if frame.pts is not None and tb is not None and frame.pts < 0:
                    drop_s += min(Fraction(frame.samples, rate), -frame.pts * tb)
                tail_excess_s = Fraction(0)
                if frame.duration and tb is not None:
                    dur = frame.duration * tb
                    # Only trust a shorter duration when it is beyond timestamp rounding (MKV: 1 ms).
                    if 0 < dur and dur + tb < Fraction(frame.samples, rate):
                        tail_excess_s = Fraction(frame.samples, rate) - dur
                decoded_s += Fraction(frame.samples, rate)
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1, nch))  # packed: interleaved channels
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1, nch))
        except av.error.FFmpegError as e:
            raise MediaError(
                f"{p}: audio decoding failed after {float(decoded_s):.2f} s ({e.strerror or e}); the "
                "file is truncated or corrupt; re-export it"
            ) from None
    wave = np.concatenate(chunks) if chunks else np.zeros((0, nch), np.float32)
    start = round(drop_s * sr)
    stop = round((decoded_s - tail_excess_s) * sr)
    wave = wave[start : max(start, min(stop, len(wave)))]
    if wave.size == 0:
        raise MediaError(f"{p}: the audio stream contains no samples; use a file with actual sound")
    return np.ascontiguousarray(wave, dtype=np.float32), sr


# ---------------------------------------------------------------------------------------- video


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`read_video_frames` will produce for a file (sizes are after rotation)."""

    path: str
    width: int
    height: int
    rotation: int  # degrees counter-clockwise applied to the stored picture for display
    duration: float  # seconds from the first frame to the end of the last one
    fps: float  # output frame rate
    num_frames: int  # frames read_video_frames yields at ``fps``
    source_frames: int
    source_fps: float | None  # average, None if unknown
    codec: str
    has_audio: bool
    audio_sample_rate: int | None
    timing_note: str | None = None  # set when the timestamps were unusable and the frames read in order


class MediaWarning(UserWarning):
    """A readable file read in a way the user should know about (e.g. broken timestamps)."""


# Above this average rate the timestamps cannot be a recording's (high-speed phone video is 240-960 fps):
# such a file (e.g. 90 frames stamped within 0.03 s) would otherwise collapse into one or two output
# frames, an almost still video, without a word.
MAX_PLAUSIBLE_FPS = 1000


def _timing_problem(p: Path, pts: list[int], tb: Fraction, fps: Fraction) -> str | None:
    """A sentence on why ``pts`` (sorted) cannot be the frames' times, or None when they are plausible."""
    if len(pts) < 2:
        return None
    span = (pts[-1] - pts[0]) * tb
    rate = (len(pts) - 1) / span if span > 0 else math.inf
    if rate <= MAX_PLAUSIBLE_FPS:
        return None
    rate_text = "all the same" if span == 0 else f"{float(rate):.0f} fps"
    return (f"{p}: broken timestamps: they span {float(span):.3f} s for {len(pts)} frames ({rate_text}); read "
            f"as {float(fps):g} fps by frame order ({len(pts) / float(fps):.2f} s). If that is not its real speed, "
            "re-export the video with correct timestamps")


def _scan_pts(p: Path) -> tuple[list[int], Fraction]:
    """Sorted presentation timestamps of the video packets (demuxed only, nothing decoded)."""
    _, container = _open_input(p)
    with container:
        stream = _video_stream(p, container)
        tb = stream.time_base or Fraction(1, 90000)
        try:
            pts = sorted(pk.pts for pk in container.demux(stream) if pk.size and pk.pts is not None)
        except av.error.FFmpegError:
            pts = []  # the decoding pass names the damage
    return pts, tb


def _rotation_k(rotation: float | int | None) -> int:
    # Display matrix rotation is counter-clockwise, as is np.rot90 with positive k.
    if not rotation:
        return 0
    return int(round(float(rotation) / 90.0)) % 4


class _Timeline:
    """Presentation timestamps seen so far; estimates where the last frame ends."""

    def __init__(self) -> None:
        self.gaps: Counter[Fraction] = Counter()  # CFR video has 1-3 distinct gaps: tiny memory
        self.last: Fraction | None = None

    def add(self, t: Fraction) -> None:
        if self.last is not None and t > self.last:
            self.gaps[t - self.last] += 1
        self.last = t if self.last is None else max(self.last, t)

    def end(self, last_duration: Fraction | None, fps: Fraction) -> Fraction:
        # The last frame is shown for one typical (lower-median) frame interval. Container durations
        # are not used when there are gaps: MP4 stores them in decode order, so with B-frames the
        # value attached to the last displayed frame belongs to another frame.
        assert self.last is not None
        if self.gaps:
            total = sum(self.gaps.values())
            seen = 0
            for gap in sorted(self.gaps):
                seen += self.gaps[gap]
                if seen > (total - 1) // 2:
                    return self.last + gap
        if last_duration is not None and last_duration > 0:
            return self.last + last_duration  # single frame: trust the container
        return self.last + 1 / fps


def _frame_count(span: Fraction, fps: Fraction) -> int:
    # Output frame k exists while k / fps < span, i.e. ceil(span * fps) frames.
    return max(0, math.ceil(span * fps))


def _video_stream(p: Path, container: av.container.InputContainer) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise MediaError(f"{p}: has no video stream; pass a video file (.mp4/.mov/.mkv/.webm)")
    return container.streams.video[0]


def _fps_fraction(fps: float) -> Fraction:
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return Fraction(fps).limit_denominator(1001)


def probe_video(path: str | os.PathLike[str], fps: float = 25) -> VideoInfo:
    """Describe a video; packets are scanned for exact timestamps, only the first frame is decoded."""
    p, container = _open_input(path)
    fps_q = _fps_fraction(fps)
    with container:
        stream = _video_stream(p, container)
        tb = stream.time_base or Fraction(1, 90000)
        pts: list[int] = []  # decode order; sorted below (ints: ~30 bytes per frame)
        last_dur: Fraction | None = None
        first_frame: av.VideoFrame | None = None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if first_frame is None:  # decode just enough to learn size and display rotation
                    first_frame = next(iter(packet.decode()), None)
                if packet.pts is None:
                    continue
                pts.append(packet.pts)
                last_dur = packet.duration * tb if packet.duration else None
            if first_frame is None:  # decoder delay longer than the stream: flush it
                first_frame = next(iter(stream.codec_context.decode(None)), None)
        except av.error.FFmpegError as e:
            raise MediaError(f"{p}: video is truncated or corrupt ({e.strerror or e}); re-export it") from None
        if not pts or first_frame is None:
            raise MediaError(f"{p}: the video stream has no frames; use another file")
        pts.sort()
        timeline = _Timeline()
        for v in pts:
            timeline.add(v * tb)
        span = timeline.end(last_dur, fps_q) - pts[0] * tb
        note = _timing_problem(p, pts, tb, fps_q)
        if note is not None:  # read_video_frames yields the frames in order, one per output frame
            span = len(pts) / fps_q
        rotation = int(round(first_frame.rotation or 0))
        w, h = first_frame.width, first_frame.height
        if _rotation_k(rotation) % 2:
            w, h = h, w
        audio = container.streams.audio[0] if container.streams.audio else None
        avg = stream.average_rate
        return VideoInfo(
            path=str(p),
            width=int(w),
            height=int(h),
            rotation=rotation,
            duration=float(span),
            fps=float(fps_q),
            num_frames=len(pts) if note is not None else _frame_count(span, fps_q),
            source_frames=len(pts),
            source_fps=float(avg) if avg else None,
            codec=stream.codec_context.name,
            has_audio=audio is not None,
            audio_sample_rate=int(audio.rate) if audio is not None else None,
            timing_note=note,
        )


def read_video_frames(path: str | os.PathLike[str], fps: float = 25) -> Iterator[np.ndarray]:
    """Stream the frames of a video as RGB ``uint8`` (H, W, 3), resampled to constant ``fps``.

    Output frame ``k`` (time ``k / fps`` after the first source frame) is the latest source frame
    whose timestamp is ``<= k / fps`` (sample-and-hold, correct for variable frame rate); the last
    source frame lasts one typical frame interval. Display rotation metadata is applied. Only the
    current source frame is held in memory; repeats are yielded as copies, safe to modify in place.

    Timestamps faster than ``MAX_PLAUSIBLE_FPS`` on average are broken: the frames are then yielded in
    order, one per output frame, with a :class:`MediaWarning` saying so (as :func:`probe_video` counts).
    """
    p, container = _open_input(path)
    fps_q = _fps_fraction(fps)
    note = _timing_problem(p, *_scan_pts(p), fps_q)
    if note is not None:
        warnings.warn(note, MediaWarning, stacklevel=2)
    with container:
        stream = _video_stream(p, container)
        stream.thread_type = "AUTO"
        tb = stream.time_base or Fraction(1, 90000)
        avg = stream.average_rate
        nominal = 1 / Fraction(avg) if avg else 1 / fps_q
        k = 0
        t0: Fraction | None = None
        held: av.VideoFrame | None = None
        held_arr: np.ndarray | None = None
        held_t = Fraction(0)
        held_dur: Fraction | None = None
        timeline = _Timeline()

        def emit() -> np.ndarray:
            nonlocal held_arr
            if held_arr is not None:
                return held_arr.copy()
            assert held is not None
            arr = held.to_ndarray(format="rgb24")
            rk = _rotation_k(held.rotation)
            held_arr = np.ascontiguousarray(np.rot90(arr, rk)) if rk else arr
            return held_arr

        try:
            for frame in container.decode(stream):
                if note is not None:  # broken timestamps: by frame order
                    held, held_arr = frame, None
                    yield emit()
                    k += 1
                    continue
                if frame.pts is not None:
                    t = frame.pts * tb
                    if t0 is None:
                        t0 = t
                    t -= t0
                else:  # no timestamp: assume the nominal frame interval
                    t = held_t + nominal if held is not None else Fraction(0)
                    t0 = Fraction(0) if t0 is None else t0
                if held is not None:
                    t = max(t, held_t)  # out-of-order timestamp: the newer frame replaces the held one
                    while Fraction(k) / fps_q < t:
                        yield emit()
                        k += 1
                timeline.add(t)
                held, held_arr, held_t = frame, None, t
                held_dur = frame.duration * tb if frame.duration else None
        except av.error.FFmpegError as e:
            raise MediaError(
                f"{p}: video decoding failed at output frame {k} ({e.strerror or e}); the file is "
                "truncated or corrupt; re-export it"
            ) from None
        if held is None:
            raise MediaError(f"{p}: the video stream has no decodable frames; use another file")
        if note is not None:
            return
        end = timeline.end(held_dur, fps_q)
        while Fraction(k) / fps_q < end:
            yield emit()
            k += 1


# --------------------------------------------------------------------------------------- writer


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


# --------------------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class StreamSummary:
    index: int
    type: str
    codec: str
    duration: float | None
    frames: int | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    pix_fmt: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    start_time: float | None = None


@dataclass(frozen=True)
class MediaSummary:
    path: str
    format: str
    duration: float | None
    streams: list[StreamSummary] = field(default_factory=list)

    def stream(self, kind: str) -> StreamSummary | None:
        """First stream of ``kind`` ("video" or "audio"), or None."""
        return next((s for s in self.streams if s.type == kind), None)

    def __str__(self) -> str:
        dur = f"{self.duration:.3f} s" if self.duration is not None else "?"
        lines = [f"{self.path}: {self.format}, {dur}"]
        for s in self.streams:
            if s.type == "video":
                lines.append(
                    f"  #{s.index} video {s.codec} {s.width}x{s.height} {s.pix_fmt} "
                    f"{s.fps or 0:.3f} fps, {s.frames} frames"
                )
            elif s.type == "audio":
                lines.append(f"  #{s.index} audio {s.codec} {s.sample_rate} Hz, {s.channels} ch")
            else:
                lines.append(f"  #{s.index} {s.type} {s.codec}")
        return "\n".join(lines)


def probe_output(path: str | os.PathLike[str]) -> MediaSummary:
    """ffprobe-style summary of a media file: container, duration and each stream."""
    p, container = _open_input(path)
    with container:
        streams: list[StreamSummary] = []
        counts: dict[int, int] = {}
        need_count = [s for s in container.streams if s.type == "video" and not s.frames]
        if need_count:  # some containers do not store a frame count: count packets (no decoding)
            for packet in container.demux(*need_count):
                if packet.size:
                    counts[packet.stream.index] = counts.get(packet.stream.index, 0) + 1
        for s in container.streams:
            tb = s.time_base
            dur = float(s.duration * tb) if s.duration is not None and tb else None
            start = float(s.start_time * tb) if s.start_time is not None and tb else None
            cc = s.codec_context
            if s.type == "video":
                rate = s.average_rate or s.guessed_rate
                streams.append(
                    StreamSummary(
                        s.index,
                        "video",
                        cc.name,
                        dur,
                        frames=s.frames or counts.get(s.index, 0),
                        fps=float(rate) if rate else None,
                        width=cc.width,
                        height=cc.height,
                        pix_fmt=cc.pix_fmt,
                        start_time=start,
                    )
                )
            elif s.type == "audio":
                streams.append(
                    StreamSummary(
                        s.index,
                        "audio",
                        cc.name,
                        dur,
                        frames=s.frames or None,
                        sample_rate=cc.sample_rate,
                        channels=cc.channels,
                        start_time=start,
                    )
                )
            else:
                streams.append(StreamSummary(s.index, s.type, cc.name if cc else "?", dur, start_time=start))
        duration = container.duration / 1e6 if container.duration is not None else None
        return MediaSummary(str(p), container.format.name, duration, streams)
