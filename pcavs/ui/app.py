"""The Gradio page of ``pcavs ui``: photo + speech (+ pose video) -> talking-face mp4, and the Live tab.

Only layout lives here: :class:`~pcavs.ui.backend.UIBackend` does the work (model, preview, generation)
and :mod:`pcavs.ui.preview` draws the face preview. Generations share one queue slot
(``concurrency_id="generate"``, limit 1) whether started by the button or by the built-in example, and
the backend also serialises them with a lock, so two visitors can never run the model at the same time.
Face previews run in their own slot with their own :class:`~pcavs.face.FaceAnalyzer`, so they are not
stuck behind a generation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pcavs.infer.pipeline import MOUTH_WEIGHT_RANGE
from pcavs.posetrack import LOOP_MODES

from .backend import (
    DEFAULT_EXAMPLES_DIR,
    DEFAULT_MOUTH_WEIGHT,
    DEFAULT_PASTE_BACK,
    DEFAULT_POSE_MODE,
    DEFAULT_WEIGHTS,
    MOTION_DEFAULTS,
    UIBackend,
)

__all__ = ["POSE_CHOICES", "build_app", "example_rows", "launch"]

POSE_CHOICES = [
    ("video: head motion of the pose video", "video"),
    ("still: the photo's own pose", "still"),
    ("frontal: facing the camera", "frontal"),
    ("self: head motion of the speech video", "self"),
]


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
        return [[str(photo), str(speech), None, str(pose), "video", DEFAULT_PASTE_BACK, DEFAULT_MOUTH_WEIGHT,
                 *MOTION_DEFAULTS]]
    return [[str(photo), str(speech), None, None, DEFAULT_POSE_MODE, DEFAULT_PASTE_BACK, DEFAULT_MOUTH_WEIGHT,
             *MOTION_DEFAULTS]]


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
        return DEFAULT_POSE_MODE if mode == "video" else mode

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
                pose_mode = gr.Radio(POSE_CHOICES, value=DEFAULT_POSE_MODE, label="Pose mode", render=False,
                                     elem_id="pose-mode", info="'video' needs a pose video; 'self' takes speech and "
                                                               "motion from the speech video")
                paste_back = gr.Checkbox(label="Paste the face back into the full photo", value=DEFAULT_PASTE_BACK,
                                         render=False, elem_id="paste-back")
                # the slider stops at 3; API callers may pass up to MOUTH_WEIGHT_RANGE[1]
                mouth_weight = gr.Slider(MOUTH_WEIGHT_RANGE[0], 3.0, value=DEFAULT_MOUTH_WEIGHT, step=0.05,
                                         render=False, label="Mouth weight (how strongly the speech moves the lips)",
                                         elem_id="mouth-weight")
                amp, loop, smooth, mirror, start = MOTION_DEFAULTS
                motion = [
                    gr.Slider(0.0, 2.0, value=amp, step=0.05, render=False, elem_id="pose-amplitude",
                              label="Head-motion amplitude (1 = as in the pose video)"),
                    gr.Radio(list(LOOP_MODES), value=loop, render=False, elem_id="pose-loop",
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
