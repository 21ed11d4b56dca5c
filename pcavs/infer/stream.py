"""Live talking face: push audio (and head pose) as it arrives, pull frames with presentation timestamps.

::

    stream = TalkingFaceStream.open(pipe, identity="me.jpg")          # pose: the photo's own (still)
    stream.push_audio(chunk)             # float PCM, any length; 16 kHz, or say sample_rate=48000
    for frame in stream.pull():          # every frame whose speech window is complete
        show(frame.image, at=frame.pts)  # uint8 HxWx3, shown at frame.index / fps seconds
    stream.finish(); stream.pull()       # the last frames (the audio's end is padded with silence)

Frames equal :meth:`TalkingFacePipeline.render`'s for the same inputs, whatever the chunking: the mel
rows come from the same chunked front end (:func:`pcavs.infer.sources.mel_rows`), which reads exactly
the samples a row needs, and frames from the same step (:meth:`TalkingFacePipeline.faces`, noise seeded
per frame index). One thing a stream cannot know is the whole clip's RMS, which the official front end
normalises; ``gain=None`` uses a running RMS (exponential, ``gain_window_s``), a number fixes the gain
(``rms_gain(wave)`` reproduces offline generation exactly).

Algorithmic latency: frame ``i`` (shown at ``i / fps``) is driven by mel rows ``4(i-2) .. 4(i-2)+19``;
the last of them reads samples up to ``640 i + 1919``, so the frame can only be made once 120 ms of audio
after its display time have arrived (:func:`pcavs.infer.sources.lookahead_samples`: 1920 samples at
25 fps, 2160 with ``align_audio``). End-to-end latency is that, plus the chunk the sample arrived in,
plus queueing and the model's time; :class:`LiveStats` measures it per frame (audio sample at the
frame's time pushed -> frame pulled).

Pacing: with :class:`Pacing` set, a frame that can no longer be out within ``max_delay`` of its audio
arriving is not generated; its slot gets the previous picture again (``held``). Every slot still gets a
frame at its own time ``index / fps``, so picture and sound never drift apart, only the picture
stutters. The newest ready frame is always generated, so a slow model catches up instead of falling
behind.

Memory is bounded for any duration: the stream keeps the samples and mel rows the next windows need,
the last pose codes pushed, and a window of latency figures.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

import av
import numpy as np
import torch
from PIL import Image

from pcavs.audio import DEFAULT_AUDIO, AudioConfig, num_stft_frames, num_video_frames
from pcavs.face.align import TEMPLATE_224, similarity_lstsq, three_points, transform_points, warp_to_input
from pcavs.media import images_to_tensor, tensor_to_images

from .posesource import ConstantPose, PoseCodes
from .sources import (
    InputError,
    feature_shift,
    lookahead_samples,
    mel_rows,
    speech_windows,
    window_last_row,
    window_start_rows,
)

__all__ = ["CameraPose", "FrameRenderer", "LiveCrop", "LiveFeatures", "LiveFrame", "LivePose", "LiveStats", "Pacing",
           "TalkingFaceStream"]

SR = DEFAULT_AUDIO.sample_rate
CAMERA_MAX_SIDE = 320  # camera frames are tracked at this size (pose only needs the face's geometry)


# ------------------------------------------------------------------------------------------ audio
class _Resampler:
    """Any rate -> 16 kHz mono float32, statefully (libswresample through PyAV), chunk by chunk."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._rs = av.AudioResampler(format="flt", layout="mono", rate=SR)
        self._pts = 0

    def __call__(self, x: np.ndarray | None) -> np.ndarray:
        if x is None:
            frames = self._rs.resample(None)
        else:
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None], dtype=np.float32), format="flt",
                                            layout="mono")
            af.sample_rate = self.rate
            af.pts = self._pts
            af.time_base = Fraction(1, self.rate)
            self._pts += x.size
            frames = self._rs.resample(af)
        parts = [f.to_ndarray().reshape(-1) for f in frames]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


class LiveFeatures:
    """The speech windows of a growing 16 kHz waveform, computed as soon as they are complete.

    Feature row ``k`` (as :func:`pcavs.infer.sources.speech_features` numbers them) needs samples up to
    ``hop * (k + drop + 1) - lead``; a frame is ready once its window's last row is. ``gain`` fixes the
    RMS gain; ``None`` tracks the RMS over about the last ``gain_window_s`` seconds.
    """

    def __init__(self, fps: int = 25, align_audio: bool = False, gain: float | None = None,
                 gain_window_s: float = 10.0, cfg: AudioConfig = DEFAULT_AUDIO) -> None:
        if gain is not None and not (math.isfinite(gain) and gain >= 0):
            raise InputError(f"gain must be a finite number >= 0 or None (running RMS), got {gain!r}")
        self.fps, self.align_audio, self.cfg = fps, align_audio, cfg
        self.lead, self.drop = feature_shift(align_audio, cfg)
        self.gain = gain
        self._decay = 0.5 ** (1.0 / max(gain_window_s * cfg.sample_rate, 1.0))  # per sample
        self._sumsq = 0.0
        self._weight = 0.0
        self.samples = 0  # pushed so far
        self.finished = False
        self._x = np.zeros(0, np.float32)
        self._x0 = 0  # sample index of self._x[0]
        self._mel = torch.zeros((0, cfg.n_mels))
        self._row0 = 0  # feature row of self._mel[0]
        self._ready = 0  # frames known to be ready

    @property
    def current_gain(self) -> float:
        """The gain the next mel rows are computed with."""
        if self.gain is not None:
            return self.gain
        if self._weight <= 0:
            return 0.0
        rms = math.sqrt(self._sumsq / self._weight)
        return self.cfg.rms / rms if rms >= 1e-12 else 0.0

    def push(self, x: np.ndarray) -> None:
        if self.finished:
            raise RuntimeError("audio pushed after finish()")
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if x.size == 0:
            return
        if not np.all(np.isfinite(x)):
            raise InputError("audio chunk contains NaN or infinite samples")
        if self.gain is None:  # exponentially weighted mean square; each chunk decays the past
            d = self._decay ** x.size
            xd = x.astype(np.float64)
            self._sumsq = self._sumsq * d + float(np.dot(xd, xd))
            self._weight = self._weight * d + x.size
        self._x = np.concatenate([self._x, x])
        self.samples += x.size

    def finish(self) -> None:
        self.finished = True

    @property
    def total_frames(self) -> int | None:
        """Frames of the whole stream, once it is finished."""
        return num_video_frames(self.samples, self.fps, self.cfg.sample_rate) if self.finished else None

    def _rows_available(self) -> int:
        """Feature rows that can be computed now (all of them once finished)."""
        if self.finished:
            return max(num_stft_frames(self.lead + self.samples, self.cfg) - self.drop, 0)
        return max((self.lead + self.samples) // self.cfg.hop - self.drop, 0)

    def ready_frames(self) -> int:
        """Frames ``0 .. n-1`` whose windows are complete."""
        if self.finished:
            self._ready = self.total_frames or 0
            return self._ready
        rows = self._rows_available()
        while window_last_row(self._ready, self.fps, self.cfg) < rows:
            self._ready += 1
        return self._ready

    def windows(self, start: int, stop: int) -> torch.Tensor:
        """Model inputs (n, 1, n_mels, window_rows) of frames ``start .. stop-1`` (all ready)."""
        if stop > self.ready_frames():
            raise ValueError(f"frames up to {stop} asked for, only {self._ready} are ready")
        need = min(window_last_row(stop - 1, self.fps, self.cfg) + 1, self._rows_available())
        have = self._row0 + self._mel.shape[0]
        if need > have:
            rows = mel_rows(self._x, self._x0 + self.lead, have + self.drop, need + self.drop, self.current_gain,
                            self.cfg)
            self._mel = torch.cat([self._mel, rows])
        out = speech_windows(self._mel, range(start, stop), self.fps, self.cfg, first_row=self._row0)
        self._discard_before(stop)
        return out

    def _discard_before(self, frame: int) -> None:
        # rows before the next frame's window, and samples before the next row's STFT frame, are done
        first = max(window_start_rows([frame], self.fps, self.cfg)[0], 0)
        if first > self._row0:
            cut = min(first - self._row0, self._mel.shape[0])
            self._mel, self._row0 = self._mel[cut:].clone(), self._row0 + cut
        next_row = self._row0 + self._mel.shape[0]
        keep = self.cfg.hop * (next_row + self.drop) - (self.cfg.n_fft - self.cfg.hop) - self.lead
        if keep > self._x0:
            cut = min(keep - self._x0, self._x.size)
            self._x, self._x0 = self._x[cut:].copy(), self._x0 + cut

    @property
    def buffered(self) -> tuple[int, int]:
        """(samples, mel rows) held: bounded whatever the duration."""
        return self._x.size, self._mel.shape[0]


# ------------------------------------------------------------------------------------------- pose
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


# ----------------------------------------------------------------------------------------- frames
@dataclass
class LiveFrame:
    """One output frame: shown at ``pts`` = ``index / fps`` seconds of the audio's timeline."""

    index: int
    pts: float
    image: np.ndarray  # (H, W, 3) uint8
    source_index: int  # the frame whose picture this is (< index when held)
    held: bool = False  # the previous picture repeated: this frame was dropped to keep pace
    latency: float | None = None  # seconds from the audio at ``pts`` being pushed to this frame's pull
    face: torch.Tensor | None = None  # (3, H, W) float in [-1, 1], when the stream keeps them


@dataclass(frozen=True)
class Pacing:
    """Drop (hold) frames that would come out more than ``max_delay`` s after they became computable."""

    max_delay: float = 0.08

    def __post_init__(self) -> None:
        if not self.max_delay >= 0:
            raise InputError(f"max_delay must be >= 0 seconds, got {self.max_delay!r}")


@dataclass
class LiveStats:
    """What the stream achieved: frames generated and held, frame rate and latency."""

    frames: int = 0
    generated: int = 0
    held: int = 0
    first_push: float | None = None
    last_pull: float | None = None
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=10000))
    lookahead_ms: float = 0.0

    @property
    def fps(self) -> float:
        """Generated frames per wall second (first audio push to the last frame out)."""
        if self.first_push is None or self.last_pull is None or self.last_pull <= self.first_push:
            return 0.0
        return self.generated / (self.last_pull - self.first_push)

    def latency_ms(self, q: float = 50) -> float:
        """Percentile ``q`` of the end-to-end latency of generated frames, in ms."""
        return float(np.percentile(np.asarray(self.latencies), q) * 1000) if self.latencies else float("nan")

    def summary(self) -> str:
        return (f"{self.frames} frames ({self.generated} generated, {self.held} held), {self.fps:.1f} frames/s, "
                f"latency median {self.latency_ms(50):.0f} ms, p95 {self.latency_ms(95):.0f} ms, "
                f"max {self.latency_ms(100):.0f} ms (algorithmic {self.lookahead_ms:.0f} ms)")


class FrameRenderer(Protocol):
    """Frames (B, 3, S, S) in [-1, 1] from speech windows (B, 1, n_mels, 20) and pose codes (B, pose_dim)
    of consecutive frames ``start ..``; :meth:`TalkingFacePipeline.faces` with an identity bound."""

    def __call__(self, windows: torch.Tensor, pose: torch.Tensor, start: int) -> torch.Tensor: ...


class TalkingFaceStream:
    """The live engine; see the module docstring. Make one with :meth:`open` (a loaded pipeline)."""

    def __init__(self, renderer: FrameRenderer, pose: PoseCodes, *, fps: int = 25, gain: float | None = None,
                 gain_window_s: float = 10.0, align_audio: bool = False, batch_size: int = 8,
                 pacing: Pacing | None = None, clock: Callable[[], float] = time.monotonic,
                 keep_faces: bool = False, pose_encoder: Callable[[np.ndarray], torch.Tensor] | None = None,
                 ) -> None:
        if batch_size < 1:
            raise InputError(f"batch size must be 1 or more, got {batch_size}")
        self.renderer, self.fps, self.batch_size = renderer, fps, batch_size
        self.features = LiveFeatures(fps, align_audio, gain, gain_window_s)
        self.pose = LivePose(pose, fps)
        self.pacing, self.clock, self.keep_faces = pacing, clock, keep_faces
        self._pose_encoder = pose_encoder
        self.lookahead = lookahead_samples(fps, align_audio)
        self.stats = LiveStats(lookahead_ms=self.latency * 1000)
        self._resampler: _Resampler | None = None
        self._arrivals: deque[tuple[int, float]] = deque()  # (samples pushed so far, wall time)
        self._next = 0  # next frame to output
        self._last: LiveFrame | None = None
        self._frame_cost: float | None = None  # seconds per generated frame (running mean)

    @property
    def latency(self) -> float:
        """Algorithmic latency in seconds: audio needed past a frame's time before it can be made."""
        return self.lookahead / SR

    # ------------------------------------------------------------------------------- inputs
    def push_audio(self, samples: np.ndarray | Sequence[float], sample_rate: int = SR, at: float | None = None) -> None:
        """Append audio: float PCM in [-1, 1], mono (N,) or (N, C) (downmixed), any length and rate.

        ``at`` is the wall time the chunk arrived (default: now), for the latency figures.
        """
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim == 2:
            x = x.mean(axis=1)
        if x.ndim != 1:
            raise InputError(f"audio chunk must be (N,) or (N, channels), got shape {x.shape}")
        if sample_rate != SR:
            if self._resampler is None:
                self._resampler = _Resampler(int(sample_rate))
            elif self._resampler.rate != sample_rate:
                raise InputError(f"sample rate changed from {self._resampler.rate} to {sample_rate} mid-stream")
            x = self._resampler(x)
        now = self.clock() if at is None else at
        if self.stats.first_push is None:
            self.stats.first_push = now
        self.features.push(x)
        self._arrivals.append((self.features.samples, now))

    def push_pose_code(self, code: torch.Tensor | np.ndarray, t: float) -> None:
        """The head pose from time ``t`` (seconds on the audio's timeline) on, as a pose code."""
        self.pose.push(code, t)

    def push_pose_frame(self, image: np.ndarray, t: float) -> bool:
        """A camera frame at time ``t``: its face's pose drives frames from ``t`` on. False when no face
        was found (the previous pose is kept)."""
        if self._pose_encoder is None:
            raise RuntimeError("this stream has no pose encoder; open it with TalkingFaceStream.open")
        try:
            code = self._pose_encoder(image)
        except LookupError:
            return False
        self.pose.push(code, t)
        return True

    def warm_pose_encoder(self) -> None:
        """Load what :meth:`push_pose_frame` needs now, before the stream is live (see :meth:`CameraPose.warm`)."""
        warm = getattr(self._pose_encoder, "warm", None)
        if warm is not None:
            warm()

    def finish(self) -> None:
        """End of audio: the remaining frames become ready (the audio's end is padded with silence)."""
        if self._resampler is not None:
            self.features.push(self._resampler(None))
        now = self.clock()
        self.features.finish()
        self._arrivals.append((self.features.samples, now))

    # ------------------------------------------------------------------------------ outputs
    def _arrival(self, sample: int) -> float:
        """Wall time the chunk holding ``sample`` arrived (the finish time past the audio's end)."""
        for end, t in self._arrivals:
            if sample < end:
                return t
        return self._arrivals[-1][1]

    def _trim_arrivals(self) -> None:
        s = self._next * SR // self.fps
        while len(self._arrivals) > 1 and self._arrivals[0][0] <= s:
            self._arrivals.popleft()

    def pull(self) -> list[LiveFrame]:
        """Every frame that can be made now, in order (held ones included when pacing drops)."""
        ready = self.features.ready_frames()
        out: list[LiveFrame] = []
        while self._next < ready:
            start = self._next
            if self.pacing is not None and self._last is not None:
                # slots whose frame would be late are held, except the newest (so the stream catches up)
                now, cost = self.clock(), self._frame_cost or 0.0
                while start < ready - 1 and now + cost > self._ready_time(start) + self.pacing.max_delay:
                    out.append(self._hold(start))
                    start += 1
            stop = min(start + self.batch_size, ready)
            codes = self.pose.codes(start, stop)  # increasing ranges, with gaps where frames were held
            windows = self.features.windows(start, stop)
            t0 = self.clock()
            faces = self.renderer(windows, codes, start)
            t1 = self.clock()
            per = (t1 - t0) / (stop - start)
            self._frame_cost = per if self._frame_cost is None else 0.7 * self._frame_cost + 0.3 * per
            images = tensor_to_images(faces)
            for j, i in enumerate(range(start, stop)):
                latency = t1 - self._arrival(i * SR // self.fps)
                frame = LiveFrame(i, i / self.fps, images[j], i, latency=latency,
                                  face=faces[j].clone() if self.keep_faces else None)
                self.stats.latencies.append(latency)
                self.stats.generated += 1
                out.append(frame)
                self._last = frame
            self._next = stop
            self.stats.last_pull = t1
        self.stats.frames += len(out)
        self._trim_arrivals()
        return out

    def _ready_time(self, frame: int) -> float:
        return self._arrival(frame * SR // self.fps + self.lookahead - 1)

    def _hold(self, index: int) -> LiveFrame:
        last = self._last
        assert last is not None
        self.stats.held += 1
        self._next = index + 1
        return LiveFrame(index, index / self.fps, last.image, last.source_index, held=True)

    def close(self) -> None:
        self.pose.close()

    # ---------------------------------------------------------------------------- factory
    @classmethod
    def open(cls, pipe: Any, identity: Any, pose: Any = None, pose_mode: str | None = None, *,
             options: Any = None, fps: int = 25, face_index: int = 0,
             identity_landmarks: np.ndarray | None = None, **kwargs: Any) -> TalkingFaceStream:
        """A stream on a loaded :class:`TalkingFacePipeline`: ``identity`` a photo path or array; ``pose``
        None (the photo's pose; push camera frames or codes to move the head), a pose video or a track
        (.npz path or :class:`PoseTrack`); ``pose_mode='frontal'`` a zero code. ``options``:
        :class:`GenerationOptions` (seed, noise, precision, mouth weight, align_audio, batch size);
        ``kwargs``: the stream's (gain, pacing, clock, keep_faces, ...)."""
        from .pipeline import GenerationInputs, GenerationOptions, identity_face, resolve_pose_mode
        from .sources import load_image

        opts = options or GenerationOptions()
        image, name = load_image(identity, "identity photo")
        if identity_landmarks is None:
            landmarks = identity_face(image, f"identity photo {name}" if not name.startswith("the ") else name,
                                      pipe.analyzer, face_index)
        else:
            landmarks = np.asarray(identity_landmarks, np.float64)
        mode = resolve_pose_mode(pose, pose_mode)
        pose_src, pose_name = pose, None
        if mode == "video":
            from pathlib import Path

            from pcavs.posetrack import extract_track, load_track

            if isinstance(pose, str | Path) and Path(pose).suffix.lower() == ".npz":
                pose_src, pose_name = load_track(pose), f"pose track {pose}"
            elif isinstance(pose, str | Path):
                # tracked whole before the first sample: done lazily (as generate does), the first pull
                # would wait for the tracker (~20 s for the demo's 3.5 s video on a loaded CPU)
                pose_name = f"pose video {pose}"
                analyzer = pipe.analyzer.with_options(use_cnn=opts.detector == "hog+cnn")
                pose_src = extract_track(pose, size=pipe.image_size, fps=fps, analyzer=analyzer,
                                         max_gap=opts.max_gap, face_index=opts.pose_face_index)
            else:
                pose_name = "the pose frames"
        inputs = GenerationInputs(identity=image, identity_name=name, landmarks=landmarks,
                                  audio=np.zeros(0, np.float32), audio_name="live audio", pose_mode=mode,
                                  pose=pose_src, pose_name=pose_name, pose_info=None, pose_landmarks=None,
                                  fps=fps, num_frames=2**40)
        crop, _ = pipe.align_identity(inputs)
        with torch.inference_mode():
            identity_code = pipe.model.encode_identity(images_to_tensor(crop[None], pipe.device))
            base = pipe._pose_codes(inputs, crop, opts)
        if isinstance(base, ConstantPose):
            base.code = base.code.cpu()

        def render(windows: torch.Tensor, codes: torch.Tensor, start: int) -> torch.Tensor:
            return pipe.faces(identity_code, windows, codes, start, opts).cpu()

        encode = CameraPose(pipe.analyzer, lambda crop: pipe.model.encode_pose(
            images_to_tensor(crop[None], pipe.device))[0].cpu(), pipe.image_size)
        kwargs.setdefault("batch_size", opts.batch_size)
        return cls(render, base, fps=fps, align_audio=opts.align_audio, pose_encoder=encode, **kwargs)

