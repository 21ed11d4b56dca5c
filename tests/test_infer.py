"""Tests for pcavs.infer: photo + speech (+ pose video) -> synced talking-face mp4.

Fixtures are made at test time: deterministic ``small``/``tiny`` weights, the astronaut photo, speech
from espeak-ng (a synthetic vowel track if it is missing) and a pose video of shifted, rolled and
foreshortened crops of the photo. Face detection uses HOG only (no CNN fallback) so the face-less
cases stay fast, and torch runs one thread (see ``_one_thread``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("dlib")
skdata = pytest.importorskip("skimage.data")

from PIL import Image  # noqa: E402

import pcavs.infer.inputs as inputs_mod  # noqa: E402
import pcavs.infer.pipeline as pipeline_mod  # noqa: E402
from pcavs.audio import mel_windows, melspectrogram, normalize_rms, num_video_frames  # noqa: E402
from pcavs.checkpoint import save_weights  # noqa: E402
from pcavs.config import preset  # noqa: E402
from pcavs.face import (  # noqa: E402
    TEMPLATE_224,
    default_analyzer,
    landmarks68,
    three_points,
    transform_points,
)
from pcavs.infer import cli  # noqa: E402
from pcavs.infer.pipeline import (  # noqa: E402
    GenerationOptions,
    InputError,
    TalkingFacePipeline,
    align_identity,
    batch_bounds,
    generate_video,
    prepare_inputs,
)
from pcavs.infer.posesource import StreamedPose, pingpong_index, pingpong_indices  # noqa: E402
from pcavs.infer.sources import (  # noqa: E402
    speech_features,
    speech_windows,
    timing_error_ms,
    window_centre_offset_samples,
    window_start_rows,
)
from pcavs.media import VideoWriter, probe_output, read_audio, read_video_frames  # noqa: E402
from pcavs.model import PCAVS  # noqa: E402
from pcavs.nn.layers import NoiseInjection  # noqa: E402

SR = 16000
FACE_CENTRE = (225, 135)  # of the astronaut's face in the 512x512 photo


# ------------------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def _hog_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # HOG finds the astronaut at once; without the CNN fallback a face-less frame costs ~0.1 s, not ~2 s
    fast = default_analyzer().with_options(use_cnn=False, upsample_levels=0)
    monkeypatch.setattr(pipeline_mod, "default_analyzer", lambda: fast)
    monkeypatch.setattr(inputs_mod, "default_analyzer", lambda: fast)  # prepare_inputs' photo check


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    pass  # torch on one thread (conftest.one_thread)


def _speech(path: Path, text: str) -> np.ndarray:
    if shutil.which("espeak-ng"):
        subprocess.run(["espeak-ng", "-s", "170", "-w", str(path), text], check=True, capture_output=True)
        return read_audio(path)
    # fallback: a voiced, syllabic signal (150 Hz harmonics under a 4 Hz envelope)
    t = np.arange(int(2.2 * SR)) / SR
    voice = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20))
    x = (0.2 * voice * np.clip(np.sin(2 * np.pi * 4 * t), 0, None)).astype(np.float32)
    _write_wav(path, x)
    return x


def _write_wav(path: Path, x: np.ndarray, sr: int = SR) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def _pose_frames(photo: np.ndarray, n: int, size: int = 256) -> np.ndarray:
    """Crops of the photo that sway, roll and foreshorten: a head-motion video with a real face.

    The anisotropic scale stands in for yaw/pitch: the alignment (a similarity) removes shifts and
    roll but not that, so the pose code changes from frame to frame.
    """
    im = Image.fromarray(photo)
    cx, cy = FACE_CENTRE
    frames = []
    for k in range(n):
        ph = 2 * np.pi * k / max(n, 2)
        a = np.deg2rad(6 * np.sin(ph))
        fwd = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ np.diag(
            [1 + 0.18 * np.sin(ph), 1 + 0.1 * np.cos(ph)])
        inv = np.linalg.inv(fwd)  # PIL maps output pixels back to input pixels
        coeffs = (inv[0, 0], inv[0, 1], cx - inv[0, 0] * cx - inv[0, 1] * cy,
                  inv[1, 0], inv[1, 1], cy - inv[1, 0] * cx - inv[1, 1] * cy)
        warped = np.asarray(im.transform(im.size, Image.AFFINE, coeffs, resample=Image.BILINEAR))
        dx, dy = int(12 * np.sin(2 * ph)), int(8 * np.cos(ph))
        frames.append(warped[20 + dy : 20 + dy + size, 100 + dx : 100 + dx + size])
    return np.stack(frames)


def _vivid(model: PCAVS) -> PCAVS:
    """Random weights give a near-constant face: its pose code is ~0.03 and its noise gain 0. Scale the
    pose embedding and the noise so that pose and seed visibly change the picture."""
    with torch.no_grad():
        model.E.headpose_embed[1].weight.mul_(200)
        model.E.headpose_embed[1].bias.mul_(200)
        for m in model.modules():
            if isinstance(m, NoiseInjection):
                m.weight.fill_(0.05)
    return model


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("infer_assets")
    torch.manual_seed(0)
    small = save_weights(PCAVS(preset("small")), root / "small")
    torch.manual_seed(0)
    tiny = save_weights(PCAVS(preset("tiny")), root / "tiny")
    torch.manual_seed(0)
    vivid = save_weights(_vivid(PCAVS(preset("small"))), root / "vivid")
    photo = skdata.astronaut()
    Image.fromarray(photo).save(root / "photo.png")
    speech = _speech(root / "speech.wav", "Hello, this face talks.")
    frames = _pose_frames(photo, 20)
    with VideoWriter(root / "pose.mp4") as w:
        w.write(frames)
    # a talking video with sound, for pose mode 'self' (30 frames, 1.2 s of the speech)
    talk = _pose_frames(photo, 30)
    with VideoWriter(root / "talk.mp4", audio=speech[: 30 * SR // 25]) as w:
        w.write(talk)
    return {"root": root, "small": small, "tiny": tiny, "vivid": vivid, "photo": photo,
            "photo_path": root / "photo.png", "speech": speech, "speech_path": root / "speech.wav",
            "pose_path": root / "pose.mp4", "pose_frames": frames, "talk_path": root / "talk.mp4"}


@pytest.fixture(scope="module")
def pipe(assets: dict) -> TalkingFacePipeline:
    return TalkingFacePipeline.from_pretrained(assets["small"], device="cpu")


def _frames(path: Path) -> np.ndarray:
    return np.stack(list(read_video_frames(path)))


# ---------------------------------------------------------------------------------- pose looping
def test_pingpong_order() -> None:
    assert pingpong_indices(0, 12, 4) == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1]
    assert pingpong_indices(0, 5, 2) == [0, 1, 0, 1, 0]
    assert pingpong_indices(0, 4, 1) == [0, 0, 0, 0]
    assert pingpong_indices(5, 9, 3) == [pingpong_index(k, 3) for k in range(5, 9)] == [1, 2, 1, 0]
    with pytest.raises(ValueError):
        pingpong_index(0, 0)


def test_streamed_pose_loops_back_and_forth_and_stops_reading() -> None:
    read = []

    def crops(n: int):
        for k in range(n):
            read.append(k)
            yield np.full((4, 4, 3), k, np.uint8)

    def encode(batch: np.ndarray) -> torch.Tensor:  # the "pose code" is the frame number
        return torch.from_numpy(batch[:, 0, 0, :1].astype(np.float32))

    short = StreamedPose(crops(4), encode)
    got = torch.cat([short.codes(s, min(s + 3, 11)) for s in range(0, 11, 3)])[:, 0].int().tolist()
    assert got == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2]
    assert short.source_frames == 4 and short.exhausted

    read.clear()
    gen = crops(1000)
    long = StreamedPose(gen, encode)
    assert long.codes(0, 5)[:, 0].int().tolist() == [0, 1, 2, 3, 4]
    assert long.codes(5, 8)[:, 0].int().tolist() == [5, 6, 7]
    long.close()
    assert read == list(range(8))  # a longer video is cut: never read past the last frame needed
    assert gen.gi_frame is None  # generator closed (the decoder releases the file)


# ---------------------------------------------------------------------------------- audio timing
def test_speech_features_are_the_official_mel(assets: dict) -> None:
    x = assets["speech"]
    official = melspectrogram(x)
    ours = speech_features(x, align_audio=False, chunk_rows=97)  # small chunks: many seams
    assert ours.shape == official.shape
    assert torch.allclose(ours, official, atol=1e-6)
    # aligned = the official mel of the normalised audio advanced by 240 samples (80 zeros, 2 rows dropped)
    shifted = melspectrogram(np.concatenate([np.zeros(80), normalize_rms(x)]), normalize=False)[2:]
    aligned = speech_features(x, align_audio=True, chunk_rows=131)
    assert torch.allclose(aligned, shifted, atol=1e-6)
    # at 25 fps frame i uses mel_windows(mel, [i]) exactly
    assert torch.equal(speech_windows(aligned, range(3, 9)), mel_windows(aligned, list(range(3, 9))))
    assert window_start_rows(range(4)) == [-8, -4, 0, 4]


def _window_power_centroid(mel: torch.Tensor, frame: int) -> float:
    """Power-weighted centre of frame's 20-row window, in rows (9.5 = the middle)."""
    win = mel_windows(mel, [frame])[0, 0]  # (n_mels, 20)
    power = torch.pow(10.0, 10.0 * win.double() - 10.0).sum(0)  # undo the dB scale: linear power per row
    cols = torch.arange(power.numel(), dtype=torch.float64)
    return float((power * cols).sum() / power.sum())


def test_window_centred_on_frame_time() -> None:
    """A click exactly at t = i/25 s lands 15 ms (1.5 rows) after the middle of frame i's window with the
    official (training) pairing, and in the middle (within 1 ms) with ``align_audio``."""
    assert window_centre_offset_samples() == -240
    assert timing_error_ms(25, False) == (0.0, 0.0)  # relative to the pairing the model was trained with
    assert timing_error_ms(25, True) == (15.0, 15.0)  # centred windows: the picture would lead by 15 ms
    for i in (10, 25, 41):
        x = np.zeros(3 * SR, np.float32)
        x[i * SR // 25] = 1.0
        aligned = _window_power_centroid(speech_features(x, align_audio=True), i)
        official = _window_power_centroid(speech_features(x, align_audio=False), i)
        assert abs(aligned - 9.5) < 0.1, aligned  # 0.1 row = 1 ms
        assert abs(official - 11.0) < 0.1, official


class SyncProbe(PCAVS):
    """A tiny PCAVS that behaves like a model trained with the official pairing: its picture is the
    speech power 15 ms after the centre of each window (column 11 of 0..19), the sound of the frame
    the window was paired with in training.

    Everything else (mel, windows, batching, writer, decoder) is the real pipeline, so the brightness
    peak of the decoded video against the click in the decoded audio measures the A/V offset.
    """

    def __init__(self) -> None:
        super().__init__(preset("tiny"))
        self.ref = 1.0

    def encode_audio(self, mel_windows: torch.Tensor) -> torch.Tensor:
        power = torch.pow(10.0, 10.0 * mel_windows[:, 0].double() - 10.0).sum(1)  # (B, 20)
        cols = torch.arange(power.shape[1], dtype=torch.float64) - ((power.shape[1] - 1) / 2 + 1.5)
        level = (power * torch.exp(-0.5 * (cols / 3.0) ** 2)).sum(1, keepdim=True)
        return level.float().expand(-1, self.cfg.audio.feature_dim)

    def mouth_style(self, content: torch.Tensor, weight: float | None = None) -> torch.Tensor:
        return content[:, : self.cfg.mouth_dim]

    def generate(self, identity, mouth, pose, noise="random", generator=None, chunk=None) -> torch.Tensor:
        v = (mouth[:, :1] / self.ref).clamp(0, 1) * 2 - 1
        return v[:, :, None, None].expand(-1, 3, self.cfg.image_size, self.cfg.image_size)


def _measure_offset(out: Path) -> float:
    """Video brightness centroid time minus audio click time, both read back from ``out`` (seconds)."""
    y = read_audio(out)
    peak = int(np.argmax(np.abs(y)))
    lo = max(peak - 32, 0)
    e = y[lo : peak + 32].astype(np.float64) ** 2
    t_audio = (lo + float((e * np.arange(e.size)).sum() / e.sum())) / SR
    frames = _frames(out)
    b = frames.reshape(len(frames), -1).mean(1)
    b = b - np.median(b)
    k = int(np.argmax(b))
    ks = np.arange(max(k - 6, 0), min(k + 7, len(b)))
    w = np.clip(b[ks], 0, None)
    t_video = float((w * ks / 25).sum() / w.sum())
    return t_video - t_audio


def test_av_offset_end_to_end(assets: dict, tmp_path: Path) -> None:
    probe = SyncProbe().eval()
    pipe = TalkingFacePipeline(probe, device="cpu")
    x = np.zeros(2 * SR, np.float32)
    click = int(1.017 * SR)  # between two frames on purpose
    x[click : click + 3] = [0.5, 1.0, 0.5]
    offsets = {}
    for align in (True, False):
        mel = speech_features(x, align_audio=align)
        probe.ref = float(probe.encode_audio(speech_windows(mel, range(50))).max())
        out = tmp_path / f"sync_{align}.mp4"
        res = pipe.generate(assets["photo"], x, pose_mode="frontal", output=out, align_audio=align)
        offsets[align] = _measure_offset(out) * 1000
        assert res.av_offset_ms == (15.0 if align else 0.0)
    print(f"measured A/V offset (video - audio): default {offsets[False]:.2f} ms, aligned {offsets[True]:.2f} ms")
    assert abs(offsets[False]) < 2.0  # requirement: < 10 ms
    assert abs(offsets[True] + 15.0) < 3.0  # centred windows on such a model: the picture leads by 15 ms


# ------------------------------------------------------------------------------------ generation
def test_generate_with_pose_video(pipe: TalkingFacePipeline, assets: dict, tmp_path: Path) -> None:
    out = tmp_path / "talk.mp4"
    calls: dict[str, list[int]] = {"encode_identity": [], "encode_pose": []}

    def counting(name: str):
        real = getattr(pipe.model, name)

        def counted(x: torch.Tensor):
            calls[name].append(x.shape[0])
            return real(x)

        return counted

    for name in calls:  # count the encoder calls on this pipeline's model (instance attributes shadow methods)
        setattr(pipe.model, name, counting(name))
    try:
        res = pipe.generate(identity=assets["photo_path"], audio=assets["speech_path"], pose=assets["pose_path"],
                            output=out, batch_size=8, seed=0)
    finally:
        for name in calls:
            delattr(pipe.model, name)
    # identity once per video; pose codes in fixed blocks of 8 source frames as the 20 pose frames stream
    # in (not in the caller's batches: the codes must not depend on the batch size), then reused
    assert calls == {"encode_identity": [1], "encode_pose": [8, 8, 4]}
    n_audio = read_audio(assets["speech_path"]).size
    T = num_video_frames(n_audio)
    s = probe_output(out)
    v, a = s.stream("video"), s.stream("audio")
    assert v is not None and a is not None
    assert (v.codec, v.pix_fmt, v.width, v.height, v.frames) == ("h264", "yuv420p", 64, 64, T)
    assert v.fps == pytest.approx(25.0)
    # the speech file's own sound (espeak-ng writes 22.05 kHz mono); the model read it at 16 kHz
    assert (a.codec, a.sample_rate, a.channels) == ("aac", 22050, 1)
    assert abs(s.duration - n_audio / SR) <= 1 / 25
    assert res.num_frames == T and res.pose_mode == "video" and res.av_offset_ms == 0.0
    assert res.pose_source_frames == 20  # the 20-frame pose video was looped, not re-read
    assert T > 20
    assert res.summary().startswith(f"wrote {out}: {T} frames, {T / 25:.2f} s, ")
    assert res.summary().endswith(" frames/s (pose: video), A/V offset 0 ms")
    # the audio in the file is the input audio (16 kHz mono, sample 0 at t = 0)
    y = read_audio(out)
    ref = read_audio(assets["speech_path"])
    n = min(y.size, ref.size)
    lag = int(np.argmax(np.correlate(y[4000:12000], ref[4000 - 40 : 12000 + 40], "valid"))) - 40
    assert abs(lag) <= 2 and y.size == pytest.approx(ref.size, abs=SR // 25) and n > 0


def test_identity_crop_landmarks(assets: dict) -> None:
    inputs = prepare_inputs(assets["photo_path"], assets["speech"][:SR], pose_mode="still")
    # at the model's size the mouth lands exactly on the official target, the eyes close to theirs
    for size in (64, 224):
        crop, m = align_identity(inputs, size)
        target = (TEMPLATE_224 - [16, 0] + 0.5) * size / 192 - 0.5
        pts = transform_points(m, three_points(inputs.landmarks))
        assert crop.shape == (size, size, 3)
        assert np.allclose(pts[2], target[2], atol=1e-6)
        assert np.abs(pts[:2] - target[:2]).max() < 0.03 * size
    # a detector run on the 224 crop finds the face where the matrix put it: the mouth on the target
    found = three_points(landmarks68(crop))
    assert np.abs(found - pts).max() < 2.0, found - pts
    assert np.abs(found[2] - target[2]).max() < 1.5, found[2] - target[2]


def test_pose_modes_differ_and_pipeline_reuse(assets: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    loads = []
    real_load = pipeline_mod.load_model
    monkeypatch.setattr(pipeline_mod, "load_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    pipe = TalkingFacePipeline.from_pretrained(assets["vivid"], device="cpu")
    audio = assets["speech"][: SR]  # arrays work as inputs too
    outs = {}
    runs = (("still", None), ("frontal", None), ("video", assets["pose_frames"]), ("again", None))
    for name, pose in runs:
        mode = "still" if name == "again" else name
        res = pipe.generate(assets["photo"], audio, pose=pose, pose_mode=mode, output=tmp_path / f"{name}.mp4",
                            noise="none")
        assert res.num_frames == 25 and res.pose_mode == mode
        outs[name] = _frames(res.output).astype(np.float32)
    assert len(loads) == 1  # four videos, one weights load
    # deterministic (noise off): the same inputs give bit-identical files, so any difference is the pose.
    # Random weights barely react to the pose *video* (their pose code varies by ~0.1 %), hence the low bar
    # for still vs video; frontal (a zero code) is far from both.
    assert np.array_equal(outs["still"], outs["again"])
    diffs = {(a, b): float(np.abs(outs[a] - outs[b]).mean())
             for a, b in (("still", "frontal"), ("still", "video"), ("frontal", "video"))}
    print("mean |difference| between pose modes:", diffs)
    assert diffs["still", "frontal"] > 1.0 and diffs["frontal", "video"] > 1.0
    assert diffs["still", "video"] > 0.05


def test_seed_reproducible(assets: dict, tmp_path: Path) -> None:
    pipe = TalkingFacePipeline.from_pretrained(assets["vivid"], device="cpu")
    audio = assets["speech"][: SR // 2]
    a = pipe.generate(assets["photo"], audio, output=tmp_path / "a.mp4", seed=3)
    b = pipe.generate(assets["photo"], audio, output=tmp_path / "b.mp4", seed=3)
    c = pipe.generate(assets["photo"], audio, output=tmp_path / "c.mp4", seed=4)
    fa, fb, fc = (_frames(r.output) for r in (a, b, c))
    assert np.array_equal(fa, fb) and not np.array_equal(fa, fc)


def test_paste_back_has_photo_size(pipe: TalkingFacePipeline, assets: dict, tmp_path: Path) -> None:
    audio = assets["speech"][: 12 * SR // 25]
    res = pipe.generate(assets["photo_path"], audio, output=tmp_path / "pb.mp4", paste_back=True)
    v = probe_output(res.output).stream("video")
    assert (v.width, v.height, v.frames) == (512, 512, 12) and (res.width, res.height) == (512, 512)
    frames = _frames(res.output)
    # outside the face the photo is unchanged (up to H.264), inside it is the generated face
    assert np.abs(frames[0, 400:, :100].astype(int) - assets["photo"][400:, :100]).mean() < 4
    odd = np.ascontiguousarray(assets["photo"][:301, 50:349])  # 299 wide, 301 high
    res = pipe.generate(odd, audio, output=tmp_path / "odd.mp4", paste_back=True)
    v = probe_output(res.output).stream("video")
    assert (v.width, v.height) == (298, 300)


def test_self_mode_takes_pose_and_audio_from_one_video(pipe: TalkingFacePipeline, assets: dict, tmp_path: Path
                                                       ) -> None:
    res = pipe.generate(assets["photo_path"], assets["talk_path"], pose_mode="self", output=tmp_path / "self.mp4")
    assert res.pose_mode == "self" and res.num_frames == 30 and res.pose_source_frames == 30
    with pytest.raises(InputError, match="drop --pose"):
        pipe.generate(assets["photo_path"], assets["talk_path"], pose=assets["pose_path"], pose_mode="self",
                      output=tmp_path / "x.mp4")
    with pytest.raises(InputError, match="needs the audio as a video file"):
        pipe.generate(assets["photo_path"], assets["speech"], pose_mode="self", output=tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


# ------------------------------------------------------------------------------------------- CLI
def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_round_trip(assets: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.mp4"
    args = _parse(["--identity", str(assets["photo_path"]), "--audio", str(assets["speech_path"]), "--pose",
                   str(assets["pose_path"]), "--weights", str(assets["tiny"]), "-o", str(out), "--device", "cpu",
                   "--batch-size", "5", "--mouth-weight", "1.0", "--noise", "const", "--threads", "1", "--quiet"])
    assert cli.run(args) == 0
    captured = capsys.readouterr()
    T = num_video_frames(read_audio(assets["speech_path"]).size)
    assert captured.out.strip().startswith(f"wrote {out}: {T} frames")
    assert re.fullmatch(rf"wrote {re.escape(str(out))}: {T} frames, {T / 25:.2f} s, \d+\.\d frames/s "
                        r"\(pose: video\), A/V offset 0 ms", captured.out.strip()), captured.out
    assert "frame/s]" not in captured.err  # --quiet: no progress bar
    v = probe_output(out).stream("video")
    assert (v.width, v.frames) == (32, T)


# ------------------------------------------------------------------------------------ bad inputs
def _gap_video(path: Path, photo: np.ndarray, face: list[range]) -> None:
    """Pose video whose frames show the face only in the given ranges (gray elsewhere)."""
    n = max(r.stop for r in face)
    frames = _pose_frames(photo, n)
    keep = np.zeros(n, bool)
    for r in face:
        keep[list(r)] = True
    frames[~keep] = 128
    with VideoWriter(path) as w:
        w.write(frames)


def _cut(src: Path, dst: Path, fraction: float = 0.6) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def _bad_case(name: str, assets: dict, d: Path) -> tuple[dict, str]:
    """(argument overrides, expected message regex) for one bad-input case; files are made in ``d``."""
    if name == "missing photo":
        return {"identity": d / "nope.jpg"}, r"identity photo .*nope\.jpg: file not found; check the path"
    if name == "not an image":
        (d / "notes.jpg").write_text("hello")
        return {"identity": d / "notes.jpg"}, r"identity photo .*notes\.jpg: not an image Pillow can read"
    if name == "huge photo":
        Image.new("RGB", (4, 4)).save(d / "huge.png")
        import struct
        import zlib

        data = bytearray((d / "huge.png").read_bytes())
        data[16:24] = struct.pack(">II", 20000, 20000)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
        (d / "huge.png").write_bytes(bytes(data))
        return {"identity": d / "huge.png"}, r"identity photo .*huge\.png: image is 400 MP, larger than the 100 MP"
    if name == "photo without face":
        Image.fromarray(np.full((240, 320, 3), 120, np.uint8)).save(d / "wall.png")
        return {"identity": d / "wall.png"}, r"No face found in identity photo .*wall\.png \(320x240 px\)"
    if name == "missing audio":
        return {"audio": d / "nope.wav"}, r"audio .*nope\.wav: file not found"
    if name == "audio not media":
        (d / "speech.wav").write_text("not audio at all")
        return {"audio": d / "speech.wav"}, r"audio .*speech\.wav: not a readable media file"
    if name == "audio without samples":
        _write_wav(d / "empty.wav", np.zeros(0, np.float32))
        return {"audio": d / "empty.wav"}, r"audio .*empty\.wav: .*no samples"
    if name == "audio shorter than a frame":
        _write_wav(d / "blip.wav", np.full(320, 0.3, np.float32))
        return {"audio": d / "blip.wav"}, r"audio .*blip\.wav: the audio lasts 20\.0 ms, shorter than one video frame"
    if name == "truncated mp4 as audio":
        return {"audio": _cut(assets["talk_path"], d / "cut.mp4")}, r"audio .*cut\.mp4: file is truncated"
    if name == "truncated mp4 as pose":
        return {"pose": _cut(assets["talk_path"], d / "cutpose.mp4")}, r"pose video .*cutpose\.mp4: file is truncated"
    if name == "pose not a video":
        (d / "pose.mp4").write_bytes(b"\x00" * 1000)
        return {"pose": d / "pose.mp4"}, r"pose video .*pose\.mp4: not a readable media file"
    if name == "pose video loses the face":
        _gap_video(d / "gap.mp4", assets["photo"], [range(0, 4), range(20, 24)])
        return {"pose": d / "gap.mp4"}, (r"pose video .*gap\.mp4: face lost in frames 4-16 \(13 consecutive frames, "
                                         r"more than max_gap=12\)")
    if name == "weights folder missing":
        return {"weights": d / "w"}, r"w: weights folder does not exist"
    if name == "weights folder empty":
        (d / "w").mkdir()
        return {"weights": d / "w"}, r"w: no weights found\. Expected either config\.json \+ model\.safetensors"
    if name == "weights without model file":
        (d / "w").mkdir()
        shutil.copy(assets["small"] / "config.json", d / "w")
        return {"weights": d / "w"}, r"model\.safetensors: missing; the folder has config\.json but no weights"
    if name == "weights truncated":
        (d / "w").mkdir()
        shutil.copy(assets["small"] / "config.json", d / "w")
        _cut(assets["small"] / "model.safetensors", d / "w" / "model.safetensors", 0.5)
        return {"weights": d / "w"}, r"model\.safetensors: cannot be read as safetensors"
    if name == "weights of another preset":
        (d / "w").mkdir()
        shutil.copy(assets["tiny"] / "config.json", d / "w")
        shutil.copy(assets["small"] / "model.safetensors", d / "w")
        return {"weights": d / "w"}, r"the weights for network \w+ do not fit the model"
    if name == "official folder incomplete":
        (d / "w").mkdir()
        torch.save({}, d / "w" / "latest_net_G.pth")
        return {"weights": d / "w"}, r"official checkpoint folder is incomplete, missing latest_net_V\.pth"
    if name == "output folder missing":
        return {"output": d / "no" / "out.mp4"}, r"output folder .*no does not exist; create it or choose another -o"
    if name == "pose mode video without pose":
        return {"pose_mode": "video"}, r"pose mode 'video' needs a pose video \(--pose VIDEO\)"
    if name == "paste-back beyond H.264":
        canvas = np.full((6000, 6000, 3), 128, np.uint8)
        canvas[:2048, :2048] = np.asarray(Image.fromarray(assets["photo"]).resize((2048, 2048)))  # a findable face
        Image.fromarray(canvas).save(d / "big.png", compress_level=1)
        return ({"identity": d / "big.png", "extra": ["--paste-back", "--max-size", "0"]},
                r"big\.png: a pasted-back video of 6000x6000 is beyond H\.264's largest level")
    if name == "weights with NaN":
        from safetensors.torch import load_file, save_file

        (d / "w").mkdir()
        shutil.copy(assets["small"] / "config.json", d / "w")
        tensors = load_file(str(assets["small"] / "model.safetensors"))
        key = next(k for k in tensors if k.startswith("G.") and k.endswith("weight"))
        tensors[key][..., 0] = float("nan")
        save_file(tensors, str(d / "w" / "model.safetensors"))
        return {"weights": d / "w"}, (r"model\.safetensors: 1 tensor\(s\) of network G hold NaN or inf values \("
                                      + re.escape(key[2:]) + r"\); the file is corrupted: re-download it")
    if name == "output is the audio":
        shutil.copy(assets["speech_path"], d / "speech.wav")
        return ({"audio": d / "speech.wav", "output": d / "speech.wav"},
                r"speech\.wav: the output is the audio .*speech\.wav; writing it would destroy the input")
    if name == "output is the pose video":
        shutil.copy(assets["pose_path"], d / "pose.mp4")
        return ({"pose": d / "pose.mp4", "output": d / "." / "pose.mp4"},
                r"pose\.mp4: the output is the pose video .*pose\.mp4; writing it would destroy the input")
    if name == "output is the photo":
        shutil.copy(assets["photo_path"], d / "photo.png")
        return ({"identity": d / "photo.png", "output": d / "photo.png"},
                r"photo\.png: the output is the identity photo .*photo\.png; writing it would destroy")
    if name == "output exists":
        (d / "out.mp4").write_bytes(b"my earlier video")
        return {}, r"out\.mp4: already exists; pass --overwrite \(-y\) to replace it, or choose another -o"
    if name == "face index beyond the faces":
        return ({"extra": ["--face-index", "3"]},
                r"identity photo .*photo\.png: --face-index 3 asked for, but 1 face\(s\) found; use 0")
    raise KeyError(name)


BAD_CASES = [
    "missing photo", "not an image", "huge photo", "photo without face", "missing audio", "audio not media",
    "audio without samples", "audio shorter than a frame", "truncated mp4 as audio", "truncated mp4 as pose",
    "pose not a video", "pose video loses the face", "weights folder missing", "weights folder empty",
    "weights without model file", "weights truncated", "weights of another preset", "official folder incomplete",
    "output folder missing", "pose mode video without pose", "paste-back beyond H.264", "weights with NaN",
    "output is the audio", "output is the pose video", "output is the photo", "output exists",
    "face index beyond the faces",
]


def _argv(assets: dict, d: Path, quiet: bool = True, **over: object) -> list[str]:
    opts = {"identity": assets["photo_path"], "audio": assets["speech_path"], "pose": None, "pose_mode": None,
            "weights": assets["small"], "output": d / "out.mp4"}
    opts.update(over)
    argv = ["--identity", str(opts["identity"]), "--audio", str(opts["audio"]), "--weights", str(opts["weights"]),
            "-o", str(opts["output"]), "--device", "cpu"] + (["--quiet"] if quiet else [])
    if opts["pose"] is not None:
        argv += ["--pose", str(opts["pose"])]
    if opts["pose_mode"] is not None:
        argv += ["--pose-mode", str(opts["pose_mode"])]
    return argv + [str(a) for a in opts.get("extra", [])]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input(case: str, assets: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    over, message = _bad_case(case, assets, tmp_path)
    before = set(tmp_path.rglob("*"))
    t0 = time.perf_counter()
    status = cli.run(_parse(_argv(assets, tmp_path, **over)))
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    print(f"{case}: {err.strip()}")
    assert status == 2
    assert err.startswith("error: ")
    assert re.search(message, err), err
    assert set(tmp_path.rglob("*")) == before  # no output, no partial file
    if case in ("huge photo", "missing photo", "output folder missing", "weights folder missing",
                "weights folder empty", "weights without model file", "official folder incomplete",
                "output is the audio", "output is the pose video", "output is the photo", "output exists"):
        assert elapsed < 1.0, elapsed  # refused before any decoding, face detection or model building


def test_short_face_gap_is_interpolated(assets: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _gap_video(tmp_path / "blink.mp4", assets["photo"], [range(0, 6), range(9, 20)])  # frames 6-8 face-less
    out = tmp_path / "out.mp4"
    status = cli.run(_parse(_argv(assets, tmp_path, quiet=False, pose=tmp_path / "blink.mp4", weights=assets["tiny"])))
    err = capsys.readouterr().err
    assert status == 0 and out.exists(), err
    assert f"{out.name}:   0%" in err and "frame/s]" in err  # the progress bar (stderr) when not --quiet


def test_silent_audio_warns_but_works(assets: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_wav(tmp_path / "silence.wav", np.zeros(SR // 2, np.float32))
    status = cli.run(_parse(_argv(assets, tmp_path, audio=tmp_path / "silence.wav", weights=assets["tiny"])))
    captured = capsys.readouterr()
    print(captured.err)
    assert status == 0 and (tmp_path / "out.mp4").exists()
    assert "warning: " in captured.err and "silence.wav: the audio is silent (peak -inf dBFS)" in captured.err


def test_other_frame_rate(assets: dict, tmp_path: Path) -> None:
    pipe = TalkingFacePipeline.from_pretrained(assets["tiny"], device="cpu")
    res = pipe.generate(assets["photo"], assets["speech"][: SR + 100], output=tmp_path / "30.mp4", fps=30)
    v = probe_output(res.output).stream("video")
    assert (res.num_frames, v.frames, v.fps) == (30, 30, pytest.approx(30.0))
    assert window_start_rows(range(4), fps=30) == [-8, -5, -1, 2]  # frame times rounded to 10 ms rows
    assert res.summary().endswith("A/V offset 0 ms (±3 ms row rounding at 30 fps)")


def test_api_errors(pipe: TalkingFacePipeline, assets: dict, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="must be 1-D mono"):
        pipe.generate(assets["photo"], np.zeros((2, 16000)), output=tmp_path / "x.mp4")
    with pytest.raises(InputError, match="NaN"):
        pipe.generate(assets["photo"], np.full(16000, np.nan), output=tmp_path / "x.mp4")
    with pytest.raises(InputError, match="HxWx3 uint8"):
        pipe.generate(np.zeros((64, 64), np.float32), assets["speech"], output=tmp_path / "x.mp4")
    with pytest.raises(InputError, match="batch size"):
        GenerationOptions(batch_size=0)
    with pytest.raises(TypeError, match="unknown generation option"):
        pipe.generate(assets["photo"], assets["speech"], output=tmp_path / "x.mp4", bach_size=4)
    if not torch.cuda.is_available():
        from pcavs.device import DeviceError

        with pytest.raises(DeviceError, match="no CUDA GPU"):
            generate_video(assets["photo"], assets["speech"], tmp_path / "x.mp4", weights=assets["tiny"],
                           device="cuda")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------- peak memory
_RSS_SCRIPT = r"""
import json, sys, numpy as np
from pcavs.infer.pipeline import TalkingFacePipeline
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
weights, photo, audio, pose, out, mode = sys.argv[1:7]
pipe = TalkingFacePipeline.from_pretrained(weights, device="cpu")
before = hwm()
res = pipe.generate(photo, audio, pose=None if pose == "-" else pose, pose_mode=mode, output=out)
print(json.dumps({"frames": res.num_frames, "before_mb": before, "peak_mb": hwm(), "fps": res.frames_per_second}))
"""


def peak_rss(weights: Path, photo: Path, seconds: float, d: Path, pose: Path | None = None) -> dict:
    """Generate ``seconds`` of video in a fresh process; its peak RSS (VmHWM) in MB and more."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    # speech-like: voiced harmonics under a syllable envelope, plus a little noise
    x = 0.1 * np.sin(2 * np.pi * 140 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(t.size)
    audio = d / f"speech_{seconds:g}s.wav"
    _write_wav(audio, x.astype(np.float32))
    out = d / f"out_{seconds:g}s.mp4"
    mode = "video" if pose is not None else "still"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # see _one_thread
    proc = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(weights), str(photo), str(audio),
                           str(pose) if pose else "-", str(out), mode], capture_output=True, text=True, check=True,
                          env=env)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["frames"] == num_video_frames(t.size)
    out.unlink()
    return result


def test_peak_memory_does_not_grow_with_length(assets: dict, tmp_path: Path) -> None:
    # 6 s already fills every buffer whose size is capped (the 5 s mel chunk); the slow test goes to 3 min
    short = peak_rss(assets["tiny"], assets["photo_path"], 6, tmp_path)
    long = peak_rss(assets["tiny"], assets["photo_path"], 36, tmp_path)
    print(f"peak RSS tiny/still: 6 s {short['peak_mb']:.0f} MB, 36 s {long['peak_mb']:.0f} MB")
    # 30 s more audio is 2 MB of float32 waveform (+ the writer's copy) and 0.4 MB of mel
    assert long["peak_mb"] - short["peak_mb"] < 20


@pytest.mark.slow
@pytest.mark.parametrize("weights", ["tiny", "small"])
def test_peak_memory_three_minutes(weights: str, assets: dict, tmp_path: Path) -> None:
    short = peak_rss(assets[weights], assets["photo_path"], 10, tmp_path, pose=assets["pose_path"])
    long = peak_rss(assets[weights], assets["photo_path"], 180, tmp_path, pose=assets["pose_path"])
    print(f"peak RSS {weights}/video: 10 s {short['peak_mb']:.0f} MB, 3 min {long['peak_mb']:.0f} MB "
          f"({long['fps']:.0f} frames/s)")
    assert long["peak_mb"] - short["peak_mb"] < 60


def test_batch_bounds_cover_every_frame_once_with_a_single_first_frame():
    assert batch_bounds(0, 8) == []
    assert batch_bounds(1, 8) == [(0, 1)]
    assert batch_bounds(10, 4) == [(0, 1), (1, 5), (5, 9), (9, 10)]
    for n in range(30):
        frames = [f for a, b in batch_bounds(n, 8) for f in range(a, b)]
        assert frames == list(range(n))


def test_bf16_close_to_fp32_and_unknown_precision_refused(assets: dict, tmp_path: Path) -> None:
    pipe = TalkingFacePipeline.from_pretrained(assets["vivid"], device="cpu")
    audio = assets["speech"][: SR // 2]
    a = pipe.generate(assets["photo"], audio, output=tmp_path / "a.mp4", noise="const")
    b = pipe.generate(assets["photo"], audio, output=tmp_path / "b.mp4", noise="const", precision="bf16")
    assert a.first_frame_s <= a.elapsed
    fa, fb = (_frames(r.output).astype(np.float32) for r in (a, b))
    diff = np.abs(fa - fb).mean()
    print("mean |fp32 - bf16| in 8-bit levels:", diff)
    assert 0 < diff < 3  # rounding-level, not a different picture
    with pytest.raises(InputError, match="unknown precision 'fp16'"):
        pipe.generate(assets["photo"], audio, output=tmp_path / "c.mp4", precision="fp16")
    assert not (tmp_path / "c.mp4").exists()


# ----------------------------------------------------------------- batch-size and thread invariance
class _Recorder:
    """Keeps every frame handed to the writer (exact, before H.264)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.frames: list[np.ndarray] = []
        real = pipeline_mod.VideoWriter
        rec = self

        class Writer(real):  # type: ignore[misc, valid-type]
            def write(self, frames: np.ndarray) -> None:
                rec.frames.append(np.array(frames))
                super().write(frames)

        monkeypatch.setattr(pipeline_mod, "VideoWriter", Writer)

    def take(self) -> np.ndarray:
        out, self.frames = np.concatenate(self.frames), []
        return out.astype(np.int16)


@pytest.mark.parametrize("noise", ["random", "none"])
def test_same_frames_for_every_batch_size(noise: str, assets: dict, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # vivid: noise and pose visibly change the picture. 36 frames of a 20-frame pose video: it loops back
    # from frame 20 on. Before: random noise was drawn per batch (frames differed from frame 1 on) and the
    # pose codes were encoded in the caller's batches.
    rec = _Recorder(monkeypatch)
    pipe = TalkingFacePipeline.from_pretrained(assets["vivid"], device="cpu")
    audio = assets["speech"][: 36 * SR // 25]
    videos = {}
    for bs, threads in ((1, 1), (8, 1), (3, 2)):
        torch.set_num_threads(threads)  # restored by _one_thread
        pipe.generate(assets["photo"], audio, pose=assets["pose_frames"], output=tmp_path / f"b{bs}.mp4",
                      batch_size=bs, noise=noise, seed=5, pose_landmarks=_POSE_LANDMARKS(assets))
        videos[bs if threads == 1 else f"{bs} on {threads} threads"] = rec.take()
    ref = videos.pop(1)
    assert ref.shape[0] == 36
    for name, v in videos.items():
        d = np.abs(v - ref)
        print(f"noise {noise}, batch {name} vs 1: max |diff| {d.max()}, {int((d > 0).sum())} of {d.size} values")
        # Tolerance: one 8-bit level on a few values. A batched matrix product sums in another order for
        # another batch composition (~1e-7 relative), which flips the rounding of a pixel now and then.
        assert d.max() <= 1 and (d > 0).mean() < 1e-3, name


_LANDMARK_CACHE: dict[int, list[np.ndarray]] = {}


def _POSE_LANDMARKS(assets: dict) -> list[np.ndarray]:  # noqa: N802 - a cached constant
    """The pose frames' landmarks, detected once (tracking is not what these tests are about)."""
    key = id(assets["pose_frames"])
    if key not in _LANDMARK_CACHE:
        _LANDMARK_CACHE[key] = [landmarks68(f) for f in assets["pose_frames"]]
    return _LANDMARK_CACHE[key]


def test_streamed_pose_codes_do_not_depend_on_the_request_pattern() -> None:
    def crops(n: int):
        for k in range(n):
            yield np.full((4, 4, 3), k, np.uint8)

    def encode(batch: np.ndarray) -> torch.Tensor:  # rounds differently per batch size, like a real encoder
        return torch.from_numpy(batch[:, 0, 0, :1].astype(np.float32)) + 1e-3 * len(batch)

    def codes(step: int, n: int = 11, total: int = 30) -> torch.Tensor:
        pose = StreamedPose(crops(n), encode)
        return torch.cat([pose.codes(s, min(s + step, total)) for s in range(0, total, step)])

    ref = codes(1)
    for step in (2, 3, 8, 30):
        assert torch.equal(codes(step), ref), step
    assert torch.equal(ref[20], ref[0]) and torch.equal(ref[12], ref[8])  # the loop back reuses the codes


def test_noise_per_frame_generators_do_not_depend_on_chunking() -> None:
    torch.manual_seed(0)
    model = _vivid(PCAVS(preset("tiny"))).eval()
    with torch.inference_mode():
        ident = model.encode_identity(torch.rand(1, 3, 32, 32) * 2 - 1)
        mouth = torch.randn(6, model.cfg.mouth_dim)
        pose = torch.randn(6, model.cfg.mapping.pose_dim)
        gens = lambda a, b: pipeline_mod.frame_generators(7, a, b, torch.device("cpu"))  # noqa: E731
        whole = model.generate(ident, mouth, pose, generator=gens(0, 6))
        chunked = model.generate(ident, mouth, pose, generator=gens(0, 6), chunk=4)
        split = torch.cat([model.generate(ident, mouth[:2], pose[:2], generator=gens(0, 2)),
                           model.generate(ident, mouth[2:], pose[2:], generator=gens(2, 6))])
        other_seed = model.generate(ident, mouth, pose, generator=pipeline_mod.frame_generators(8, 0, 6, "cpu"))
    assert torch.allclose(whole, chunked, atol=1e-5) and torch.allclose(whole, split, atol=1e-5)
    assert not torch.allclose(whole, other_seed, atol=1e-3)


# -------------------------------------------------------------------- safety: weights, signals, faces
def test_non_finite_first_frame_is_refused(pipe: TalkingFacePipeline, assets: dict, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from pcavs.checkpoint import CheckpointError

    monkeypatch.setattr(pipe.model, "generate", lambda *a, **k: torch.full((1, 3, 64, 64), float("nan")))
    with pytest.raises(CheckpointError, match="NaN/inf values for the first frame, so the video would be black"):
        pipe.generate(assets["photo"], assets["speech"][:SR], output=tmp_path / "black.mp4")
    assert list(tmp_path.iterdir()) == []


def test_official_weights_with_inf_are_refused(tmp_path: Path) -> None:
    from pcavs.checkpoint import CheckpointError, load_strict

    net = torch.nn.Linear(3, 2)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["bias"][1] = float("inf")
    with pytest.raises(CheckpointError, match=r"latest_net_G\.pth: 1 tensor\(s\) of network G hold NaN or inf "
                                              r"values \(bias\); the file is corrupted: re-download it"):
        load_strict(net, state, "G", tmp_path / "latest_net_G.pth")


def test_overwrite_flag_replaces_an_existing_output(assets: dict, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    argv = _argv(assets, tmp_path, weights=assets["tiny"], audio=tmp_path / "a.wav")
    _write_wav(tmp_path / "a.wav", assets["speech"][: SR // 2])
    assert cli.run(_parse([*argv, "-y"])) == 0 and probe_output(out).stream("video").frames == 12


def test_several_faces_are_counted_and_chosen(assets: dict, tmp_path: Path) -> None:
    photo = assets["photo"]
    small = np.asarray(Image.fromarray(photo).resize((384, 384)))
    two = np.full((512, 900, 3), 200, np.uint8)
    two[:, :512] = photo
    two[64:448, 512:896] = small
    with pytest.warns(pipeline_mod.InputWarning, match=r"the identity photo array: 2 faces found; using face 0 "
                                                       r"\(the largest, \d+x\d+ px at x=\d+, y=\d+\); choose another "
                                                       r"with --face-index K"):
        first = prepare_inputs(two, assets["speech"][:SR])
    with pytest.warns(pipeline_mod.InputWarning, match=r"using face 1 \(number 1 by size, 0 = largest"):
        second = prepare_inputs(two, assets["speech"][:SR], face_index=1)
    assert first.landmarks[:, 0].mean() < 512 < second.landmarks[:, 0].mean()


_SIGNAL_SCRIPT = r"""
import sys
from pcavs.infer.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(("sig", "status", "line"), [("SIGINT", 130, "interrupted (Ctrl-C)"),
                                                      ("SIGTERM", 143, "terminated (SIGTERM)")])
def test_signal_mid_generation_leaves_nothing(sig: str, status: int, line: str, assets: dict, tmp_path: Path
                                              ) -> None:
    import signal

    t = np.arange(60 * SR) / SR  # a minute of sound: generation runs long enough to be interrupted
    _write_wav(tmp_path / "long.wav", (0.1 * np.sin(2 * np.pi * 140 * t)).astype(np.float32))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", _SIGNAL_SCRIPT, *_argv(assets, work, audio=tmp_path / "long.wav",
                                                                            weights=assets["small"])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            # a test run started in the background inherits an ignored SIGINT (shell job
                            # control), and Python then installs no Ctrl-C handler: restore the default
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not (work / ".out.mp4.partial").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (work / ".out.mp4.partial").exists(), "generation did not start writing"
    time.sleep(0.3)
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert err.strip().splitlines() == [f"{line}: stopped, no output written"], err
    assert list(work.iterdir()) == []  # neither the video nor its .partial


def test_output_keeps_the_speech_rate_and_channels(tmp_path: Path) -> None:
    """A 48 kHz stereo speech file comes out as 48 kHz stereo AAC; the model still reads 16 kHz mono."""
    import json

    from pcavs.infer import TalkingFacePipeline
    from pcavs.infer.demo import DEMO_WEIGHTS
    from pcavs.media import VideoWriter, probe_video, read_audio_native

    assets = DEMO_WEIGHTS.parents[1] / "demo"
    rate = 48000
    t = np.arange(rate) / rate
    sound = np.stack([0.3 * np.sin(2 * np.pi * 300 * t), 0.2 * np.sin(2 * np.pi * 500 * t)], 1).astype(np.float32)
    speech = tmp_path / "stereo.mkv"
    with VideoWriter(speech, audio=sound, sample_rate=rate, preset="ultrafast") as w:
        w.write(np.zeros((25, 16, 16, 3), np.uint8))
    lm = np.asarray(json.loads((assets / "landmarks.json").read_text())["identity"])
    out = tmp_path / "out.mp4"
    pipe = TalkingFacePipeline.from_pretrained(DEMO_WEIGHTS, device="cpu")
    result = pipe.generate(str(assets / "identity.png"), str(speech), output=out, identity_landmarks=lm)
    info = probe_video(out)
    assert result.num_frames == 25 and info.audio_sample_rate == 48000
    back, back_rate = read_audio_native(out)
    assert back_rate == 48000 and back.shape[1] == 2 and abs(len(back) - rate) < 2048
