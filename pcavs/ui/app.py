"""The Gradio page of ``pcavs ui``: photo + speech (+ pose video) -> talking-face mp4.

:class:`UIBackend` holds everything that is not layout (and is what the unit tests call):

* :meth:`UIBackend.preview` finds the face in a photo and draws its 68 landmarks next to the aligned
  crop the model will see, so a bad crop is visible before anything is generated;
* :meth:`UIBackend.generate` checks the inputs (cheap, before the model is loaded), loads the model
  once (on first use) and renders one video. Every failure comes back as a short Markdown message;
  user errors (:data:`pcavs.infer.pipeline.USER_ERRORS`) are shown as they are, anything else is
  logged with its traceback on the server and summarised in one line on the page.

:func:`build_app` lays the page out. Generations share one queue slot (``concurrency_id="generate"``,
limit 1) whether started by the button or by the built-in example, and the backend also serialises
them with a lock, so two visitors can never run the model at the same time. Face previews run in their
own slot with their own :class:`~pcavs.face.FaceAnalyzer`, so they are not stuck behind a generation.
"""

from __future__ import annotations

import atexit
import logging
import math
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

import pcavs
from pcavs.config import ModelConfig
from pcavs.face import FaceAnalyzer, align_face, alignment_matrix, invert_affine, transform_points

__all__ = [
    "DEFAULT_EXAMPLES_DIR",
    "DEFAULT_MOUTH_WEIGHT",
    "DEFAULT_WEIGHTS",
    "UIBackend",
    "build_app",
    "draw_face_preview",
    "example_rows",
    "launch",
]

log = logging.getLogger("pcavs.ui")

ASSETS = Path(pcavs.__file__).resolve().parent / "assets"
#: Bundled demo inputs: identity.png, speech.wav and (optionally) pose.mp4.
DEFAULT_EXAMPLES_DIR = ASSETS / "demo"
#: Bundled model, used when no ``--weights`` is given.
DEFAULT_WEIGHTS = ASSETS / "weights" / "synthtalk-small"
DEFAULT_MOUTH_WEIGHT = ModelConfig.mouth_weight  # the released demo's speech scale
PREVIEW_HEIGHT = 320  # px of the preview panels
KEEP_OUTPUTS = 4  # finished videos kept in the output folder (gradio serves its own copy)

ProgressFn = Callable[..., Any]

POSE_CHOICES = [
    ("video: head motion of the pose video", "video"),
    ("still: the photo's own pose", "still"),
    ("frontal: facing the camera", "frontal"),
    ("self: head motion of the speech video", "self"),
]

# 68-point iBUG groups: (first, last, closed) -> drawn as polylines
_GROUPS = [
    (0, 16, False),  # jaw
    (17, 21, False),  # brows
    (22, 26, False),
    (27, 30, False),  # nose bridge
    (30, 35, True),  # nostrils (closed through the tip)
    (36, 41, True),  # eyes
    (42, 47, True),
    (48, 59, True),  # outer lips
    (60, 67, True),  # inner lips
]
_FACE_COLOUR = (0, 230, 120)
_MOUTH_COLOUR = (255, 60, 160)  # the mouth drives lip sync: shown apart
_CROP_COLOUR = (255, 210, 0)


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


def _panel(image: np.ndarray, height: int, max_width: int) -> tuple[Image.Image, float]:
    h, w = image.shape[:2]
    scale = min(height / h, max_width / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return Image.fromarray(image).resize(size, Image.BILINEAR), scale


def _draw_landmarks(draw: ImageDraw.ImageDraw, pts: np.ndarray, radius: float, width: int) -> None:
    for first, last, closed in _GROUPS:
        seg = [tuple(map(float, p)) for p in pts[first : last + 1]]
        if closed:
            seg.append(seg[0])
        colour = _MOUTH_COLOUR if first >= 48 else _FACE_COLOUR
        draw.line(seg, fill=colour, width=width)
    for i, (x, y) in enumerate(pts):
        colour = _MOUTH_COLOUR if i >= 48 else _FACE_COLOUR
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour, outline=(0, 0, 0))


def draw_face_preview(
    photo: np.ndarray, landmarks: np.ndarray, crop_size: int = 224, height: int = PREVIEW_HEIGHT
) -> np.ndarray:
    """Side by side: the photo with its 68 landmarks and the crop outline, and the aligned crop.

    The crop is the official PC-AVS alignment (:func:`pcavs.face.align_face`) with the landmarks
    mapped into it; the yellow outline on the photo is the region that crop covers.
    """
    crop, matrix = align_face(photo, landmarks, size=crop_size)
    left, scale = _panel(photo, height, max_width=2 * height)
    d = ImageDraw.Draw(left)
    c = crop_size - 0.5
    corners = transform_points(invert_affine(matrix), np.array([[-0.5, -0.5], [c, -0.5], [c, c], [-0.5, c]]))
    outline = [tuple(map(float, p)) for p in (corners + 0.5) * scale]
    d.line([*outline, outline[0]], fill=_CROP_COLOUR, width=2)
    face_px = float(np.ptp(landmarks[:, 0])) * scale  # dots sized to the face as drawn, not to the panel
    _draw_landmarks(d, (landmarks + 0.5) * scale, radius=min(max(face_px / 70, 1.0), height / 160), width=1)
    right, cscale = _panel(crop, height, max_width=height)
    _draw_landmarks(ImageDraw.Draw(right), (transform_points(matrix, landmarks) + 0.5) * cscale,
                    radius=max(1.5, height / 160), width=1)
    gap = 12
    canvas = Image.new("RGB", (left.width + gap + right.width, max(left.height, right.height)), (255, 255, 255))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + gap, 0))
    return np.asarray(canvas)


def example_rows(examples_dir: str | Path | None) -> list[list[Any]]:
    """The built-in example as one row of page inputs, or ``[]`` when the folder lacks the files.

    Row: photo, audio, speech video, pose video, pose mode, paste back, mouth weight, then the head-motion
    edits (amplitude, loop, smoothing, mirror, start from the photo) at their neutral values.
    """
    if examples_dir is None:
        return []
    folder = Path(examples_dir)
    photo, speech, pose = folder / "identity.png", folder / "speech.wav", folder / "pose.mp4"
    if not (photo.is_file() and speech.is_file()):
        return []
    if pose.is_file():
        return [[str(photo), str(speech), None, str(pose), "video", False, DEFAULT_MOUTH_WEIGHT, *MOTION_DEFAULTS]]
    return [[str(photo), str(speech), None, None, "still", False, DEFAULT_MOUTH_WEIGHT, *MOTION_DEFAULTS]]


#: Neutral head-motion edits: amplitude, loop mode, smoothing sigma, mirror, start from the photo's pose.
MOTION_DEFAULTS = (1.0, "pingpong", 0.0, False, False)


def _motion_edit(amplitude: float | None, loop: str | None, smooth: float | None, mirror: bool,
                 start: bool) -> Any:
    """The page's head-motion controls as a TrackEdit (None when they are all neutral)."""
    from pcavs.posetrack import TrackEdit

    edit = TrackEdit(amplitude=None if amplitude in (None, 1.0) else float(amplitude),
                     loop=None if loop in (None, "pingpong") else loop, smooth=float(smooth or 0.0),
                     mirror=bool(mirror), start_from_photo=True if start else None)
    return None if edit == TrackEdit() else edit


# ------------------------------------------------------------------------------------------ backend
class UIBackend:
    """Model (loaded once, on first use), preview face analyzer and output folder of one app."""

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
        self._pipe: Any = None  # TalkingFacePipeline, created on first use
        self._load_lock = threading.Lock()
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
        return self._pipe is not None

    def pipeline(self) -> Any:
        """The :class:`~pcavs.infer.pipeline.TalkingFacePipeline`, loaded on the first call only."""
        from pcavs.infer.pipeline import InputError, TalkingFacePipeline, check_weights

        with self._load_lock:
            if self._pipe is None:
                if self.weights is None:
                    raise InputError(
                        "no model weights: restart the UI with --weights DIR (a pcavs weights folder "
                        "or an official latest_net_*.pth folder)"
                    )
                check_weights(self.weights)
                self._pipe = TalkingFacePipeline.from_pretrained(self.weights, device=self.device)
                log.info("loaded %s on %s", self.weights, self._pipe.device)
            return self._pipe

    # ------------------------------------------------------------------------------ preview
    def preview(self, photo: str | None) -> tuple[np.ndarray | None, str]:
        """``(landmarks + aligned crop image, Markdown status)`` for a photo path; ``(None, message)`` on error."""
        from pcavs.infer.pipeline import USER_ERRORS
        from pcavs.infer.sources import load_image

        if not photo:
            return None, ""
        try:
            with self._preview_lock:
                image, _ = load_image(photo, "identity photo")
                boxes = self._preview_analyzer.detect(image, name=f"the photo {Path(photo).name}")
                landmarks = self._preview_analyzer.landmarks(image, boxes[0])
            drawing = draw_face_preview(image, landmarks)
        except USER_ERRORS as exc:
            return None, _error_md(_friendly(str(exc), [photo]))
        except Exception as exc:  # a bug: the page gets one line, the log the traceback
            log.exception("face preview failed for %s", photo)
            return None, _error_md(f"the face preview failed ({type(exc).__name__}); see the server log")
        box = boxes[0]
        region = 224.0 / math.sqrt(abs(np.linalg.det(alignment_matrix(landmarks, 224)[:, :2])))  # photo px in crop
        faces = f"{len(boxes)} faces found; the largest is used" if len(boxes) > 1 else "face found"
        text = (
            f"**{faces.capitalize()}** ({box.width:.0f}×{box.height:.0f} px in a "
            f"{image.shape[1]}×{image.shape[0]} photo). Left: the 68 landmarks and, in yellow, the region "
            "the model sees; right: that aligned crop. The eyes should be level and the mouth centred."
        )
        if region < 112:
            text += (f" The face is small: the 224 px crop is enlarged from {region:.0f} px of the photo, so the "
                     "result may look soft; a larger face gives a sharper video.")
        return drawing, text

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
        pose_mode: str | None = "still",
        paste_back: bool = False,
        mouth_weight: float | None = DEFAULT_MOUTH_WEIGHT,
        pose_amplitude: float | None = 1.0,
        pose_loop: str | None = "pingpong",
        pose_smooth: float | None = 0.0,
        pose_mirror: bool = False,
        pose_start_from_photo: bool = False,
        progress: ProgressFn | None = None,
    ) -> tuple[str | None, str]:
        """``(mp4 path, Markdown summary)``, or ``(None, Markdown error)``; never raises for bad input."""
        from pcavs.infer.pipeline import (
            POSE_MODES,
            USER_ERRORS,
            GenerationOptions,
            InputError,
            InputWarning,
            prepare_inputs,
        )

        paths = [photo, audio, speech_video, pose_video]
        report = progress if progress is not None else (lambda *a, **k: None)  # gr.Progress has __len__: no `or`
        try:
            mode = pose_mode or "still"
            if mode not in POSE_MODES:
                raise InputError(f"unknown pose mode {mode!r}; choose one of {', '.join(POSE_MODES)}")
            identity, speech, pose = _route_inputs(photo, audio, speech_video, pose_video, mode)
            weight = DEFAULT_MOUTH_WEIGHT if mouth_weight is None else float(mouth_weight)
            if not math.isfinite(weight) or not 0.0 <= weight <= 5.0:
                raise InputError(f"mouth weight must be between 0 and 5, got {mouth_weight!r}")
            edit = _motion_edit(pose_amplitude, pose_loop, pose_smooth, pose_mirror, pose_start_from_photo)
            options = GenerationOptions(mouth_weight=weight, paste_back=bool(paste_back), progress=False,
                                        overwrite=True, pose_edit=edit)  # the page's own numbered outputs
            with self._run_lock:
                t0 = time.perf_counter()
                output = self._next_output()
                paths.append(str(output))
                report(0.01, desc="checking the inputs")
                analyzer = self._pipe.analyzer if self._pipe is not None else None
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", InputWarning)  # returned in result.warnings instead
                    inputs = prepare_inputs(identity, speech, pose, mode, output=output, analyzer=analyzer,
                                            overwrite=True)
                    if self._pipe is None:
                        report(0.02, desc="loading the model (first video only)")
                    pipe = self.pipeline()
                    report(0.03, desc="generating frames")
                    result = pipe.render(inputs, output, options)  # its tqdm bar feeds gr.Progress
                total = time.perf_counter() - t0
        except USER_ERRORS as exc:
            return None, _error_md(_friendly(str(exc), paths))
        except Exception as exc:  # a bug or the machine (e.g. out of memory): one line, traceback in the log
            log.exception("generation failed")
            oom = "out of memory" in str(exc).lower()
            if oom:
                _free_gpu_memory()
            what = "ran out of memory (try shorter audio or no paste-back)" if oom else f"failed ({type(exc).__name__})"
            return None, _error_md(f"the generation {what}; the server log has the details")
        text = (
            f"**Done:** {result.duration:.2f} s of video ({result.num_frames} frames at {result.fps} fps, "
            f"{result.width}×{result.height} px, pose: {result.pose_mode}) in {total:.1f} s "
            f"({result.frames_per_second:.1f} frames/s). Play it or download it above."
        )
        for note in result.warnings:
            text += f"\n\n**Note:** {_md_escape(_friendly(note, paths))}"
        return str(result.output), text


def _free_gpu_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _route_inputs(
    photo: str | None, audio: str | None, speech_video: str | None, pose_video: str | None, mode: str
) -> tuple[str, str, str | None]:
    """``(identity, audio source, pose source)`` for the pipeline, or an :class:`InputError` naming the field."""
    from pcavs.infer.pipeline import InputError

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
    return photo, speech, None


# ------------------------------------------------------------------------------------------ page
_CSS = """
#gen-status, #preview-status { min-height: 2.5em; }
"""


def build_app(
    weights: str | Path | None = None,
    examples_dir: str | Path | None = DEFAULT_EXAMPLES_DIR,
    *,
    device: str = "auto",
    backend: UIBackend | None = None,
    live: Any = "auto",
) -> Any:
    """The Gradio Blocks of ``pcavs ui`` (queue configured: one generation at a time).

    ``weights`` defaults to the bundled model when it exists; the model is loaded on the first
    generation. ``examples_dir`` holds identity.png, speech.wav (and pose.mp4) for the one-click example.
    ``live``: the Live tab's :class:`~pcavs.ui.live.LiveManager` (``"auto"``: streams on this backend's
    model when aiortc is installed; None: the tab only says how to install it).
    """
    import gradio as gr

    from .live import LiveManager, add_live_tab, pipeline_factory, webrtc_available

    if backend is None:
        if weights is None and DEFAULT_WEIGHTS.is_dir():
            weights = DEFAULT_WEIGHTS
        backend = UIBackend(weights, device=device)
    if live == "auto":
        live = LiveManager(pipeline_factory(backend)) if webrtc_available() else None

    def on_preview(photo: str | None) -> tuple[np.ndarray | None, str]:
        return backend.preview(photo)

    def on_generate(
        photo: str | None,
        audio: str | None,
        speech_video: str | None,
        pose_video: str | None,
        pose_mode: str | None,
        paste_back: bool,
        mouth_weight: float | None,
        pose_amplitude: float | None,
        pose_loop: str | None,
        pose_smooth: float | None,
        pose_mirror: bool,
        pose_start_from_photo: bool,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 - gradio injects it by default value
    ) -> tuple[str | None, str]:
        return backend.generate(photo, audio, speech_video, pose_video, pose_mode, paste_back, mouth_weight,
                                pose_amplitude, pose_loop, pose_smooth, pose_mirror, pose_start_from_photo,
                                progress=progress)

    def on_pose_video(pose_video: str | None, mode: str | None) -> str | None:
        # a new pose video is meant to be used; removing it falls back to the photo's pose
        if pose_video:
            return "video"
        return "still" if mode == "video" else mode

    rows = example_rows(examples_dir)
    model_note = (
        f"Model: `{backend.weights.name}` (loaded on the first video)" if backend.weights is not None
        else "**No model weights**: restart with `pcavs ui --weights DIR`"
    )
    with gr.Blocks(title="pcavs: talking face", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        gr.Markdown(
            "## PC-AVS talking face\n"
            "One **photo** gives the identity, **speech** drives the lips, a **pose video** drives the head. "
            f"{model_note}."
        )
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Video", elem_id="tab-video"):
                # inputs are created first (unrendered) so that the example can sit at the top of the page
                photo = gr.Image(label="Identity photo", type="filepath", image_mode=None, render=False,
                                 sources=["upload", "webcam", "clipboard"], height=300, elem_id="photo")
                audio = gr.Audio(label="Speech audio", type="filepath", sources=["upload", "microphone"], render=False,
                                 elem_id="audio")
                speech_video = gr.Video(label="…or a speech video (optional)",
                                        sources=["upload"], include_audio=True, height=130, render=False,
                                        elem_id="speech-video")
                pose_video = gr.Video(label="Pose video (head motion)", sources=["upload"], include_audio=True,
                                      height=130, render=False, elem_id="pose-video")
                pose_mode = gr.Radio(POSE_CHOICES, value="still", label="Pose mode", render=False,
                                     elem_id="pose-mode", info="'video' needs a pose video; 'self' takes speech and "
                                                               "motion from the speech video")
                paste_back = gr.Checkbox(label="Paste the face back into the full photo", value=False, render=False,
                                         elem_id="paste-back")
                mouth_weight = gr.Slider(0.0, 3.0, value=DEFAULT_MOUTH_WEIGHT, step=0.05, render=False,
                                         label="Mouth weight (how strongly the speech moves the lips)",
                                         elem_id="mouth-weight")
                amp, loop, smooth, mirror, start = MOTION_DEFAULTS
                motion = [
                    gr.Slider(0.0, 2.0, value=amp, step=0.05, render=False, elem_id="pose-amplitude",
                              label="Head-motion amplitude (1 = as in the pose video)"),
                    gr.Radio(["pingpong", "repeat", "hold"], value=loop, render=False, elem_id="pose-loop",
                             label="When the pose video is shorter than the speech"),
                    gr.Slider(0.0, 6.0, value=smooth, step=0.5, render=False, elem_id="pose-smooth",
                              label="Smooth the head motion (sigma, frames)"),
                    gr.Checkbox(label="Mirror the head motion", value=mirror, render=False, elem_id="pose-mirror"),
                    gr.Checkbox(label="Start from the photo's own pose", value=start, render=False,
                                elem_id="pose-start"),
                ]
                inputs = [photo, audio, speech_video, pose_video, pose_mode, paste_back, mouth_weight, *motion]
                examples = None
                if rows:
                    names = ", ".join(Path(v).name for v in rows[0][:4] if v)
                    examples = gr.Examples(rows, inputs, label="Built-in example: one click makes a video",
                                           example_labels=[f"▶ {names}"], cache_examples=False, elem_id="examples")
                with gr.Row():
                    with gr.Column(scale=5):
                        photo.render()
                        preview = gr.Image(label="Detected face: 68 landmarks and the aligned crop", type="numpy",
                                           format="png", interactive=False, elem_id="preview")
                        preview_status = gr.Markdown(elem_id="preview-status")
                    with gr.Column(scale=4):
                        for component in inputs[1 : len(inputs) - len(motion)]:
                            component.render()
                        with gr.Accordion("Head motion (pose video edits)", open=False):
                            for component in motion:
                                component.render()
                        run = gr.Button("Generate video", variant="primary", elem_id="generate")
                    with gr.Column(scale=5):
                        result = gr.Video(label="Result", interactive=False, buttons=["download"], height=360,
                                          elem_id="result")
                        gen_status = gr.Markdown(elem_id="gen-status")
                outputs = [result, gen_status]
                run.click(on_generate, inputs, outputs, concurrency_id="generate", concurrency_limit=1,
                          api_name="generate", show_progress_on=result)
                if examples is not None:
                    examples.load_input_event.then(on_generate, inputs, outputs, concurrency_id="generate",
                                                   concurrency_limit=1, api_visibility="private",
                                                   show_progress_on=result)
                photo.change(on_preview, photo, [preview, preview_status], concurrency_id="preview",
                             concurrency_limit=1, show_progress="minimal", show_progress_on=preview,
                             api_name="preview")
                pose_video.change(on_pose_video, [pose_video, pose_mode], pose_mode, queue=False,
                                  api_visibility="private")
            with gr.Tab("Live", elem_id="tab-live"):
                add_live_tab(gr, live)
    demo.queue(default_concurrency_limit=1, max_size=32)
    demo.pcavs_backend = backend  # for tests and the CLI
    return demo


def launch(demo: Any, host: str = "127.0.0.1", port: int = 7860, examples_dir: str | Path | None = None,
           block: bool = True) -> None:
    """Serve ``demo`` locally: no share link, no telemetry, no run history, no server-side rendering (no Node)."""
    allowed = [str(Path(examples_dir).resolve())] if examples_dir is not None and Path(examples_dir).is_dir() else []
    demo.launch(server_name=host, server_port=port, share=False, inbrowser=False, show_error=False,
                allowed_paths=allowed, ssr_mode=False, mcp_server=False, run_history=False,
                prevent_thread_lock=not block, css=_CSS, footer_links=["gradio", "settings"])
