"""One photo + speech audio (+ a pose video) -> a finished talking-face mp4 with the audio muxed in.

::

    pipe = TalkingFacePipeline.from_pretrained("weights/", device="auto")   # weights loaded once
    pipe.generate(identity="me.jpg", audio="speech.wav", pose="nod.mp4", output="out.mp4")
    pipe.generate(identity=photo_array, audio=wave_16k, pose_mode="frontal", output="front.mp4")

    pipe = TalkingFacePipeline("weights/")   # the folder checked now, the weights loaded by the first video
    generate_video("me.jpg", "speech.wav", "out.mp4", weights="weights/")   # one call: the same, once

:meth:`TalkingFacePipeline.generate` is the one generation path: ``pcavs generate`` (through
:func:`generate_video`), ``pcavs batch`` and the UI all call it, and ``on_stage`` reports its steps.
Work order (why): :func:`prepare_inputs` checks and decodes everything that is cheap (paths, output
folder, audio decode and length, pose video probe, face in the photo) *before* weights are loaded, so
bad input fails fast and nothing is written. Generation then streams: the identity is encoded once,
and for each batch of frames the speech windows, pose codes (from the pose video as it is decoded)
and generated frames are produced and handed straight to the atomic :class:`VideoWriter`. Memory does
not grow with the length of the video, apart from the waveform and its mel (~0.7 MB per minute).

Timing: frame ``i`` is shown at ``i / fps`` and driven by the speech window the model was trained to
pair with that frame (see :mod:`pcavs.infer.sources`). The writer puts audio sample 0 at t = 0, so
the reported A/V offset (the picture's lead over the sound) is 0 ms by default.

Random noise (``noise="random"``) for frame ``i`` comes from its own generator, seeded from
``(seed, i)`` (:func:`frame_generators`), and pose codes are encoded in fixed blocks of source frames
(:class:`StreamedPose`): the same inputs and seed give the same frames for every batch size.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from pcavs.audio import DEFAULT_AUDIO
from pcavs.checkpoint import CheckpointError, load_model
from pcavs.device import resolve_device
from pcavs.face import FaceAnalyzer, default_analyzer, paste_back
from pcavs.face.paste import fit_paste_back
from pcavs.media import VideoWriter, images_to_tensor, read_video_frames, tensor_to_images
from pcavs.model import PCAVS, IdentityCode, generator_chunk
from pcavs.posetrack import (
    DEFAULT_LOOP,
    PoseTrack,
    TrackCodes,
    apply_code_edits,
    edit_track,
    encoder_hash,
    extract_track,
    track_codes,
)

from .inputs import (
    GenerationInputs,
    align_identity,
    check_output,
    check_weights,
    identity_face,
    is_path,
    prepare_inputs,
    resolve_pose_mode,
)
from .options import (
    DETECTORS,
    MOUTH_WEIGHT_RANGE,
    NOISE_MODES,
    POSE_MODES,
    PRECISIONS,
    AudioSource,
    GenerationOptions,
    GenerationResult,
    ImageSource,
    PoseSource,
)
from .posesource import ConstantPose, FrameSource, PoseCodes, StreamedPose, tracked_crops
from .sources import InputError, InputWarning, speech_features, speech_windows, timing_error_ms

__all__ = ["POSE_MODES", "STAGES", "InputError", "InputWarning", "GenerationInputs", "GenerationOptions",
           "GenerationResult", "TalkingFacePipeline", "align_identity", "check_weights", "generate_video",
           "prepare_inputs", "resolve_device", "resolve_pose_mode", "DETECTORS", "MOUTH_WEIGHT_RANGE",
           "NOISE_MODES", "PRECISIONS", "identity_face", "check_output"]


# --------------------------------------------------------------------------------------- pipeline
#: The steps of :meth:`TalkingFacePipeline.generate`, in order, as passed to its ``on_stage`` hook;
#: "loading the model" only when that call loads the weights (the pipeline's first video).
STAGES: tuple[str, ...] = ("checking the inputs", "loading the model", "generating frames")
StageHook = Callable[[str], None]


def _no_stage(name: str) -> None:
    pass


def batch_bounds(num_frames: int, batch_size: int) -> list[tuple[int, int]]:
    """Frame ranges per model call: a single frame first, so the first frame is out quickly, then
    full batches."""
    bounds = [(0, min(1, num_frames))] if num_frames else []
    bounds += [(a, min(a + batch_size, num_frames)) for a in range(1, num_frames, batch_size)]
    return bounds


def frame_generators(seed: int, start: int, stop: int, device: torch.device) -> list[torch.Generator]:
    """One noise generator per output frame ``start .. stop-1``, seeded from ``(seed, frame index)``.

    A frame's noise then depends on the seed and its index only, never on the batch it is drawn in.
    """
    gens = []
    for i in range(start, stop):
        state = np.random.SeedSequence([seed % 2**64, i]).generate_state(1, dtype=np.uint64)[0]
        gens.append(torch.Generator(device=device).manual_seed(int(state) % 2**63))
    return gens


class TalkingFacePipeline:
    """A model serving many :meth:`generate` calls (weights are loaded once).

    ``model`` is a loaded :class:`PCAVS`, or a weights folder (pcavs or official): the folder is checked
    at once (files and config only) and its weights are loaded on first use of :attr:`model`, which
    :meth:`generate` does after the first video's inputs are checked: bad input never waits for a load.
    """

    def __init__(
        self,
        model: PCAVS | str | os.PathLike[str],
        device: str | torch.device | None = None,
        analyzer: FaceAnalyzer | None = None,
    ) -> None:
        self.weights: Path | None = None  # the folder a lazy pipeline loads
        self._model: PCAVS | None = None
        if isinstance(model, PCAVS):
            self.device = resolve_device(device) if device is not None else next(model.parameters()).device
            self._model = model.to(self.device).eval()
        else:
            self.device = resolve_device("auto" if device is None else device)
            check_weights(model)
            self.weights = Path(model)
        self._load_lock = threading.Lock()
        self.analyzer = analyzer or default_analyzer()

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory (always, unless made from a folder and not used yet)."""
        return self._model is not None

    @property
    def model(self) -> PCAVS:
        """The model (loaded from :attr:`weights` on the first access)."""
        return self._model if self._model is not None else self.load()

    def load(self) -> PCAVS:
        """Load the weights of a pipeline made from a folder, once (thread-safe); the model."""
        with self._load_lock:
            if self._model is None:
                assert self.weights is not None  # a pipeline made from a model has one
                self._model = load_model(self.weights, device=self.device).to(self.device).eval()
            return self._model

    @classmethod
    def from_pretrained(
        cls, weights: str | os.PathLike[str], device: str | torch.device = "auto", analyzer: FaceAnalyzer | None = None
    ) -> TalkingFacePipeline:
        """Load a pcavs safetensors folder or an official ``latest_net_*.pth`` folder."""
        dev = resolve_device(device)
        return cls(load_model(weights, device=dev), dev, analyzer)

    @property
    def image_size(self) -> int:
        """The model's face crop size (224 official, 64 small, 32 tiny)."""
        return int(self.model.cfg.image_size)

    @cached_property
    def pose_encoder_hash(self) -> str:
        """Key of this model's pose codes in track files (:func:`pcavs.posetrack.encoder_hash` of E)."""
        return encoder_hash(self.model.E.state_dict())

    def align_identity(self, inputs: GenerationInputs) -> tuple[np.ndarray, np.ndarray]:
        """``(crop, matrix)``: the official aligned crop at the model's size, and photo -> crop matrix."""
        return align_identity(inputs, self.image_size)

    def generate(
        self,
        identity: ImageSource,
        audio: AudioSource,
        pose: PoseSource | None = None,
        pose_mode: str | None = None,
        *,
        output: str | os.PathLike[str],
        fps: int = 25,
        face_index: int = 0,
        identity_landmarks: np.ndarray | None = None,
        pose_landmarks: Sequence[np.ndarray] | None = None,
        on_stage: StageHook | None = None,
        **options: Any,
    ) -> GenerationResult:
        """Make one video. Inputs are paths or arrays (photo: HxWx3 uint8; audio: mono float at 16 kHz;
        pose: video path or (N, H, W, 3) uint8 frames). ``options``: fields of :class:`GenerationOptions`.
        Given landmarks replace face detection (see :func:`prepare_inputs`). ``on_stage(name)`` is called
        as each step of :data:`STAGES` begins (e.g. a progress bar's text).

        Order: the options, then every input (:func:`prepare_inputs`, no model needed), then the weights
        of a lazy pipeline are loaded, then the frames are generated and written.
        """
        stage = on_stage or _no_stage
        opts = GenerationOptions.from_kwargs(**options)
        stage(STAGES[0])
        inputs = prepare_inputs(identity, audio, pose, pose_mode, output=output, fps=fps, face_index=face_index,
                                analyzer=self.analyzer, identity_landmarks=identity_landmarks,
                                pose_landmarks=pose_landmarks, overwrite=opts.overwrite)
        if not self.loaded:
            stage(STAGES[1])
            self.load()
        stage(STAGES[2])
        return self.render(inputs, output, opts)

    # ---------------------------------------------------------------------------------- render
    def _pose_codes(self, inputs: GenerationInputs, identity_crop: np.ndarray, opts: GenerationOptions) -> PoseCodes:
        model, size = self.model, self.image_size
        if inputs.pose_mode == "frontal":
            # the paper's extreme-view experiment: a zero pose code
            return ConstantPose(torch.zeros(model.cfg.mapping.pose_dim, device=self.device))
        if inputs.pose_mode == "still":
            return ConstantPose(model.encode_pose(images_to_tensor(identity_crop[None], self.device))[0])
        src = inputs.pose
        if opts.pose_edit is not None:  # edits work on a track: a pose video is tracked into one first
            if not isinstance(src, PoseTrack):
                if not is_path(src):
                    raise InputError("pose edits need the pose as a video file or a track (.npz), not frames")
                src = extract_track(src, size=size, fps=inputs.fps, analyzer=self.analyzer, max_gap=opts.max_gap,
                                    face_index=opts.pose_face_index)
            src = edit_track(src, opts.pose_edit)
        if isinstance(src, PoseTrack):
            track = src.select(np.arange(min(len(src), inputs.num_frames)))  # rows past the audio are unused
            codes = None if track.meta.get("mirror") else track.codes.get(self.pose_encoder_hash)
            if codes is None:  # not cached for this model: crops from the source video(s), encoded here
                codes = track_codes(track, lambda b: model.encode_pose(images_to_tensor(b, self.device)), size)
            still = None
            if track.meta.get("start_from_photo"):
                still = model.encode_pose(images_to_tensor(identity_crop[None], self.device))[0].cpu().numpy()
            return TrackCodes(apply_code_edits(codes, track.meta, still), loop=track.meta.get("loop", DEFAULT_LOOP))
        frames: FrameSource
        if is_path(src):
            frames = partial(read_video_frames, src, fps=inputs.fps)  # decoded twice: landmarks, then crops
        elif isinstance(src, np.ndarray | Sequence):
            frames = src
        else:
            frames = list(src)  # a one-shot iterable of frames: the crop needs two passes
        analyzer = self.analyzer.with_options(use_cnn=opts.detector == "hog+cnn")
        crops = tracked_crops(frames, size, analyzer=analyzer, name=inputs.pose_name or "pose video",
                              face_index=opts.pose_face_index, max_gap=opts.max_gap,
                              landmarks=inputs.pose_landmarks, limit=inputs.num_frames)

        def encode(batch: np.ndarray) -> torch.Tensor:
            return model.encode_pose(images_to_tensor(batch, self.device)).cpu()

        return StreamedPose(crops, encode, name=inputs.pose_name or "pose video")

    def faces(
        self, identity: IdentityCode, windows: torch.Tensor, pose: torch.Tensor, start: int, opts: GenerationOptions
    ) -> torch.Tensor:
        """Frames ``start .. start+B-1`` (B, 3, S, S) float32 in [-1, 1] from their speech ``windows``
        (B, 1, n_mels, 20) and pose codes (B, pose_dim): the one generation step of :meth:`render` and
        of the live stream (:mod:`pcavs.infer.stream`). A frame's noise depends on its index only."""
        model, stop = self.model, start + windows.shape[0]
        weight = model.cfg.mouth_weight if opts.mouth_weight is None else opts.mouth_weight
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=opts.precision == "bf16")
        with torch.inference_mode(), autocast:
            mouth = model.mouth_style(model.encode_audio(windows.to(self.device)), weight)
            gens = frame_generators(opts.seed, start, stop, self.device) if opts.noise == "random" else None
            out = model.generate(identity, mouth, pose.to(self.device), noise=opts.noise, generator=gens,
                                 chunk=generator_chunk(self.device, model.cfg.image_size))
        if start == 0 and not bool(torch.isfinite(out).all()):
            raise CheckpointError(
                "the model produced NaN/inf values for the first frame, so the video would be "
                "black; the weights are likely corrupted (re-download or re-convert them) or "
                "--precision bf16 overflowed (try fp32)")
        return out.float()

    def _face_batches(
        self, inputs: GenerationInputs, crop: np.ndarray, poses: PoseCodes, opts: GenerationOptions
    ) -> Iterator[tuple[int, torch.Tensor]]:
        with torch.inference_mode():
            identity = self.model.encode_identity(images_to_tensor(crop[None], self.device))  # once per video
        mel = speech_features(inputs.audio, align_audio=opts.align_audio)  # ~0.3 MB per minute
        for start, stop in batch_bounds(inputs.num_frames, opts.batch_size):
            windows = speech_windows(mel, range(start, stop), inputs.fps)
            with torch.inference_mode():  # a streamed pose video encodes its crops here
                pose = poses.codes(start, stop)
            yield start, self.faces(identity, windows, pose, start, opts)

    def iter_faces(
        self, inputs: GenerationInputs, options: GenerationOptions | None = None
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """``(first frame, (B, 3, S, S) float faces in [-1, 1])`` batches of :meth:`render`'s frames,
        before encoding (the crop, no paste-back): for callers that want the pictures, not a file."""
        opts = options or GenerationOptions()
        crop, _ = self.align_identity(inputs)
        with torch.inference_mode():
            poses = self._pose_codes(inputs, crop, opts)
        try:
            yield from self._face_batches(inputs, crop, poses, opts)
        finally:
            poses.close()

    def render(
        self, inputs: GenerationInputs, output: str | os.PathLike[str], options: GenerationOptions | None = None
    ) -> GenerationResult:
        """Generate frames 0 .. T-1 for prepared ``inputs`` and write ``output`` (atomic: all or nothing)."""
        opts = options or GenerationOptions()
        sources = {"identity photo": None, "audio": None, "pose video": inputs.pose}
        for role, name in (("identity photo", inputs.identity_name), ("audio", inputs.audio_name)):
            sources[role] = name if Path(name).exists() else None  # a path, not "the ... array"
        out = check_output(output, sources, opts.overwrite)
        # paste-back output is the photo (longer side capped at opts.max_size, even sizes); otherwise the crop
        size = (self.image_size, self.image_size)
        background, paste_note = None, None
        t0 = time.perf_counter()
        with torch.inference_mode():
            crop, matrix = self.align_identity(inputs)
            if opts.paste_back:
                try:
                    background, matrix, paste_note = fit_paste_back(inputs.identity, matrix, opts.max_size,
                                                                    inputs.identity_name)
                except ValueError as exc:
                    raise InputError(str(exc)) from None
                size = background.shape[:2]
                if paste_note:
                    warnings.warn(paste_note, InputWarning, stacklevel=2)
            poses = self._pose_codes(inputs, crop, opts)
            try:
                with (
                    VideoWriter(out, fps=inputs.fps, audio=inputs.audio if inputs.sound is None else inputs.sound,
                                sample_rate=inputs.sound_rate) as wr,
                    tqdm(total=inputs.num_frames, unit="frame", desc=out.name, file=sys.stderr,
                         disable=not opts.progress, dynamic_ncols=True, leave=False) as bar,
                ):
                    first_frame_s = None
                    for start, batch in self._face_batches(inputs, crop, poses, opts):
                        stop = start + batch.shape[0]
                        faces = tensor_to_images(batch)
                        if background is None:
                            wr.write(faces)
                        else:
                            # one full-size frame at a time: a batch of 4K photos would be hundreds of MB
                            for face in faces:
                                wr.write(paste_back(background, face, matrix))
                        bar.update(stop - start)
                        if first_frame_s is None:
                            first_frame_s = time.perf_counter() - t0
            finally:
                poses.close()
        elapsed = time.perf_counter() - t0
        mean_off, max_off = timing_error_ms(inputs.fps, opts.align_audio)
        return GenerationResult(
            output=out,
            num_frames=inputs.num_frames,
            fps=inputs.fps,
            width=size[1],
            height=size[0],
            audio_duration=inputs.audio.size / DEFAULT_AUDIO.sample_rate,
            elapsed=elapsed,
            first_frame_s=elapsed if first_frame_s is None else first_frame_s,
            pose_mode=inputs.pose_mode,
            pose_source_frames=poses.source_frames if isinstance(poses, StreamedPose | TrackCodes) else None,
            av_offset_ms=mean_off,
            av_offset_max_ms=max_off,
            warnings=list(inputs.warnings) + ([paste_note] if paste_note else []),
        )


def generate_video(
    identity: ImageSource,
    audio: AudioSource,
    output: str | os.PathLike[str],
    *,
    weights: str | os.PathLike[str] | PCAVS,
    device: str | torch.device = "auto",
    **kwargs: Any,
) -> GenerationResult:
    """One call: ``TalkingFacePipeline(weights, device).generate(identity, audio, output=output, **kwargs)``,
    the device and weights folder checked first and the weights loaded after the inputs. ``kwargs``: the
    keywords of :meth:`TalkingFacePipeline.generate` (``pose``, ``pose_mode``, ``fps``, ``face_index``,
    landmarks, ``on_stage``) and the fields of :class:`GenerationOptions`."""
    return TalkingFacePipeline(weights, device).generate(identity, audio, output=output, **kwargs)
