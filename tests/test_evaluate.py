"""Tests for pcavs.eval.{evaluate,sync,syncnet,quality,report,benchmark,cli}: known answers, SyncNet
loading, CLI round trips.

Fixtures are made at test time: the astronaut photo (scikit-image) moved and rotated a little per frame
to make short "talking" videos, speech from espeak-ng (a voiced synthetic signal when it is missing),
random-weight ``tiny`` PC-AVS weights and a random-weight SyncNet file in the official layout (the real
``syncnet_v2.model`` is not available here). Face detection is HOG only, without upsampling, so
face-less frames stay cheap.

A different face for CSIM: scikit-image ships a single usable human face, and a flipped or recoloured
astronaut is still the same person to dlib (cosine ~0.98), so the second identity is a SynthTalk head
rendered by :mod:`pcavs.synth`, which dlib detects and describes as someone else (cosine ~0.88).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

pytest.importorskip("dlib")
skdata = pytest.importorskip("skimage.data")

from PIL import Image  # noqa: E402

from pcavs.checkpoint import save_weights  # noqa: E402
from pcavs.config import preset  # noqa: E402
from pcavs.eval import cli  # noqa: E402
from pcavs.eval.benchmark import read_list, resolve_entry, run_benchmark  # noqa: E402
from pcavs.eval.evaluate import (  # noqa: E402
    EvalOptions,
    EvaluationError,
    FaceTrack,
    VideoScores,
    evaluate_video,
    landmark_scores,
    pose_scores,
)
from pcavs.eval.pairs import load_pairs, resolve_pairs  # noqa: E402
from pcavs.eval.quality import Flag, ReportOptions, VideoAnalysis, analyze_video, quality_flags  # noqa: E402
from pcavs.eval.report import write_report  # noqa: E402
from pcavs.eval.sync import SyncResult, audio_features, contrastive_sync, sliding_sync  # noqa: E402
from pcavs.eval.syncnet import SyncNet, SyncNetError, load_syncnet, lse_from_features, mfcc  # noqa: E402
from pcavs.face import default_analyzer  # noqa: E402
from pcavs.media import VideoWriter, read_audio  # noqa: E402
from pcavs.model import PCAVS  # noqa: E402

SR = 16000
SPF = SR // 25  # audio samples per video frame
FACE_CENTRE = (225, 135)  # of the astronaut's face in the 512x512 photo


# ------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    # the tiny networks here gain nothing from threads, and on a busy 2-core machine torch's spinning
    # worker threads made them ~50x slower
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def analyzer():
    return default_analyzer().with_options(use_cnn=False, upsample_levels=0)


def _speech(path: Path, text: str) -> np.ndarray:
    if shutil.which("espeak-ng"):
        subprocess.run(["espeak-ng", "-s", "170", "-w", str(path), text], check=True, capture_output=True)
        return read_audio(path)
    t = np.arange(int(2.2 * SR)) / SR  # fallback: 150 Hz harmonics under a 4 Hz syllable envelope
    x = (0.2 * sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20)) * np.clip(np.sin(8 * np.pi * t), 0, None))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return x.astype(np.float32)


def _talking_frames(photo: np.ndarray, n: int, phase: float = 0.0, size: int = 224) -> np.ndarray:
    """Crops of the photo that nod, sway and roll a little: a head-motion video with a real face."""
    out = []
    for k in range(n):
        a = 2 * np.pi * k / max(n, 2) + phase
        angle = 6 * np.sin(a)
        dx, dy = int(10 * np.sin(2 * a)), int(6 * np.cos(a))
        rot = np.asarray(Image.fromarray(photo).rotate(angle, center=FACE_CENTRE, resample=Image.BILINEAR))
        out.append(rot[25 + dy : 25 + dy + size, 113 + dx : 113 + dx + size])
    return np.stack(out)


def _write(path: Path, frames: np.ndarray, audio: np.ndarray | None = None) -> Path:
    with VideoWriter(path, audio=audio) as w:
        w.write(frames)
    return path


def _blur(frames: np.ndarray, sigma: float) -> np.ndarray:
    if sigma == 0:
        return frames
    x = ndi.gaussian_filter(frames.astype(np.float64), (0, sigma, sigma, 0))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


_PROJ = torch.from_numpy(np.random.default_rng(0).normal(size=(80 * 20, 48))).float()


def _fake_encode(windows: torch.Tensor) -> torch.Tensor:
    """Deterministic stand-in for the audio encoder: a fixed random projection of the mel window."""
    return windows.flatten(1) @ _PROJ


class OracleSync:
    """A sync model whose 'visual' feature of frame t is the audio feature of the true (unshifted) speech."""

    def __init__(self, clean_wave: np.ndarray, num_frames: int) -> None:
        self.table = audio_features(_fake_encode, clean_wave, num_frames)
        self.pos = 0

    def audio_features(self, wave_: np.ndarray, num_frames: int) -> np.ndarray:
        return audio_features(_fake_encode, wave_, num_frames)

    def visual_features(self, crops: np.ndarray) -> np.ndarray:
        out = self.table[self.pos : self.pos + len(crops)]
        self.pos += len(crops)
        return out


def _delay(x: np.ndarray, frames: int) -> np.ndarray:
    """The same speech ``frames`` video frames later (or earlier, for negative values), same length."""
    if frames >= 0:
        return np.concatenate([np.zeros(frames * SPF, np.float32), x])[: x.size]
    return np.concatenate([x[-frames * SPF :], np.zeros(-frames * SPF, np.float32)])


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("eval_assets")
    photo = skdata.astronaut()
    Image.fromarray(photo).save(root / "photo.png")
    speech = _speech(root / "speech.wav", "Hello, this face talks about evaluation.")
    n = 20
    real = _talking_frames(photo, n)
    gen = _talking_frames(photo, n, phase=0.15)  # the same person, moving slightly differently
    torch.manual_seed(0)
    tiny = save_weights(PCAVS(preset("tiny")), root / "tiny")
    torch.manual_seed(0)
    syncnet_file = root / "syncnet_random.model"
    net = SyncNet()
    # the released file predates BatchNorm's num_batches_tracked counters: save without them
    torch.save({k: v for k, v in net.state_dict().items() if "num_batches" not in k}, syncnet_file)
    return {
        "root": root, "photo": photo, "photo_path": root / "photo.png", "speech": speech, "n": n,
        "real_frames": real, "real": _write(root / "real.mp4", real, speech[: n * SPF]),
        "gen": _write(root / "gen.mp4", gen, speech[: n * SPF]), "tiny": tiny, "syncnet": syncnet_file,
    }


@pytest.fixture(scope="module")
def self_scores(assets: dict, analyzer) -> VideoScores:
    return evaluate_video(assets["real"], assets["real"], identity=assets["photo_path"],
                          options=EvalOptions(embedding_stride=4), analyzer=analyzer)


# ------------------------------------------------------------------------------------- known answers
def test_video_against_itself(self_scores: VideoScores, assets: dict) -> None:
    s = self_scores
    assert s.frames_generated == s.frames_reference == s.frames_compared == assets["n"]
    assert s.faces_generated == s.faces_reference == assets["n"]
    assert s.ssim == pytest.approx(1.0, abs=1e-12)
    assert s.psnr == 100.0  # identical frames: inf per frame, capped so the JSON stays valid
    assert s.lmd_mouth == 0.0 and s.lmd_face == 0.0
    assert s.pose_error == 0.0
    assert s.csim > 0.95  # the photo's own face
    assert 0.0 < s.cpbd < 1.0
    assert s.sync_offset is None and s.lse_d is None  # no weights, no SyncNet
    d = s.to_dict()
    json.dumps(d, allow_nan=False)


def test_sync_offset_machinery_finds_the_shift(assets: dict) -> None:
    """Audio delayed by k frames against 'visual' features built from the clean audio: offset k."""
    clean = assets["speech"][: 60 * SPF]
    visual = audio_features(_fake_encode, clean, 60)
    for k in (-4, 0, 3, 7):
        res = contrastive_sync(audio_features(_fake_encode, _delay(clean, k), 60), visual, max_shift=15)
        assert res.offset == k, (k, res.scores)
        assert res.confidence > 0.05
        assert res.scores.shape == (31,) and res.shifts[np.argmax(res.scores)] == k
    slide = sliding_sync(audio_features(_fake_encode, _delay(clean, 3), 60), visual, window=25)
    assert slide.offsets.shape == (36,) and slide.centres[0] == 12.0
    assert np.mean(slide.offsets == 3) > 0.8  # silent stretches may be ambiguous, speech is not


def test_blur_lowers_cpbd_monotonically(assets: dict, analyzer) -> None:
    crops = assets["real_frames"][:3]
    values = []
    for sigma in (0.0, 1.0, 2.0, 3.0):
        s = evaluate_video(_blur(crops, sigma), options=EvalOptions(embeddings=False), analyzer=analyzer)
        values.append(s.cpbd)
    assert all(a > b for a, b in zip(values, values[1:], strict=False)), values


def _track(landmarks: np.ndarray, matrix: np.ndarray | None = None) -> FaceTrack:
    t = len(landmarks)
    m = np.repeat((np.eye(3)[:2] if matrix is None else matrix)[None], t, axis=0)
    return FaceTrack("synthetic", t, (224, 224), True, np.ones(t, bool), landmarks, m)


def test_lmd_and_pose_known_answers(analyzer) -> None:
    face = analyzer.landmarks(skdata.astronaut())
    real = np.repeat(face[None], 4, axis=0)
    gen = real.copy()
    mouth = gen[:, 48:68]
    centre = mouth.mean(axis=1, keepdims=True)
    gen[:, 48:68] = centre + 1.1 * (mouth - centre)  # mouth 10 % larger about its centre
    expected = 0.1 * np.linalg.norm(real[0, 48:68] - real[0, 48:68].mean(0), axis=1).mean()
    # the generated crop is also shifted by (5, -3) px: translation must not count
    shift = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, -3.0]])
    sc = landmark_scores(_track(gen, shift), _track(real))
    assert sc["lmd_mouth"] == pytest.approx(expected, rel=1e-9)
    assert sc["lmd_face"] == pytest.approx(expected * 20 / 68, rel=1e-9)
    # a face rotated in the image by 4 degrees per frame more than the other: roll error 4 * mean(k)
    def rolled(deg: float) -> np.ndarray:
        c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
        ctr = face.mean(0)
        return (face - ctr) @ np.array([[c, s], [-s, c]]) + ctr

    a = _track(np.stack([rolled(0.0) for k in range(3)]))
    b = _track(np.stack([rolled(4.0 * k) for k in range(3)]))
    ps = pose_scores(b, a)
    # both clips are aligned by their own average: b's frames roll -4, 0, +4 about it
    assert ps["pose_error_roll"] == pytest.approx(8.0 / 3.0, abs=0.05)
    assert ps["pose_error_yaw"] < 0.2 and ps["pose_error_pitch"] < 0.2


def test_another_face_lowers_csim(self_scores: VideoScores, assets: dict, analyzer) -> None:
    from pcavs.synth import Renderer, sample_identity

    r = Renderer(sample_identity(1), 224)
    other = np.stack([np.asarray(r.render_frame({"yaw": y, "pitch": 0.0, "roll": 0.0})[0]) for y in (-4.0, 4.0)])
    s = evaluate_video(other, identity=assets["photo_path"], analyzer=analyzer)
    assert s.faces_generated == 2
    assert s.csim < self_scores.csim - 0.05, (s.csim, self_scores.csim)
    assert s.csim < ReportOptions().identity_threshold


# ------------------------------------------------------------------------------------- SyncNet
def test_syncnet_strict_load_and_shapes(assets: dict, tmp_path: Path) -> None:
    net = load_syncnet(assets["syncnet"])
    with torch.no_grad():
        assert net.forward_aud(torch.randn(3, 1, 13, 20)).shape == (3, 1024)
        assert net.forward_lip(torch.rand(1, 3, 5, 224, 224) * 255).shape == (1, 1024)
    state = torch.load(assets["syncnet"], weights_only=True)
    assert "netcnnlip.18.weight" in state and tuple(state["netcnnaud.18.weight"].shape) == (512, 256, 5, 4)
    # the same weights load with a DataParallel prefix, and give the same outputs
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "prefixed.model")
    x = torch.randn(2, 1, 13, 20)
    with torch.no_grad():
        assert torch.equal(load_syncnet(tmp_path / "prefixed.model").forward_aud(x), net.forward_aud(x))
    bad = {
        "missing": {k: v for k, v in state.items() if k != "netfclip.3.bias"},
        "extra": {**state, "netfcaud.9.weight": torch.zeros(2)},
        "shape": {**state, "netfcaud.3.weight": torch.zeros(512, 512)},
    }
    for name, sd in bad.items():
        torch.save(sd, tmp_path / f"{name}.model")
        with pytest.raises(SyncNetError, match=f"{name}.model"):
            load_syncnet(tmp_path / f"{name}.model")
    (tmp_path / "junk.model").write_bytes(b"not a checkpoint")
    with pytest.raises(SyncNetError, match="junk.model.*re-download"):
        load_syncnet(tmp_path / "junk.model")
    with pytest.raises(SyncNetError, match="download_model.sh"):
        load_syncnet(tmp_path / "absent.model")


def test_mfcc_matches_python_speech_features() -> None:
    t = np.arange(1600) / SR
    x = np.rint(32767 * (0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1000 * t))).astype(np.int16)
    m = mfcc(x)
    assert m.shape == (9, 13)
    # pinned from python_speech_features 0.6: mfcc(x, 16000), row 3
    pinned = [19.276123714411, 21.207620104661, -5.290003421716, -17.187933418487, -4.237256536774,
              15.014785931478, 13.144173255308, -16.36053085012, -45.974225569913, -48.857651665568,
              -25.157006661429, -2.537354539141, -0.725300373406]
    np.testing.assert_allclose(m[3], pinned, rtol=1e-10)
    try:
        import python_speech_features as psf
    except ImportError:
        return
    for n in (300, 401, 16123):
        y = (np.random.default_rng(n).normal(size=n) * 3000).astype(np.int16)
        np.testing.assert_allclose(mfcc(y), psf.mfcc(y, SR), rtol=1e-12, atol=1e-9)


def test_lse_from_features_official_conventions() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(40, 16))
    v = np.vstack([a[2:], rng.normal(size=(2, 16))])  # video feature i matches audio feature i + 2
    res = lse_from_features(v, a, vshift=15)
    assert res.av_offset == -2  # SyncNet's sign: vshift - argmin
    assert res.mean_dists.shape == (31,) and res.lse_d == res.mean_dists.min()
    assert res.lse_c == pytest.approx(np.median(res.mean_dists) - res.lse_d) and res.lse_c > 1.0
    assert res.frame_conf.shape == (40,)


# ------------------------------------------------------------------------------------- flags
def _analysis(t: int = 60) -> VideoAnalysis:
    return VideoAnalysis(
        video="clip.mp4", fps=25, num_frames=t, frame_size=(224, 224), face_found=np.ones(t, bool),
        identity_similarity=np.full(t, 0.98), identity_reference="the identity photo",
        sharpness=np.full(t, 100.0), cpbd=np.full(t, 0.3),
    )


def test_quality_flags_plain_language() -> None:
    a = _analysis()
    assert [f.kind for f in quality_flags(a)] == ["sync_unmeasured", "all_good"]
    a.face_found[10:13] = False
    a.identity_similarity[40:56] = 0.55
    a.sharpness[20:26] = 20.0
    a.sync = SyncResult(3, 0.3, np.zeros(31), 15)
    msgs = {f.kind: f for f in quality_flags(a)}
    assert msgs["no_face"].message.startswith("no face found in frames 10-12 (0.40-0.52 s)")
    assert msgs["no_face"].frames == [(10, 12)]
    assert msgs["sync_offset"].message.startswith(
        "audio and video are out of sync by 3 frames (120 ms): the picture leads the sound")
    assert "identity similarity drops below 0.9 in frames 40-55" in msgs["identity"].message
    assert msgs["blur"].message.startswith("frames 20-25 (0.80-1.04 s) are much blurrier than the rest")
    a.sync = SyncResult(-1, 0.3, np.zeros(31), 15)
    assert "by 1 frame (40 ms): the sound leads the picture" in quality_flags(a)[1].message or any(
        "by 1 frame (40 ms): the sound leads the picture" in f.message for f in quality_flags(a))
    a.sync = SyncResult(-1, 0.01, np.zeros(31), 15)
    assert any(f.kind == "weak_sync" for f in quality_flags(a))
    assert all(isinstance(f, Flag) for f in quality_flags(a))


def test_report_with_oracle_sync(assets: dict, analyzer, tmp_path: Path) -> None:
    """A 3-frame audio delay, black frames and a blurry stretch are all found, with their frame numbers."""
    n = 30
    frames = _talking_frames(assets["photo"], n)
    frames[8:11] = 0
    frames[20:24] = _blur(frames[20:24], 2.0)
    clean = assets["speech"][: n * SPF]
    video = _write(tmp_path / "problems.mp4", frames, _delay(clean, 3))
    a = analyze_video(video, sync=OracleSync(clean, n), options=EvalOptions(embedding_stride=3), analyzer=analyzer)
    flags = {f.kind: f for f in quality_flags(a)}
    assert flags["no_face"].frames == [(8, 10)]
    assert flags["sync_offset"].message.startswith("audio and video are out of sync by 3 frames (120 ms): "
                                                   "the picture leads the sound")
    assert flags["blur"].frames == [(20, 23)]
    page = write_report(a, tmp_path / "report")
    files = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"index.html", "report.json", "faces.png", "sync.png", "sync_offset.png", "identity.png",
            "sharpness.png"} <= files
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert data["sync"]["offset"] == 3 and len(data["per_frame"]["face_found"]) == n
    assert "out of sync by 3 frames" in page.read_text()


# ------------------------------------------------------------------------------------- command line
def _parse(add, argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add(p)
    return p.parse_args(argv)


def test_cli_evaluate_round_trip(assets: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scores.json"
    args = _parse(cli.add_evaluate_arguments, [
        str(assets["gen"]), "--reference", str(assets["real"]), "--identity", str(assets["photo_path"]),
        "--weights", str(assets["tiny"]), "--syncnet", str(assets["syncnet"]), "--json", str(out),
        "--embedding-stride", "5", "--device", "cpu"])
    assert cli.run_evaluate(args) == 0
    printed = capsys.readouterr().out
    assert "SSIM" in printed and "LSE-C" in printed and "gen.mp4" in printed
    data = json.loads(out.read_text())
    video = data["videos"][0]
    assert set(VideoScores("x").to_dict()) == set(video)
    for key in ("ssim", "psnr", "cpbd", "lmd_mouth", "lmd_face", "csim", "pose_error",
                "sync_confidence", "lse_d", "lse_c", "syncnet_offset"):
        assert video[key] is not None, key
    # non-official weights: the SynthTalk sync expert measures sync; an offset only when it is reliable
    assert video["sync_expert"] == "synthtalk-sync"
    assert (video["sync_offset"] is not None) == video["sync_reliable"]
    assert 0.3 < video["ssim"] < 1.0 and (video["sync_offset"] is None or abs(video["sync_offset"]) <= 15)
    assert data["summary"]["videos"] == 1 and data["summary"]["failed"] == 0
    # a missing input: one error line naming the file, status 2
    args = _parse(cli.add_evaluate_arguments, [str(tmp_path / "nope.mp4"), "--reference", str(assets["real"])])
    assert cli.run_evaluate(args) == 2
    assert "nope.mp4" in capsys.readouterr().err


def test_cli_report_flags_missing_faces(assets: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames = _talking_frames(assets["photo"], 16)
    frames[6:9] = 0
    video = _write(tmp_path / "gaps.mp4", frames, assets["speech"][: 16 * SPF])
    args = _parse(cli.add_report_arguments, [str(video), "-o", str(tmp_path / "rep"), "--embedding-stride", "4"])
    assert cli.run_report(args) == 0
    assert "no face found in frames 6-8 (0.24-0.36 s)" in capsys.readouterr().out
    rep = tmp_path / "rep"
    assert (rep / "index.html").is_file() and (rep / "faces.png").is_file() and (rep / "frames").is_dir()
    data = json.loads((rep / "report.json").read_text())
    no_face = [f for f in data["flags"] if f["kind"] == "no_face"]
    assert no_face[0]["frames"] == [[6, 8]]
    assert data["per_frame"]["face_found"][5:10] == [True, False, False, False, True]


def test_benchmark_vox2_layout(assets: dict, tmp_path: Path, analyzer) -> None:
    root = tmp_path / "vox2"
    for i, phase in enumerate((0.0, 0.4)):
        d = root / "mp4" / f"id0000{i + 1}" / "abcDEF"
        d.mkdir(parents=True)
        _write(d / "00001.mp4", _talking_frames(assets["photo"], 10, phase), assets["speech"][: 10 * SPF])
    lst = tmp_path / "test.txt"
    lst.write_text("# VoxCeleb2 test list\nid00001/abcDEF/00001\nmp4/id00002/abcDEF/00001.mp4 extra-column\n")
    assert read_list(lst) == ["id00001/abcDEF/00001", "mp4/id00002/abcDEF/00001.mp4"]
    res = run_benchmark("vox2", root, lst, assets["tiny"], tmp_path / "out", device="cpu",
                        options=EvalOptions(embedding_stride=5), analyzer=analyzer, progress=lambda m: None)
    assert len(res.scores) == 2 and res.summary["failed"] == 0
    assert sorted(p.name for p in (tmp_path / "out" / "generated").iterdir()) == [
        "id00001__abcDEF__00001.mp4", "mp4__id00002__abcDEF__00001.mp4"]
    data = json.loads(res.json_path.read_text())
    assert data["summary"]["counts"]["ssim"] == 2 and data["summary"]["mean"]["ssim"] is not None
    assert data["summary"]["counts"]["sync_confidence"] == 2
    assert all(v["frames_generated"] == 10 and v["error"] is None for v in data["videos"])
    assert "mean" in (tmp_path / "out" / "results.txt").read_text()
    with pytest.raises(EvaluationError, match="id09999.*tried"):
        resolve_entry(root, "vox2", "id09999/x/00001")


# ------------------------------------------------------------------------------------- inputs
def test_pair_lists_and_folders(tmp_path: Path) -> None:
    for name in ("gen/a.mp4", "gen/b.mp4", "ref/a.mp4", "ref/b.mov", "ids/a.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    pairs = resolve_pairs(tmp_path / "gen", tmp_path / "ref")
    assert [(p.generated.name, p.reference.name) for p in pairs] == [("a.mp4", "a.mp4"), ("b.mp4", "b.mov")]
    with pytest.raises(EvaluationError, match="no identity photo named b"):
        resolve_pairs(tmp_path / "gen", tmp_path / "ref", identity=tmp_path / "ids")
    (tmp_path / "pairs.csv").write_text("generated,reference,pose_source\ngen/a.mp4,ref/a.mp4,\n")
    (p,) = load_pairs(tmp_path / "pairs.csv")
    assert p.generated == tmp_path / "gen/a.mp4" and p.reference == tmp_path / "ref/a.mp4" and p.pose_source is None
    (tmp_path / "pairs.json").write_text(json.dumps([{"generated": "gen/b.mp4", "identity": "ids/a.png"}]))
    assert load_pairs(tmp_path / "pairs.json")[0].identity == tmp_path / "ids/a.png"
    (tmp_path / "bad.csv").write_text("gen/a.mp4,ref/a.mp4\n")
    with pytest.raises(EvaluationError, match="bad.csv.*header"):
        load_pairs(tmp_path / "bad.csv")
    (tmp_path / "odd.csv").write_text("generated,speaker\ngen/a.mp4,x\n")
    with pytest.raises(EvaluationError, match="unknown column.*speaker"):
        load_pairs(tmp_path / "odd.csv")


# ------------------------------------------------------------------ aligned crops: one rule for both
def _faceless_square(path: Path, n: int = 10, size: int = 64) -> Path:
    """A square video with no face in it (as the built-in model's 64x64 crops can be to a detector)."""
    rng = np.random.default_rng(0)
    base = ndi.gaussian_filter(rng.uniform(0, 255, (size, size, 3)), (6, 6, 0))
    frames = np.stack([np.roll(base, k, axis=1) for k in range(n)]).clip(0, 255).astype(np.uint8)
    return _write(path, frames)


def test_report_and_evaluate_share_the_crop_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from pcavs.eval.tracking import frames_are_crops, track_video
    from pcavs.face import FaceAnalyzer

    assert frames_are_crops(None, (64, 64), 0) and not frames_are_crops(None, (64, 64), 3)
    assert not frames_are_crops(None, (360, 640), 0) and frames_are_crops(True, (360, 640), 0)
    assert not frames_are_crops(False, (64, 64), 0)
    video = _faceless_square(tmp_path / "crops.mp4")
    assert track_video(video).taken_as_crops  # evaluate's pass 1
    args = _parse(cli.add_report_arguments, [str(video), "-o", str(tmp_path / "rep")])
    assert cli.run_report(args) == 0
    out = capsys.readouterr().out
    assert "no face found" not in out and "taken as aligned face crops" in out
    # --aligned: no detection at all; landmarks from the crop's fixed face box, every frame counts
    def no_detection(*a, **k):
        raise AssertionError("--aligned must not search for a face")

    monkeypatch.setattr(FaceAnalyzer, "detect", no_detection)
    track = track_video(video, aligned=True)
    assert track.detected.all() and np.isfinite(track.landmarks).all() and track.frame_size == (224, 224)
    args = _parse(cli.add_report_arguments, [str(video), "-o", str(tmp_path / "rep2"), "--aligned"])
    assert cli.run_report(args) == 0
    out = capsys.readouterr().out
    assert "no face found" not in out
    data = json.loads((tmp_path / "rep2" / "report.json").read_text())
    assert all(data["per_frame"]["face_found"])
