"""``pcavs ui``: the Gradio app's functions (fast) and, marked slow, the page in headless Chromium.

The end-to-end test needs Debian's chromium, node and ``npm ci`` in tests/ui; ``make test-ui`` sets all
of that up and runs it. Screenshots go to ``$PCAVS_UI_SHOTS`` (default /tmp/ui-shots).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

gr = pytest.importorskip("gradio")

from pcavs.checkpoint import save_weights  # noqa: E402
from pcavs.config import preset  # noqa: E402
from pcavs.infer.pipeline import TalkingFacePipeline  # noqa: E402
from pcavs.media import VideoWriter, probe_output, read_audio  # noqa: E402
from pcavs.model import PCAVS  # noqa: E402
from pcavs.ui import cli as ui_cli  # noqa: E402
from pcavs.ui.app import build_app, example_rows  # noqa: E402
from pcavs.ui.backend import UIBackend  # noqa: E402
from pcavs.ui.preview import PREVIEW_HEIGHT  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
E2E_SCRIPT = ROOT / "tests" / "ui" / "ui_e2e.mjs"
MOUTH_COLOUR = np.array([255, 60, 160])


def _speech(path: Path) -> None:
    """'hello world' from espeak-ng (about 1 s at 16 kHz); a modulated tone when espeak-ng is missing."""
    if shutil.which("espeak-ng"):
        subprocess.run(["espeak-ng", "-w", str(path), "hello world"], check=True, capture_output=True, timeout=60)
        return
    from scipy.io import wavfile

    t = np.arange(16000) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    wavfile.write(path, 16000, (wave * 32767).astype(np.int16))


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A deterministic small model, example inputs (identity.png, speech.wav, pose.mp4) and bad inputs."""
    from scipy.io import wavfile
    from skimage import data

    root = tmp_path_factory.mktemp("ui")
    torch.manual_seed(0)
    weights = save_weights(PCAVS(preset("small")), root / "weights")
    ex = root / "examples"
    ex.mkdir()
    photo = data.astronaut()
    Image.fromarray(photo).save(ex / "identity.png")
    _speech(ex / "speech.wav")
    head = photo[0:320, 60:380]
    with VideoWriter(ex / "pose.mp4", fps=25) as writer:  # 10 frames, a small sideways sway (looped by the pipeline)
        for i in range(10):
            writer.write(np.ascontiguousarray(np.roll(head, int(4 * np.sin(i / 2)), axis=1))[None])
    Image.fromarray(data.coffee()).resize((200, 133)).save(root / "noface.png")  # small: the CNN fallback is quick
    (root / "notes.txt").write_text("not an image, not audio\n")
    wavfile.write(root / "short.wav", 16000, np.zeros(160, np.int16))  # 10 ms: shorter than one frame
    return {"root": root, "weights": weights, "examples": ex, "identity": ex / "identity.png",
            "speech": ex / "speech.wav", "pose": ex / "pose.mp4", "noface": root / "noface.png",
            "text": root / "notes.txt", "short": root / "short.wav"}


@pytest.fixture(scope="module")
def backend(assets: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> UIBackend:
    return UIBackend(assets["weights"], device="cpu", output_dir=tmp_path_factory.mktemp("ui-out"))


# ------------------------------------------------------------------------------------------- app
def test_build_app(assets: dict[str, Path]) -> None:
    demo = build_app(assets["weights"], assets["examples"], device="cpu")
    assert isinstance(demo, gr.Blocks)
    assert demo.analytics_enabled is False
    fns = {f.api_name: f for f in demo.fns.values()}
    generate = [f for f in demo.fns.values() if f.name == "on_generate"]
    assert len(generate) == 2  # the button and the one-click example share one queue slot of size 1
    assert {f.concurrency_id for f in generate} == {"generate"} and {f.concurrency_limit for f in generate} == {1}
    assert fns["preview"].concurrency_id != "generate"  # a preview does not wait for a generation
    assert "load_example" in fns
    assert not demo.pcavs_backend.loaded  # the model is loaded on the first generation, not at start
    row = example_rows(assets["examples"])[0]
    assert row[3].endswith("pose.mp4")
    # the controls start where the example row (and so pcavs generate's defaults) put them
    values = {b.elem_id: b.value for b in demo.blocks.values() if getattr(b, "elem_id", None) and hasattr(b, "value")}
    ids = ["paste-back", "mouth-weight", "pose-amplitude", "pose-loop", "pose-smooth", "pose-mirror", "pose-start"]
    assert [values[i] for i in ids] == row[5:]
    assert values["pose-mode"] == "still"


def test_build_app_without_examples_or_weights(tmp_path: Path) -> None:
    demo = build_app(None, tmp_path / "missing")
    assert "load_example" not in {f.api_name for f in demo.fns.values()}
    assert example_rows(None) == []


# ------------------------------------------------------------------------------------------- preview
def test_preview_draws_landmarks_and_crop(backend: UIBackend, assets: dict[str, Path]) -> None:
    image, status = backend.preview(str(assets["identity"]))
    assert image is not None and image.dtype == np.uint8 and image.shape[0] == PREVIEW_HEIGHT
    assert image.shape[1] > 1.5 * PREVIEW_HEIGHT  # photo and crop side by side
    right = image[:, -PREVIEW_HEIGHT:]
    mouth = np.abs(right.astype(int) - MOUTH_COLOUR).sum(-1) < 30
    assert mouth.sum() > 50  # the mouth landmarks are drawn on the crop
    ys = np.nonzero(mouth)[0]
    assert 0.55 * PREVIEW_HEIGHT < ys.mean() < 0.8 * PREVIEW_HEIGHT  # ...where the aligned mouth sits
    assert "Face found" in status


def test_preview_errors_are_messages(backend: UIBackend, assets: dict[str, Path]) -> None:
    assert backend.preview(None) == (None, "")
    image, status = backend.preview(str(assets["noface"]))
    assert image is None
    assert status.startswith("**Error:**") and "No face found" in status and "noface.png" in status
    assert str(assets["root"]) not in status  # server paths are reduced to the file name
    image, status = backend.preview(str(assets["text"]))
    assert image is None and "not an image" in status and "Traceback" not in status


# ------------------------------------------------------------------------------------------- generate
def test_generate_example_makes_mp4(backend: UIBackend, assets: dict[str, Path]) -> None:
    calls: list[tuple] = []
    row = example_rows(assets["examples"])[0]
    path, status = backend.generate(*row, progress=lambda *a, **k: calls.append((a, k)))
    assert path is not None and path.endswith(".mp4"), status
    summary = probe_output(path)
    video, audio = summary.stream("video"), summary.stream("audio")
    assert video is not None and audio is not None
    seconds = read_audio(assets["speech"]).size / 16000
    assert abs(summary.duration - seconds) < 0.1
    assert status.startswith("**Done:**") and "pose: video" in status
    assert any(k.get("desc") == "generating frames" for _, k in calls)
    assert backend.loaded


def test_generate_errors_are_messages_before_loading(assets: dict[str, Path], tmp_path: Path) -> None:
    b = UIBackend(assets["weights"], device="cpu", output_dir=tmp_path)
    photo, speech, pose = str(assets["identity"]), str(assets["speech"]), str(assets["pose"])
    cases = [
        ((None, speech, None, pose, "video"), "add a photo"),
        ((photo, None, None, pose, "video"), "add speech"),
        ((photo, speech, None, None, "video"), "needs a pose video"),
        ((photo, speech, None, None, "self"), "pose mode 'self'"),
        ((str(assets["noface"]), speech, None, None, "still"), "No face found"),
        ((photo, str(assets["short"]), None, None, "still"), "shorter than one video frame"),
        ((photo, str(assets["text"]), None, None, "still"), "notes.txt"),
        ((photo, speech, None, str(assets["text"]), "video"), "pose video notes.txt"),
    ]
    for args, expected in cases:
        path, status = b.generate(*args)
        assert path is None, args
        assert status.startswith("**Error:**") and expected in status, (args, status)
        assert "Traceback" not in status and str(assets["root"]) not in status
    assert not b.loaded  # bad input is refused before the model is ever loaded
    assert not list(tmp_path.glob("*.mp4"))


def test_generate_without_weights_or_with_a_bug(assets: dict[str, Path], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    args = (str(assets["identity"]), str(assets["speech"]), None, None, "frontal")
    path, status = UIBackend(None, output_dir=tmp_path).generate(*args)
    assert path is None and "no model weights" in status
    b = UIBackend(assets["weights"], output_dir=tmp_path)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\nTraceback (most recent call last): ...")

    monkeypatch.setattr(TalkingFacePipeline, "render", broken)  # a bug inside the generation
    path, status = b.generate(*args)
    assert path is None and "failed (RuntimeError)" in status and "Traceback" not in status


# ------------------------------------------------------------------------------------------- one path
def test_ui_and_cli_reject_bad_options_with_the_same_message(assets: dict[str, Path], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The checks live once (GenerationOptions, prepare_inputs): the page shows pcavs generate's message."""
    from pcavs.infer import cli as generate_cli
    from pcavs.infer.pipeline import InputError, generate_video

    b = UIBackend(assets["weights"], device="cpu", output_dir=tmp_path / "ui")
    photo, speech = str(assets["identity"]), str(assets["speech"])
    flags = ["--identity", photo, "--audio", speech, "--weights", str(assets["weights"]), "--device", "cpu",
             "--quiet"]
    for weight in (7.0, -0.5, float("nan")):
        _, status = b.generate(photo, speech, None, None, "still", False, weight)
        assert generate_cli.main([*flags, "--mouth-weight", str(weight), "-o", str(tmp_path / "m.mp4")]) == 2
        message = capsys.readouterr().err.strip().removeprefix("error: ")
        assert message.startswith("mouth weight must be a number between 0 and 5")
        assert status == f"**Error:** {message}"
    # an unknown pose mode: argparse's choices stop it on the command line; the library path says the same
    _, status = b.generate(photo, speech, None, None, "sideways")
    with pytest.raises(InputError) as exc:
        generate_video(photo, speech, tmp_path / "p.mp4", weights=assets["weights"], device="cpu",
                       pose_mode="sideways")
    assert "unknown pose mode 'sideways'" in str(exc.value) and status == f"**Error:** {exc.value}"
    assert not b.loaded and not list(tmp_path.rglob("*.mp4"))  # refused before the model is loaded


def test_ui_and_cli_call_one_method_with_the_same_defaults(assets: dict[str, Path], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Both call TalkingFacePipeline.generate; the page's untouched controls give pcavs generate's options."""
    from dataclasses import replace

    from pcavs.config import ModelConfig
    from pcavs.infer import cli as generate_cli
    from pcavs.infer.pipeline import GenerationOptions, InputError
    from pcavs.ui.backend import DEFAULT_MOUTH_WEIGHT, DEFAULT_PASTE_BACK, DEFAULT_POSE_MODE, MOTION_DEFAULTS

    calls: list[dict] = []

    def spy(self: TalkingFacePipeline, *args: object, **kwargs: object) -> None:
        calls.append(kwargs)
        raise InputError("stopped by the test")

    monkeypatch.setattr(TalkingFacePipeline, "generate", spy)
    photo, speech = str(assets["identity"]), str(assets["speech"])
    ui = UIBackend(assets["weights"], device="cpu", output_dir=tmp_path / "ui")
    row = [photo, speech, None, None, DEFAULT_POSE_MODE, DEFAULT_PASTE_BACK, DEFAULT_MOUTH_WEIGHT, *MOTION_DEFAULTS]
    for args in ([photo, speech], row):  # the method's defaults, and the page's controls as they start
        assert "stopped by the test" in ui.generate(*args)[1]
    assert generate_cli.main(["--identity", photo, "--audio", speech, "--weights", str(assets["weights"]),
                              "--device", "cpu", "-o", str(tmp_path / "cli.mp4")]) == 2
    assert len(calls) == 3
    names = {f.name for f in fields(GenerationOptions)}
    ui_default, ui_page, cli = (GenerationOptions(**{k: v for k, v in c.items() if k in names}) for c in calls)
    assert cli == replace(GenerationOptions(), progress=True)  # the CLI's flags at their defaults
    # the page writes its own numbered files (overwrite) and shows gr.Progress instead of a tqdm bar
    assert replace(ui_default, overwrite=False, progress=True) == cli
    # the slider shows the number the library's None stands for
    assert replace(ui_page, overwrite=False, progress=True) == replace(cli, mouth_weight=ModelConfig.mouth_weight)
    assert cli.mouth_weight is None and DEFAULT_MOUTH_WEIGHT == ModelConfig.mouth_weight


# ------------------------------------------------------------------------------------------- cli
def test_cli_arguments_and_bad_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    ui_cli.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port, args.weights) == ("127.0.0.1", 7860, None)
    assert ui_cli.run(parser.parse_args(["--weights", str(tmp_path / "missing")])) == 2
    assert "error:" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- browser
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"pcavs ui exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"pcavs ui did not answer at {url} within {timeout:.0f} s")


def _ui_command() -> list[str]:
    """``pcavs ui`` once the lead has wired it into pcavs.cli, else the module's own entry point."""
    from pcavs.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return [sys.executable, "-m", "pcavs", "ui"] if "ui" in sub.choices else [sys.executable, "-m", "pcavs.ui.cli"]


@pytest.mark.slow
def test_ui_end_to_end(assets: dict[str, Path], tmp_path: Path) -> None:
    """``pcavs ui`` in headless Chromium: one-click example -> video of the audio's length; no-face message."""
    chromium = os.environ.get("PCAVS_CHROMIUM", "/usr/bin/chromium")
    node = shutil.which("node")
    if not (node and Path(chromium).exists() and (E2E_SCRIPT.parent / "node_modules" / "playwright-core").is_dir()):
        pytest.skip("needs node, chromium and `npm ci` in tests/ui: run `make test-ui`")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_TEMP_DIR": str(tmp_path / "gradio"), "GRADIO_ANALYTICS_ENABLED": "False"}
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [*_ui_command(), "--weights", str(assets["weights"]), "--examples",
             str(assets["examples"]), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
        )
    try:
        _wait_http(url, server, timeout=180)
        seconds = read_audio(assets["speech"]).size / 16000
        proc = subprocess.run(
            [node, str(E2E_SCRIPT), "--url", url, "--noface", str(assets["noface"]), "--face",
             str(assets["identity"]), "--audio-seconds", f"{seconds:.3f}", "--chromium", chromium,
             "--shots", os.environ.get("PCAVS_UI_SHOTS", "/tmp/ui-shots")],
            capture_output=True, text=True, timeout=900, cwd=E2E_SCRIPT.parent,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        result = json.loads(lines[-1][len("RESULT "):]) if lines else {}
        assert proc.returncode == 0 and result.get("ok"), (
            f"{result.get('error') or proc.stderr[-3000:]}\n--- server log ---\n{log_path.read_text()[-3000:]}"
        )
        assert abs(result["video"]["duration"] - seconds) < 0.2
        assert result["external_requests"] == []
        assert server.poll() is None  # still serving after the errors
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.status == 200
        server.terminate()  # SIGTERM: a clean shutdown, which also removes the temporary outputs
        assert server.wait(timeout=30) == 0
        assert "Traceback" not in log_path.read_text()  # user errors are not logged as crashes
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def test_head_motion_controls_become_a_track_edit() -> None:
    from pcavs.posetrack import TrackEdit
    from pcavs.ui.backend import MOTION_DEFAULTS, motion_edit

    assert motion_edit(*MOTION_DEFAULTS) is None  # neutral controls: the pose video as it is
    assert motion_edit(0.5, "hold", 2.0, True, True) == TrackEdit(amplitude=0.5, loop="hold", smooth=2.0,
                                                                   mirror=True, start_from_photo=True)
    rows = example_rows(Path(__file__).parents[1] / "pcavs" / "assets" / "demo")
    assert rows and rows[0][-5:] == list(MOTION_DEFAULTS)
