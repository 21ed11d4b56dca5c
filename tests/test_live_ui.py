"""The Live tab of `pcavs ui` in headless Chromium with fake media devices (`make test-live`).

Chromium's fake microphone plays speech.wav and its fake camera a y4m of a moving face. The page sends
them over WebRTC (aiortc on the server) and plays what comes back; the test records the remote stream
in the page (MediaRecorder) and measures the audio-visual offset of what the browser got.

To measure sync rather than the model's lip reading, the streams here use a probe renderer: each frame's
brightness is the log-mel energy of the mel row centred on the frame's own time (column 11 of its window).
Sound and picture then carry the same envelope, and the lag that best aligns the recorded picture's
brightness with the recorded sound's energy shows that the picture follows the sound. The offset the
viewer gets is read where the browser decides it: the inbound-rtp ``estimatedPlayoutTimestamp`` of the
sound and of the picture being played (the sender's clock; the server sends a moment's sound and its
picture at the same instant). MediaRecorder's own timestamps are not used for it: Chrome stamps the sound
after its jitter buffer and concealment (measured: the recording's lag grew 55 -> 175 ms in 8 s on a
loaded machine while the playout offset stayed within one frame). Everything else is the real path: the
page, the WebRTC tracks, the engine (:class:`TalkingFaceStream` with pacing), the send clock.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import socket
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.live

playwright_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("aiortc")
pytest.importorskip("gradio")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

import av  # noqa: E402

from pcavs.infer.posesource import ConstantPose  # noqa: E402
from pcavs.infer.stream import Pacing, TalkingFaceStream  # noqa: E402
from pcavs.media import read_audio, read_video_frames  # noqa: E402
from pcavs.ui.app import DEFAULT_WEIGHTS, build_app, launch  # noqa: E402
from pcavs.ui.live import LiveManager  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "pcavs" / "assets" / "demo"
SR = 16000


def _probe_render(windows: torch.Tensor, pose: torch.Tensor, start: int) -> torch.Tensor:
    level = windows[:, 0, :, 11].mean(dim=1)  # row 4i+3: the 80 ms STFT frame centred on frame i's time
    return (level * 2 - 1).view(-1, 1, 1, 1).expand(-1, 3, 64, 64).contiguous()


def _probe_factory(photo: object, pose: object) -> TalkingFaceStream:
    return TalkingFaceStream(_probe_render, ConstantPose(torch.zeros(12)), pacing=Pacing(0.12), batch_size=1,
                             pose_encoder=lambda image: torch.zeros(12))


def _write_y4m(path: Path, frames: list[np.ndarray]) -> None:
    h, w = frames[0].shape[:2]
    h, w = h - h % 2, w - w % 2
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            rgb = rgb[:h, :w].astype(np.float32)
            y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
            u = (rgb[..., 2] - y) * 0.564 + 128
            v = (rgb[..., 0] - y) * 0.713 + 128
            sub = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # noqa: E731
            f.write(b"FRAME\n")
            for plane in (y, sub(u), sub(v)):
                f.write(np.clip(plane, 0, 255).astype(np.uint8).tobytes())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _decode(webm: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(frame times, frame brightness, audio mono, audio rate) of the recording."""
    times, levels, audio, rate = [], [], [], 48000
    with av.open(io.BytesIO(webm)) as c:
        for frame in c.decode(*c.streams):
            if isinstance(frame, av.VideoFrame):
                if frame.pts is None:
                    continue
                times.append(float(frame.pts * frame.time_base))
                levels.append(frame.to_ndarray(format="gray").astype(np.float32).mean())
            else:
                rate = frame.sample_rate
                x = frame.to_ndarray().astype(np.float32)
                channels = len(frame.layout.channels)
                audio.append(x.mean(axis=0) if frame.format.is_planar else x.reshape(-1, channels).mean(1))
                start = float(frame.pts * frame.time_base) if frame.pts is not None else None
                if len(audio) == 1 and start:
                    audio.insert(0, np.zeros(round(start * rate), np.float32))
    return np.array(times), np.array(levels), np.concatenate(audio), rate


def _offset_ms(times: np.ndarray, levels: np.ndarray, audio: np.ndarray, rate: int) -> tuple[float, float]:
    """(lag of the picture behind the sound in ms, correlation at that lag)."""
    win = int(0.08 * rate)
    hop = int(0.005 * rate)
    centres = np.arange(win // 2, audio.size - win // 2, hop)
    energy = np.array([10 * np.log10(np.mean(audio[c - win // 2 : c + win // 2] ** 2) + 1e-10) for c in centres])
    t_energy = centres / rate
    keep = (times > 1.0) & (times < t_energy[-1] - 0.5)  # skip the start-up and the end
    best = (0.0, -2.0)
    for lag_ms in range(-300, 301, 5):
        e = np.interp(times[keep] - lag_ms / 1000, t_energy, energy)
        r = float(np.corrcoef(levels[keep], e)[0, 1])
        if r > best[1]:
            best = (float(lag_ms), r)
    return best


@pytest.mark.parametrize("renderer", ["probe", "builtin", "builtin-camera"])
def test_live_tab_streams_in_sync_from_fake_microphone_and_camera(tmp_path: Path, renderer: str) -> None:
    """``probe``: the envelope renderer and the camera (sync measurable in the picture); ``builtin``: the
    shipped model on the UI's own stream factory, microphone only; ``builtin-camera``: and the camera."""
    speech = read_audio(DEMO / "speech.wav")
    with wave.open(str(tmp_path / "speech.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(speech, -1, 1) * 32767).astype("<i2").tobytes())
    _write_y4m(tmp_path / "face.y4m", list(read_video_frames(DEMO / "pose.mp4"))[:50])

    if renderer == "probe":
        demo = build_app(None, None, live=LiveManager(_probe_factory, delay=0.3))
    else:
        demo = build_app(DEFAULT_WEIGHTS, None, device="cpu")  # live="auto": streams on the UI's model
    port = _free_port()
    launch(demo, port=port, block=False)
    try:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={tmp_path / 'speech.wav'}",
                f"--use-file-for-fake-video-capture={tmp_path / 'face.y4m'}",
                "--autoplay-policy=no-user-gesture-required"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            page.get_by_role("tab", name="Live").click()
            if renderer != "builtin":
                page.locator("#live-camera input").check()
            page.locator("#live-start").click()
            page.wait_for_function("() => { const v = document.querySelector('#pcavs-live-video');"
                                   " return v && v.readyState >= 2 && v.currentTime > 1.0; }", timeout=60000)
            b64 = page.evaluate("""async () => {
                const rec = new MediaRecorder(window.pcavsLive.remote, {mimeType: 'video/webm;codecs=vp8,opus'});
                const parts = [];
                rec.ondataavailable = (e) => parts.push(e.data);
                rec.start();
                await new Promise((r) => setTimeout(r, 8000));
                await new Promise((r) => { rec.onstop = r; rec.stop(); });
                const buf = await new Blob(parts).arrayBuffer();
                let s = ''; const b = new Uint8Array(buf);
                for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
                return btoa(s);
            }""")
            status = page.locator("#live-status").inner_text()
            # what the viewer gets: the sender-clock time of the sound and of the picture being played out
            # now (inbound-rtp estimatedPlayoutTimestamp, ms), sampled for 6 s
            offsets = page.evaluate("""async () => {
                const out = [];
                for (let i = 0; i < 60; i++) {
                    const t = {};
                    (await window.pcavsLive.pc.getStats()).forEach((r) => {
                        const when = r.estimatedPlayoutTimestamp;
                        if (r.type === 'inbound-rtp' && when) t[r.kind] = when;
                    });
                    if (t.audio && t.video) out.push(t.video - t.audio);
                    await new Promise((r) => setTimeout(r, 100));
                }
                return out;
            }""")
            page.locator("#live-stop").click()
            browser.close()
    finally:
        demo.close()
    (tmp_path / "recording.webm").write_bytes(base64.b64decode(b64))
    times, levels, audio, rate = _decode(base64.b64decode(b64))
    assert len(times) > 100, "frames did not arrive"  # 8 s at 25 fps: ~200
    if renderer == "probe":
        assert levels.std() > 5, "the picture does not follow the sound"
    lag, r = _offset_ms(times, levels, audio, rate)
    played = float(np.median(offsets))
    print(f"{renderer}: recorded {len(times)} frames; played A/V offset (picture ahead of sound) median "
          f"{played:+.0f} ms over {len(offsets)} samples (min {min(offsets):+.0f}, max {max(offsets):+.0f}); "
          f"recording's envelope lag {lag:+.0f} ms (corr {r:.2f}; the recorder stamps sound after its jitter "
          f"buffer and concealment); page: {status}")
    if renderer == "probe":
        assert r > 0.6, "the picture does not follow the sound"
    assert len(offsets) >= 30
    assert abs(played) <= 40
    assert "frames/s made" in status and "camera poses" in status
    if renderer != "builtin":
        assert not re.search(r"\b0 camera poses", status)
