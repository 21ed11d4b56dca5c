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
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

gr = pytest.importorskip("gradio")

from pcavs.checkpoint import save_weights  # noqa: E402
from pcavs.config import preset  # noqa: E402
from pcavs.media import VideoWriter, probe_output, read_audio  # noqa: E402
from pcavs.model import PCAVS  # noqa: E402
from pcavs.ui import cli as ui_cli  # noqa: E402
from pcavs.ui.app import PREVIEW_HEIGHT, UIBackend, build_app, example_rows  # noqa: E402

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
    assert example_rows(assets["examples"])[0][3].endswith("pose.mp4")


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

    def broken() -> None:
        raise RuntimeError("boom\nTraceback (most recent call last): ...")

    monkeypatch.setattr(b, "pipeline", broken)
    path, status = b.generate(*args)
    assert path is None and "failed (RuntimeError)" in status and "Traceback" not in status


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
    from pcavs.ui.app import MOTION_DEFAULTS, _motion_edit, example_rows

    assert _motion_edit(*MOTION_DEFAULTS) is None  # neutral controls: the pose video as it is
    assert _motion_edit(0.5, "hold", 2.0, True, True) == TrackEdit(amplitude=0.5, loop="hold", smooth=2.0,
                                                                   mirror=True, start_from_photo=True)
    rows = example_rows(Path(__file__).parents[1] / "pcavs" / "assets" / "demo")
    assert rows and rows[0][-5:] == list(MOTION_DEFAULTS)
