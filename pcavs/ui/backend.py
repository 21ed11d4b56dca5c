"""Everything of ``pcavs ui`` that is not layout: :class:`UIBackend` (what the unit tests call).

* :meth:`UIBackend.preview` finds the face in a photo and draws its 68 landmarks next to the aligned
  crop the model will see, so a bad crop is visible before anything is generated;
* :meth:`UIBackend.generate` routes the page's fields to :meth:`TalkingFacePipeline.generate
  <pcavs.infer.pipeline.TalkingFacePipeline.generate>`, the path ``pcavs generate`` takes: the same
  checks and messages, the inputs checked before the model is loaded (on the first video). Every
  failure comes back as a short Markdown message; a :class:`~pcavs.errors.UserError` is shown as it is,
  anything else is logged with its traceback on the server and summarised in one line on the page.

The page's starting values are the library's defaults (:class:`~pcavs.infer.pipeline.GenerationOptions`,
:class:`~pcavs.posetrack.TrackEdit`), so a click on "Generate" does what ``pcavs generate`` does.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pcavs.config import ModelConfig
from pcavs.errors import UserError
from pcavs.face import FaceAnalyzer
from pcavs.infer.demo import DEMO_INPUTS, DEMO_WEIGHTS
from pcavs.infer.pipeline import (
    STAGES,
    GenerationOptions,
    GenerationResult,
    InputError,
    InputWarning,
    TalkingFacePipeline,
    resolve_pose_mode,
)
from pcavs.infer.sources import load_image
from pcavs.posetrack import DEFAULT_LOOP, TrackEdit

from .preview import describe_face, draw_face_preview

__all__ = [
    "DEFAULT_EXAMPLES_DIR",
    "DEFAULT_MOUTH_WEIGHT",
    "DEFAULT_PASTE_BACK",
    "DEFAULT_POSE_MODE",
    "DEFAULT_WEIGHTS",
    "MOTION_DEFAULTS",
    "UIBackend",
    "motion_edit",
]

log = logging.getLogger("pcavs.ui")

#: Bundled demo inputs: identity.png, speech.wav and (optionally) pose.mp4 (``pcavs demo``'s).
DEFAULT_EXAMPLES_DIR = DEMO_INPUTS
#: Bundled model, used when no ``--weights`` is given (``pcavs generate``'s default too).
DEFAULT_WEIGHTS = DEMO_WEIGHTS
KEEP_OUTPUTS = 4  # finished videos kept in the output folder (gradio serves its own copy)

_OPTIONS, _NO_EDIT = GenerationOptions(), TrackEdit()  # the library's defaults: the page starts from them
#: The mouth-weight slider's start: the value GenerationOptions' default (None: the model's own) stands for.
DEFAULT_MOUTH_WEIGHT = ModelConfig.mouth_weight if _OPTIONS.mouth_weight is None else _OPTIONS.mouth_weight
DEFAULT_PASTE_BACK = _OPTIONS.paste_back
DEFAULT_POSE_MODE = resolve_pose_mode(None, None)  # without a pose video: the photo's own pose
NEUTRAL_AMPLITUDE = 1.0  # what TrackEdit's amplitude None means: the motion as it is
#: Head-motion controls at TrackEdit() (no edit): amplitude, loop mode, smoothing sigma, mirror, start from
#: the photo's pose.
MOTION_DEFAULTS = (
    NEUTRAL_AMPLITUDE if _NO_EDIT.amplitude is None else _NO_EDIT.amplitude,
    _NO_EDIT.loop or DEFAULT_LOOP,
    _NO_EDIT.smooth,
    _NO_EDIT.mirror,
    bool(_NO_EDIT.start_from_photo),
)
#: gr.Progress value and text as each step of the generation begins.
STAGE_PROGRESS = {
    STAGES[0]: (0.01, "checking the inputs"),
    STAGES[1]: (0.02, "loading the model (first video only)"),
    STAGES[2]: (0.03, "generating frames"),
}

ProgressFn = Callable[..., Any]


# ------------------------------------------------------------------------------------------ helpers
def _md_escape(text: str) -> str:
    """Text shown literally inside Markdown (file names often contain ``_`` and ``*``)."""
    for ch in "\\`*_{}[]<>#|":
        text = text.replace(ch, "\\" + ch)
    return text


def _error_md(message: str) -> str:
    return f"**Error:** {_md_escape(message)}"


def _friendly(message: str, paths: list[str | None]) -> str:
    """Replace server-side upload paths (``/tmp/gradio/<hash>/me.jpg``) by the file's own name."""
    for p in sorted({p for p in paths if p}, key=len, reverse=True):
        message = message.replace(str(p), Path(p).name)
    return message


def _no_progress(*args: Any, **kwargs: Any) -> None:
    pass


def motion_edit(amplitude: float | None, loop: str | None, smooth: float | None, mirror: bool,
                start: bool) -> TrackEdit | None:
    """The page's head-motion controls as a TrackEdit (None when they are all neutral)."""
    edit = TrackEdit(amplitude=None if amplitude in (None, NEUTRAL_AMPLITUDE) else float(amplitude),
                     loop=None if loop in (None, DEFAULT_LOOP) else loop,
                     smooth=_NO_EDIT.smooth if smooth is None else float(smooth),
                     mirror=bool(mirror), start_from_photo=True if start else None)
    return None if edit == _NO_EDIT else edit


def _route_inputs(
    photo: str | None, audio: str | None, speech_video: str | None, pose_video: str | None, mode: str
) -> tuple[str, str, str | None]:
    """``(identity, audio source, pose source)`` for the pipeline, or an :class:`InputError` naming the field."""
    if not photo:
        raise InputError("add a photo of the person: upload one, take one with the webcam, or click the example")
    if mode == "self":
        if not speech_video:
            raise InputError(
                "pose mode 'self' takes both the speech and the head motion from one video: upload it under "
                "'Speech video', or choose another pose mode"
            )
        return photo, speech_video, None
    speech = audio or speech_video
    if not speech:
        raise InputError("add speech: upload or record audio, or upload a video with speech")
    if mode == "video":
        if not pose_video:
            hint = " or 'self' (the speech video's own motion)" if speech_video else ""
            raise InputError(
                f"pose mode 'video' needs a pose video: upload one, or choose 'still' (the photo's pose), "
                f"'frontal'{hint}"
            )
        return photo, speech, pose_video
    return photo, speech, None  # an unknown mode is refused by the pipeline, with pcavs generate's message


def _free_gpu_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _done_md(result: GenerationResult, total: float, paths: list[str | None]) -> str:
    text = (
        f"**Done:** {result.duration:.2f} s of video ({result.num_frames} frames at {result.fps} fps, "
        f"{result.width}×{result.height} px, pose: {result.pose_mode}) in {total:.1f} s "
        f"({result.frames_per_second:.1f} frames/s). Play it or download it above."
    )
    for note in result.warnings:
        text += f"\n\n**Note:** {_md_escape(_friendly(note, paths))}"
    return text


# ------------------------------------------------------------------------------------------ backend
class UIBackend:
    """Model (loaded once, on first use), preview face analyzer and output folder of one app.

    The weights folder and the device are checked here (a wrong ``--weights`` fails at start); the
    weights are loaded by the first video or the first live stream.
    """

    def __init__(
        self,
        weights: str | Path | None,
        device: str = "auto",
        output_dir: str | Path | None = None,
        keep_outputs: int = KEEP_OUTPUTS,
    ) -> None:
        self.weights = Path(weights) if weights is not None else None
        self.device = device
        self.keep_outputs = max(1, keep_outputs)
        self._output_dir = Path(output_dir) if output_dir is not None else None  # made on first use
        self._pipe = TalkingFacePipeline(self.weights, device) if self.weights is not None else None
        self._run_lock = threading.Lock()  # one generation at a time, whatever the queue does
        self._preview_lock = threading.Lock()
        self._preview_analyzer = FaceAnalyzer()  # own dlib models: previews never share them with a generation
        self._count = 0

    @property
    def output_dir(self) -> Path:
        """Where videos are written: the given folder, or a temporary one removed when the process exits."""
        if self._output_dir is None:
            self._output_dir = Path(tempfile.mkdtemp(prefix="pcavs-ui-"))
            atexit.register(shutil.rmtree, self._output_dir, ignore_errors=True)
        self._output_dir.mkdir(parents=True, exist_ok=True)
        return self._output_dir

    # ------------------------------------------------------------------------------ model
    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded."""
        return self._pipe is not None and self._pipe.loaded

    def _checked_pipe(self) -> TalkingFacePipeline:
        if self._pipe is None:
            raise InputError(
                "no model weights: restart the UI with --weights DIR (a pcavs weights folder "
                "or an official latest_net_*.pth folder)"
            )
        return self._pipe

    def pipeline(self) -> TalkingFacePipeline:
        """The :class:`~pcavs.infer.pipeline.TalkingFacePipeline` with its model loaded (on the first call)."""
        pipe = self._checked_pipe()
        if not pipe.loaded:
            pipe.load()
            log.info("loaded %s on %s", self.weights, pipe.device)
        return pipe

    # ------------------------------------------------------------------------------ preview
    def preview(self, photo: str | None) -> tuple[np.ndarray | None, str]:
        """``(landmarks + aligned crop image, Markdown status)`` for a photo path; ``(None, message)`` on error."""
        if not photo:
            return None, ""
        try:
            with self._preview_lock:
                image, _ = load_image(photo, "identity photo")
                boxes = self._preview_analyzer.detect(image, name=f"the photo {Path(photo).name}")
                landmarks = self._preview_analyzer.landmarks(image, boxes[0])
            drawing = draw_face_preview(image, landmarks)
        except UserError as exc:
            return None, _error_md(_friendly(str(exc), [photo]))
        except Exception as exc:  # a bug: the page gets one line, the log the traceback
            log.exception("face preview failed for %s", photo)
            return None, _error_md(f"the face preview failed ({type(exc).__name__}); see the server log")
        return drawing, describe_face(image, boxes, landmarks)

    # ------------------------------------------------------------------------------ generate
    def _next_output(self) -> Path:
        self._count += 1
        old = sorted(self.output_dir.glob("talking-face-*.mp4"), key=lambda p: p.stat().st_mtime)
        for p in old[: max(0, len(old) - self.keep_outputs + 1)]:
            p.unlink(missing_ok=True)
        return self.output_dir / f"talking-face-{self._count:03d}.mp4"

    def generate(
        self,
        photo: str | None,
        audio: str | None,
        speech_video: str | None = None,
        pose_video: str | None = None,
        pose_mode: str | None = DEFAULT_POSE_MODE,
        paste_back: bool = DEFAULT_PASTE_BACK,
        mouth_weight: float | None = _OPTIONS.mouth_weight,
        pose_amplitude: float | None = None,  # None (as the motion controls' other Nones): no edit
        pose_loop: str | None = None,
        pose_smooth: float | None = None,
        pose_mirror: bool = False,
        pose_start_from_photo: bool = False,
        progress: ProgressFn | None = None,
    ) -> tuple[str | None, str]:
        """``(mp4 path, Markdown summary)``, or ``(None, Markdown error)``; never raises for bad input.

        ``progress(value, desc=...)`` is told as each step begins (gr.Progress)."""
        paths = [photo, audio, speech_video, pose_video]
        report = progress if progress is not None else _no_progress  # gr.Progress has __len__: no `or`
        try:
            mode = pose_mode or DEFAULT_POSE_MODE
            identity, speech, pose = _route_inputs(photo, audio, speech_video, pose_video, mode)
            edit = motion_edit(pose_amplitude, pose_loop, pose_smooth, pose_mirror, pose_start_from_photo)
            pipe = self._checked_pipe()

            def on_stage(name: str) -> None:
                if name == STAGES[1]:
                    log.info("loading %s on %s", self.weights, pipe.device)
                value, text = STAGE_PROGRESS[name]
                report(value, desc=text)

            with self._run_lock:
                t0 = time.perf_counter()
                output = self._next_output()
                paths.append(str(output))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", InputWarning)  # returned in result.warnings instead
                    result = pipe.generate(identity, speech, pose, mode, output=output, on_stage=on_stage,
                                           mouth_weight=mouth_weight, paste_back=bool(paste_back), pose_edit=edit,
                                           overwrite=True)  # the page's own numbered outputs
                total = time.perf_counter() - t0
        except UserError as exc:
            return None, _error_md(_friendly(str(exc), paths))
        except Exception as exc:  # a bug or the machine (e.g. out of memory): one line, traceback in the log
            log.exception("generation failed")
            oom = "out of memory" in str(exc).lower()
            if oom:
                _free_gpu_memory()
            what = "ran out of memory (try shorter audio or no paste-back)" if oom else f"failed ({type(exc).__name__})"
            return None, _error_md(f"the generation {what}; the server log has the details")
        return str(result.output), _done_md(result, total, paths)
