"""Tests for pcavs.synth (SynthTalk procedural talking heads)."""

from __future__ import annotations

import dataclasses
import json

import av
import numpy as np
import pytest

from pcavs.synth import (
    LIMITS,
    FaceIdentity,
    MouthTrack,
    PoseTrack,
    Renderer,
    blink_track,
    mouth_track,
    render,
    render_iter,
    sample_identity,
    sample_pose,
)
from pcavs.synth.speech import SAMPLE_RATE, have_espeak, speech_clip, synthesize

needs_espeak = pytest.mark.skipif(not have_espeak(), reason="espeak-ng not installed (apt-get install espeak-ng)")

FRONT = {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}


def _vowels(seconds: float, segments: list[tuple[float, float, float]]) -> np.ndarray:
    """Harmonic 'vowel' bursts (start, end, gain) at the -20 dBFS speech level, silence elsewhere."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 30))
    voice = voice / np.sqrt(np.mean(voice**2)) * 0.1
    env = np.zeros_like(t)
    for a, b, g in segments:
        env[(t >= a) & (t < b)] = g
    return (voice * env).astype(np.float32)


def _light_face(seed: int = 2) -> FaceIdentity:
    """A light-skinned, beardless, natural-lipped face on a grey wall: clean pixel statistics."""
    return dataclasses.replace(sample_identity(seed), skin=(236, 196, 168), lip_color=(200, 120, 120), beard="none",
                               bg_top=(128, 128, 128), bg_bottom=(96, 96, 96), shirt=(40, 60, 160),
                               eye_color=(20, 210, 40))


# ---------------------------------------------------------------- identities
def test_identity_deterministic_and_json_roundtrip() -> None:
    a, b = sample_identity(17), sample_identity(17)
    assert a == b
    d = json.loads(json.dumps(a.to_dict()))
    assert FaceIdentity.from_dict(d) == a
    with pytest.raises(ValueError):
        sample_identity(-1)


def test_many_distinct_identities() -> None:
    ids = [sample_identity(s) for s in range(2000)]
    assert len(set(ids)) == 2000
    colours = {(i.skin, i.hair, i.eye_color, i.bg_top) for i in ids}
    assert len(colours) == 2000
    assert {i.hair_style for i in ids} >= {"short", "long", "bob", "buzz", "afro", "bald"}
    assert len({i.beard for i in ids}) == 4
    skins = np.array([i.skin for i in ids]).mean(axis=1)
    assert skins.max() - skins.min() > 120  # light to dark


def test_render_deterministic_and_identities_differ() -> None:
    f1, g1 = Renderer(sample_identity(3), 96).render_frame(FRONT, 0.4, 0.5, 0.0)
    f2, g2 = Renderer(sample_identity(3), 96).render_frame(FRONT, 0.4, 0.5, 0.0)
    assert f1.shape == (96, 96, 3) and f1.dtype == np.uint8
    assert np.array_equal(f1, f2) and g1 == g2
    others = [Renderer(sample_identity(s), 96).render_frame(FRONT, 0.4, 0.5, 0.0)[0] for s in (4, 5, 6)]
    for o in others:
        assert np.abs(o.astype(int) - f1).mean() > 12


# ---------------------------------------------------------------- pose
def test_pose_bounded_smooth_deterministic() -> None:
    for seed in range(40):
        p = sample_pose(seed, 300)
        for f, lim in LIMITS.items():
            v = getattr(p, f) - (1.0 if f == "scale" else 0.0)
            assert np.abs(v).max() <= lim + 1e-9, f
        for f in ("yaw", "pitch", "roll"):
            assert np.abs(np.diff(getattr(p, f))).max() < 6.1, f
        assert np.abs(np.diff(p.tx)).max() < 0.01
    a, b = sample_pose(7, 50), sample_pose(7, 50)
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("yaw", "pitch", "roll", "tx", "ty", "scale"))
    assert np.abs(sample_pose(8, 50).yaw - a.yaw).max() > 1.0
    c = PoseTrack.from_dict(json.loads(json.dumps(a.to_dict())))
    assert np.allclose(c.yaw, a.yaw, atol=1e-4) and len(c) == 50


def test_yaw_moves_features_to_opposite_sides() -> None:
    r = Renderer(_light_face(), 128)
    side = {}
    for yaw in (25.0, -25.0):
        frame, gt = r.render_frame({"yaw": yaw, "pitch": 0.0, "roll": 0.0})
        x0, _, x1, _ = gt["head_box"]
        centre = 0.5 * (x0 + x1)
        lm = np.array(gt["landmarks"])
        nose = gt["nose_tip"][0] - centre
        eyes = np.mean(gt["eye_centers"], axis=0)[0] - centre
        # the rendered pupils/irises (green) move the same way as the landmarks
        f = frame.astype(int)
        green = (f[..., 1] - np.maximum(f[..., 0], f[..., 2])) > 60
        green[: int(gt["head_box"][1])] = False
        pix = np.nonzero(green)[1].mean() + 0.5 - centre
        side[yaw] = (nose, eyes, pix, lm[30, 0] - lm[27, 0])
    for k in range(4):
        assert side[25.0][k] > 1.0 and side[-25.0][k] < -1.0, (k, side)


# ---------------------------------------------------------------- mouth & blink
def test_mouth_closed_in_silence_open_in_speech() -> None:
    audio = _vowels(3.0, [(1.0, 2.0, 1.0)])
    mt = mouth_track(audio, 75)
    assert len(mt) == 75
    assert np.all(mt.open[:20] == 0.0) and np.all(mt.open[56:] == 0.0)
    assert mt.open[30:45].mean() > 0.3
    assert np.all(np.abs(np.diff(mt.open)) < 0.5)  # co-articulation smoothing
    assert np.allclose(mt.width[:20], 0.5)  # neutral lips at rest
    quiet = mouth_track(audio * 0.1, 75)
    assert quiet.open[30:45].mean() < mt.open[30:45].mean()
    assert np.array_equal(mouth_track(audio, 75).open, mt.open)


def test_blinks_are_short_and_seeded() -> None:
    b = blink_track(1000, seed=3)
    assert np.array_equal(b, blink_track(1000, seed=3)) and not np.array_equal(b, blink_track(1000, seed=4))
    on = b > 0
    starts = np.flatnonzero(on[1:] & ~on[:-1]) + 1
    ends = np.flatnonzero(on[:-1] & ~on[1:]) + 1
    assert 4 <= len(starts) <= 30
    lengths = ends[: len(starts)] - starts[: len(ends)]
    assert lengths.min() >= 2 and lengths.max() <= 4  # ~150 ms at 25 fps
    assert all(b[s:e].max() > 0.99 for s, e in zip(starts, ends, strict=False))


def test_mouth_dark_pixels_track_open_ground_truth() -> None:
    rng = np.random.default_rng(0)
    n = 48
    opens = np.clip(np.convolve(rng.uniform(0, 1.3, n + 4), np.ones(5) / 5, "valid"), 0, 1)
    mt = MouthTrack(opens, rng.uniform(0.2, 0.8, n), np.zeros(n))
    frames, gts = render(_light_face(), sample_pose(1, n, intensity=0.3), mt, 128)
    counts = []
    for f, g in zip(frames, gts, strict=True):
        x0, y0, x1, y1 = g["mouth_box"]
        sub = f[int(y0) - 2: int(np.ceil(y1)) + 2, int(x0) - 2: int(np.ceil(x1)) + 2].astype(float)
        counts.append(int(((sub @ [0.299, 0.587, 0.114]) < 50).sum()))
    gt_open = [g["mouth_open"] for g in gts]
    assert np.allclose(gt_open, opens)
    assert np.corrcoef(gt_open, counts)[0, 1] > 0.8


def test_eye_landmarks_match_rendered_irises() -> None:
    r = Renderer(_light_face(), 128)
    for pose in (FRONT, {"yaw": 15.0, "pitch": -8.0, "roll": 6.0}, {"yaw": -20.0, "pitch": 12.0, "roll": -10.0}):
        frame, gt = r.render_frame(pose, 0.2, 0.5, 0.0)
        f = frame.astype(float)
        for cx, cy in gt["eye_centers"]:
            x0, y0 = int(cx) - 8, int(cy) - 8
            win = f[y0: y0 + 17, x0: x0 + 17]
            w = np.clip((win[..., 1] - np.maximum(win[..., 0], win[..., 2]) - 20) / 80, 0, 1)
            ys, xs = np.mgrid[0:17, 0:17]
            c = np.array([(w * xs).sum() / w.sum() + x0 + 0.5, (w * ys).sum() / w.sum() + y0 + 0.5])
            assert np.hypot(*(c - [cx, cy])) < 1.5, (pose, c, (cx, cy))


def test_render_iter_matches_render_and_gt_is_json() -> None:
    ident, pose = sample_identity(9), sample_pose(9, 6)
    audio = _vowels(6 / 25, [(0.0, 0.24, 1.0)])
    frames, gts = render(ident, pose, audio, 64, blink_seed=2)
    streamed = list(render_iter(ident, pose, audio, 64, blink_seed=2))
    assert frames.shape == (6, 64, 64, 3)
    assert all(np.array_equal(f, s[0]) for f, s in zip(frames, streamed, strict=True))
    g = json.loads(json.dumps(gts[3]))
    assert len(g["landmarks"]) == 68 and len(g["landmarks_visible"]) == 68 and g["frame"] == 3
    for key in ("yaw", "pitch", "roll", "tx", "ty", "scale", "mouth_open", "mouth_width", "blink", "eye_centers",
                "mouth_center", "mouth_corners", "mouth_box"):
        assert key in g
    with pytest.raises(ValueError):
        render(ident, sample_pose(1, 10), MouthTrack.closed(5), 64)


# ---------------------------------------------------------------- speech & dataset
@needs_espeak
def test_espeak_speech_is_real_16k_audio() -> None:
    x = synthesize("hello world, this is a test")
    assert x.dtype == np.float32 and x.ndim == 1
    assert 0.5 * SAMPLE_RATE < len(x) < 4 * SAMPLE_RATE
    assert np.sqrt(np.mean(x**2)) > 0.01
    a, meta = speech_clip(4, 2.0)
    b, _ = speech_clip(4, 2.0)
    assert len(a) == 2 * SAMPLE_RATE and np.array_equal(a, b) and meta["lines"]
    mt = mouth_track(a, 50)
    assert mt.open.max() > 0.3


@needs_espeak
def test_write_dataset_layout_mp4_json_resume(tmp_path) -> None:
    from pcavs.synth.cli import main

    args = [str(tmp_path), "--identities", "1", "--clips", "1", "--seconds", "1", "--size", "64", "--seed", "3"]
    assert main(args) == 0
    mp4s = sorted(tmp_path.glob("id*/*/*.mp4"))
    assert len(mp4s) == 1 and mp4s[0].parent.parent.name == "id00000" and mp4s[0].name == "00001.mp4"
    assert len(mp4s[0].parent.name) == 11
    with av.open(str(mp4s[0])) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.audio[0].rate == 16000
        assert sum(1 for _ in c.decode(video=0)) == 25
    meta = json.loads(mp4s[0].with_suffix(".json").read_text())
    assert meta["num_frames"] == 25 and len(meta["frames"]) == 25 and meta["sample_rate"] == 16000
    assert not list(tmp_path.rglob("*.tmp"))
    before = mp4s[0].stat().st_mtime_ns
    assert main(args) == 0  # resumes: nothing to do
    assert mp4s[0].stat().st_mtime_ns == before
    # byte-identical on a fresh run (x264 mb-tree, which read uninitialised memory, is off)
    again = tmp_path / "again"
    assert main([str(again), *args[1:]]) == 0
    twin = again / mp4s[0].relative_to(tmp_path)
    assert twin.read_bytes() == mp4s[0].read_bytes()
    assert twin.with_suffix(".json").read_bytes() == mp4s[0].with_suffix(".json").read_bytes()


@needs_espeak
def test_pose_twins_share_motion_mouth_and_audio_not_the_face(tmp_path) -> None:
    from pcavs.synth.cli import main

    opts = ["--identities", "1", "--clips", "2", "--seconds", "1", "--size", "64", "--seed", "3"]
    assert main([str(tmp_path / "data"), *opts]) == 0
    assert main([str(tmp_path / "twins"), *opts, "--pose-twins"]) == 0
    clips = sorted((tmp_path / "data").glob("id*/*/*.json"))
    assert [c.relative_to(tmp_path / "data") for c in clips] == [
        c.relative_to(tmp_path / "twins") for c in sorted((tmp_path / "twins").glob("id*/*/*.json"))]
    looks = set()
    for c in clips:
        twin = tmp_path / "twins" / c.relative_to(tmp_path / "data")
        a, b = json.loads(c.read_text()), json.loads(twin.read_text())
        assert not a["spec"]["twin"] and b["spec"]["twin"]
        for fa, fb in zip(a["frames"], b["frames"], strict=True):
            for k in ("yaw", "pitch", "roll", "tx", "ty", "scale", "mouth_open", "mouth_width", "blink"):
                assert fa[k] == fb[k], k
        assert a["speech"] == b["speech"]
        assert a["identity"] != b["identity"]
        looks.add(json.dumps(b["identity"], sort_keys=True))
        lm_a, lm_b = np.array([f["landmarks"] for f in a["frames"]]), np.array([f["landmarks"] for f in b["frames"]])
        assert np.abs(lm_a - lm_b).mean() > 0.5  # another face shape, not a recoloured copy
    assert len(looks) == 2  # every clip gets its own twin
    with av.open(str(clips[0].with_suffix(".mp4"))) as ca, \
            av.open(str(tmp_path / "twins" / clips[0].relative_to(tmp_path / "data").with_suffix(".mp4"))) as cb:
        pa = np.concatenate([f.to_ndarray().ravel() for f in ca.decode(audio=0)])
        pb = np.concatenate([f.to_ndarray().ravel() for f in cb.decode(audio=0)])
    np.testing.assert_array_equal(pa, pb)  # the same voice and words
    assert json.loads((tmp_path / "twins" / "synthtalk.json").read_text())["pose_twins"] is True
    assert main([str(tmp_path / "twins"), *opts]) == 2  # a rerun of the other kind is refused, not mixed in
