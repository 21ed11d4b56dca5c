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

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch

from pcavs.media import images_to_tensor, tensor_to_images

from .posesource import ConstantPose, PoseCodes
from .sources import InputError, lookahead_samples
from .stream_features import SR, LiveFeatures, Resampler
from .stream_pacing import LiveFrame, LiveStats, Pacing
from .stream_pose import CameraPose, LiveCrop, LivePose

# the engine's own names, and the parts it is built from (stream_features, stream_pose, stream_pacing)
__all__ = ["CameraPose", "FrameRenderer", "LiveCrop", "LiveFeatures", "LiveFrame", "LivePose", "LiveStats", "Pacing",
           "TalkingFaceStream"]


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
        self._resampler: Resampler | None = None
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
                self._resampler = Resampler(int(sample_rate))
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
