"""Tests for pcavs.data: WebDataset shards, preprocessing (with resume) and the training data pipeline."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pcavs.audio import mel_windows, melspectrogram
from pcavs.config import ConfigError
from pcavs.data.augment import AugmentConfig
from pcavs.data.clips import PreprocessConfig, discover_clips
from pcavs.data.dataset import (
    ClipDataset,
    DataConfig,
    batches_per_epoch,
    infinite_batches,
    make_loader,
)
from pcavs.data.preprocess import main, preprocess
from pcavs.data.shards import (
    ShardError,
    ShardWriter,
    encode_value,
    iter_shard,
    read_npy_header,
    read_npy_rows,
    scan_shard,
)
from pcavs.data.synthetic import write_synthetic_dataset

# ----------------------------------------------------------------------------------- shards


def test_shard_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    samples = {
        "a__b__00001": {"frames.npy": rng.integers(0, 255, (5, 8, 8, 3), dtype=np.uint8),
                        "mel.npy": rng.random((28, 80), dtype=np.float32), "json": {"label": "x", "n": [1, 2.5]}},
        "a__b__00002": {"landmarks.npy": rng.random((4, 68, 2)).astype(np.float16), "raw.bin": b"\x00\x01",
                        "txt": "héllo"},
    }
    path = tmp_path / "s.tar"
    with ShardWriter(path) as w:
        for key, fields in samples.items():
            w.add(key, fields)
    assert scan_shard(path) == w.index
    got = list(iter_shard(path))
    assert [k for k, _ in got] == list(samples)
    for (key, dec), (_, raw) in zip(got, iter_shard(path, decode=False), strict=True):
        assert dec.keys() == samples[key].keys()
        for ext, value in samples[key].items():
            assert raw[ext] == encode_value(ext, value)  # bytes-identical
            if isinstance(value, np.ndarray):
                assert dec[ext].dtype == value.dtype and np.array_equal(dec[ext], value)
            else:
                assert dec[ext] == value
    with open(path, "rb") as f:  # random access to single rows
        header = read_npy_header(f, w.index["a__b__00001"]["frames.npy"][0])
        assert np.array_equal(read_npy_rows(f, header, 2, 4), samples["a__b__00001"]["frames.npy"][2:4])
    again = tmp_path / "t.tar"
    with ShardWriter(again) as w2:
        for key, fields in samples.items():
            w2.add(key, fields)
    assert again.read_bytes() == path.read_bytes()  # reproducible bytes
    with pytest.raises(ShardError, match="no dots"), ShardWriter(tmp_path / "u.tar") as w3:
        w3.add("bad.key", {"json": {}})


# ----------------------------------------------------------------------------------- preprocessing
def _talking_clip(path: Path, img: np.ndarray, seed: int, frames: int = 45, side: int = 160) -> None:
    """The astronaut's face, moving a few pixels per frame, with a chirp as the soundtrack."""
    from pcavs.media import VideoWriter

    ph = np.random.default_rng(seed).uniform(0, 6)
    video = []
    for i in range(frames):
        dx, dy = int(round(4 * np.sin(i / 5 + ph))), int(round(3 * np.cos(i / 7 + ph)))
        y0, x0 = 128 - side // 2 + dy, 222 - side // 2 + dx
        video.append(img[y0 : y0 + side, x0 : x0 + side])
    t = np.arange(frames * 640) / 16000
    audio = 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t + ph) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, audio=audio.astype(np.float32), preset="ultrafast") as w:
        w.write(np.stack(video))


@pytest.fixture(scope="module")
def vox_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    skdata = pytest.importorskip("skimage.data")
    pytest.importorskip("dlib")
    from pcavs.media import VideoWriter

    src = tmp_path_factory.mktemp("vox2")
    img = skdata.astronaut()
    _talking_clip(src / "id00001/vidA/00001.mp4", img, 1)
    _talking_clip(src / "id00001/vidA/00002.mp4", img, 2)
    (src / "id00001/vidA/00002.json").write_text(json.dumps({"pose": [[0, 1, 2]], "identity": 7}))
    _talking_clip(src / "id00002/vidB/00001.mp4", img, 3)
    (src / "id00002/vidB/00002.mp4").write_bytes(np.random.default_rng(0).bytes(4000))  # broken
    noise = np.random.default_rng(1).integers(0, 256, (45, 160, 160, 3), dtype=np.uint8)
    (src / "id00003/vidC").mkdir(parents=True)
    with VideoWriter(src / "id00003/vidC/00001.mp4", audio=np.full(45 * 640, 0.01, np.float32),
                     preset="ultrafast") as w:
        w.write(noise)  # no face
    return src


@pytest.fixture(scope="module")
def vox_dst(vox_src: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("vox2-pre")
    # workers=2: the real spawn-pool path (the resume test reruns in-process and must match byte for byte)
    preprocess(vox_src, dst, PreprocessConfig(size=64, workers=2, clips_per_shard=2, min_frames=30), progress=False)
    return dst


def test_preprocess_outputs(vox_src: Path, vox_dst: Path) -> None:
    from pcavs.media import read_audio

    meta = json.loads((vox_dst / "dataset.json").read_text())
    assert meta["layout"] == "vox2" and meta["label_kind"] == "identity" and meta["size"] == 64
    assert meta["crop"] == "pcavs-official-clip-v2" and meta["version"] == 2
    assert meta["fps"] == 25 and meta["sample_rate"] == 16000
    assert meta["labels"] == ["id00001", "id00002"]  # id00003 only had a face-less clip
    counts = meta["counts"]
    assert counts["clips"] == 3 and counts["discovered"] == 5
    assert counts["skipped"] == {"no_face": 1, "unreadable": 1}
    assert counts["frames"] == 3 * 45 and counts["seconds"] == pytest.approx(3 * 45 / 25)
    assert [s["clips"] for s in meta["shards"]] == [2, 1, 0]
    skipped = [json.loads(line) for line in (vox_dst / "skipped.jsonl").read_text().splitlines()]
    assert {(s["source"], s["reason"]) for s in skipped} == {
        ("id00002/vidB/00002.mp4", "unreadable"), ("id00003/vidC/00001.mp4", "no_face")}
    assert all(s["source"] in s["detail"] for s in skipped)  # the detail names the file

    samples = {k: s for shard in sorted((vox_dst / "shards").glob("*.tar")) for k, s in iter_shard(shard)}
    assert list(samples) == ["id00001__vidA__00001", "id00001__vidA__00002", "id00002__vidB__00001"]
    for s in samples.values():
        info = s["json"]
        t = info["num_frames"]
        assert t == 45 and s["frames.npy"].shape == (t, 64, 64, 3) and s["frames.npy"].dtype == np.uint8
        assert s["mel.npy"].dtype == np.float32 and s["mel.npy"].shape == (info["mel_rows"], 80)
        assert s["landmarks.npy"].shape == (t, 68, 2) and s["landmarks.npy"].dtype == np.float16
        assert "audio.npy" not in s
        # aligned crop: the eyes and mouth sit where the official template puts them (64 px crop)
        lm = np.asarray(info["mean_landmarks"])
        assert abs(lm[36:48, 1].mean() - 19.3) < 2 and abs(lm[60:68, 1].mean() - 39.7) < 2
        full = melspectrogram(read_audio(vox_src / info["source"])).numpy()
        # rows: what mel_windows reads for frames 0..T-1 (4T+8), or all of them when the audio ends first
        assert info["mel_rows"] == min(4 * t + 8, len(full)) >= 4 * t + 7
        np.testing.assert_array_equal(s["mel.npy"], full[: 4 * t + 8])
    assert samples["id00001__vidA__00002"]["json"]["groundtruth"] == {"pose": [[0, 1, 2]], "identity": 7}
    assert "groundtruth" not in samples["id00001__vidA__00001"]["json"]


def test_preprocess_resume(vox_src: Path, vox_dst: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    dst = tmp_path / "copy"
    shutil.copytree(vox_dst, dst)
    shards = dst / "shards"
    (shards / "shard-000001.tar").unlink()
    (shards / "shard-000001.tar.partial").write_bytes(b"killed mid-write")
    (dst / "dataset.json").unlink()
    stamp = {p.name: p.stat().st_mtime_ns for p in shards.iterdir()}
    args = [str(vox_src), str(dst), "--size", "64", "--workers", "1", "--clips-per-shard", "2", "--quiet"]
    assert main(args) == 0
    assert "this run: 2 clips" in capsys.readouterr().out  # only shard 1 (2 clips) was redone
    for name in ("shard-000000.tar", "shard-000002.tar", "shard-000000.json"):
        assert (shards / name).stat().st_mtime_ns == stamp[name]
    assert not list(shards.glob("*.partial"))
    for ref in sorted(vox_dst.rglob("*")):
        if ref.is_file():
            assert (dst / ref.relative_to(vox_dst)).read_bytes() == ref.read_bytes(), ref.name
    # other settings on the same DST: refused with a message, nothing touched
    assert main(args[:3] + ["32"] + args[4:]) == 2
    assert "other settings" in capsys.readouterr().err


def test_discover_lrw(tmp_path: Path) -> None:
    for rel in ("ABOUT/train/ABOUT_00002.mp4", "ABOUT/train/ABOUT_00001.mp4", "ABOUT/val/ABOUT_00001.mp4",
                "WORLD/test/WORLD_00001.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    layout, clips = discover_clips(tmp_path)
    assert layout == "lrw"
    assert [c.key for c in clips] == ["ABOUT__train__ABOUT_00001", "ABOUT__train__ABOUT_00002",
                                      "ABOUT__val__ABOUT_00001", "WORLD__test__WORLD_00001"]
    assert [(c.label, c.split) for c in clips][-1] == ("WORLD", "test")
    assert discover_clips(tmp_path, "vox2")[0] == "vox2"


# ----------------------------------------------------------------------------------- dataset
@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("synth"), num_clips=10, frames=20, size=32, labels=3,
                                   clips_per_shard=3)


def _batches(loader) -> list[dict[str, torch.Tensor]]:
    return list(loader)


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_synthetic_is_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    write_synthetic_dataset(tmp_path, num_clips=8, frames=20, size=32)
    assert time.perf_counter() - start < 1.0
    ds = ClipDataset(DataConfig(str(tmp_path)))
    assert len(ds.clips) == 8 and ds.labels == ["label00", "label01"]


def test_sample_shapes_and_determinism(synth: Path) -> None:
    cfg = DataConfig(str(synth), clip_len=3, shift_negatives=2, seed=5)
    a = _batches(make_loader(cfg, batch_size=4))
    b = _batches(make_loader(cfg, batch_size=4))
    assert len(a) == batches_per_epoch(ClipDataset(cfg), 4) == 10 * 4 // 4
    assert all(_equal(x, y) for x, y in zip(a, b, strict=True))
    x = a[0]
    assert x["frames"].shape == x["augmented"].shape == (4, 3, 3, 32, 32)
    assert x["reference"].shape == (4, 3, 32, 32) and x["mel"].shape == (4, 3, 1, 80, 20)
    assert x["mel_shifted"].shape == (4, 3, 2, 1, 80, 20) and x["landmarks"].shape == (4, 3, 68, 2)
    assert x["label"].dtype == x["clip"].dtype == x["frame"].dtype == torch.int64
    assert float(x["frames"].min()) >= -1 and float(x["frames"].max()) <= 1
    assert not torch.equal(x["augmented"], x["frames"])
    assert bool((x["frame"][:, 1:] - x["frame"][:, :-1] == 1).all())  # K consecutive frames
    other = _batches(make_loader(cfg, batch_size=4, epoch=1))
    assert [int(s) for y in other for s in y["sample"]] != [int(s) for y in a for s in y["sample"]]
    off = next(iter(ClipDataset(DataConfig(str(synth), augment=AugmentConfig.off()))))
    assert torch.equal(off["augmented"], off["frames"])


def test_no_repeats_across_ranks_and_workers(synth: Path) -> None:
    cfg = DataConfig(str(synth), samples_per_clip=4, seed=1)
    full = ClipDataset(cfg)
    everything = {(int(s["clip"]), int(s["frame"][0])) for s in full}
    assert len(everything) == 10 * 4  # distinct windows per clip
    seen: list[tuple[int, int]] = []
    for rank in range(2):
        loader = make_loader(cfg, batch_size=3, rank=rank, world_size=2, num_workers=2, epoch=2)
        batches = _batches(loader)
        assert len(batches) == batches_per_epoch(ClipDataset(cfg, rank, 2), 3, 2) == 2 * ((10 // 4) * 4 // 3)
        seen += [(int(c), int(f[0])) for b in batches for c, f in zip(b["clip"], b["frame"], strict=True)]
    assert len(seen) == len(set(seen)) == 4 * 6  # no repeats; documented remainder only
    # the clips used are the first C - C mod W of epoch 2's order; drops are per-worker batch remainders
    kept = set(full.clip_order(2)[: 10 - 10 % 4].tolist())
    assert {c for c, _ in seen} <= kept
    full.set_epoch(2)
    assert set(seen) <= {(int(s["clip"]), int(s["frame"][0])) for s in full}


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_gives_the_same_batches(synth: Path, num_workers: int) -> None:
    cfg = DataConfig(str(synth), samples_per_clip=3, seed=2)
    full = _batches(make_loader(cfg, batch_size=2, num_workers=num_workers, epoch=1))
    for skip in (1, 3):
        tail = _batches(make_loader(cfg, batch_size=2, num_workers=num_workers, epoch=1, skip_batches=skip))
        assert len(tail) == len(full) - skip
        assert all(_equal(x, y) for x, y in zip(tail, full[skip:], strict=True))
    # infinite_batches rolls over epochs and resumes mid-epoch
    n = len(full)
    run = infinite_batches(cfg, 2, num_workers=num_workers, start_epoch=0)
    seq = [next(run) for _ in range(n + 3)]
    assert [(e, i) for e, i, _ in seq[n - 1 : n + 1]] == [(0, n - 1), (1, 0)]
    resumed = infinite_batches(cfg, 2, num_workers=num_workers, start_epoch=0, start_batch=n - 2)
    for want in seq[n - 2 :]:
        got = next(resumed)
        assert got[:2] == want[:2] and _equal(got[2], want[2])


def test_reference_distance(tmp_path: Path) -> None:
    long = write_synthetic_dataset(tmp_path / "long", num_clips=3, frames=70, size=16, landmarks=False)
    for s in ClipDataset(DataConfig(str(long), clip_len=2, min_ref_distance=25, samples_per_clip=8)):
        f, r = s["frame"], int(s["reference_frame"])
        assert int((f - r).abs().min()) >= 25
        assert "landmarks" not in s
    short = write_synthetic_dataset(tmp_path / "short", num_clips=2, frames=20, size=16)
    for s in ClipDataset(DataConfig(str(short), min_ref_distance=25)):
        f = int(s["frame"][0])
        assert int(s["reference_frame"]) == (0 if f >= 19 - f else 19)  # farthest frame


def test_reference_from_another_clip_of_the_same_person(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path / "d", num_clips=7, frames=20, size=16, labels=3, landmarks=False)
    stored = {k: s for shard in sorted((root / "shards").glob("*.tar")) for k, s in iter_shard(shard)}
    base = list(ClipDataset(DataConfig(str(root), samples_per_clip=3)))
    assert all(int(s["reference_clip"]) == int(s["clip"]) for s in base)
    ds = ClipDataset(DataConfig(str(root), samples_per_clip=3, reference_other_clip=1.0))
    keys, labels = [c.key for c in ds.clips], [c.label for c in ds.clips]
    moved = 0
    for s, b in zip(ds, base, strict=True):
        c, rc = int(s["clip"]), int(s["reference_clip"])
        assert labels[rc] == labels[c]
        assert rc != c or len(ds.clips_of_label[labels[c]]) == 1  # label 2 has clips 2 and 5; all have others
        moved += rc != c
        ref = torch.from_numpy(stored[keys[rc]]["frames.npy"][int(s["reference_frame"])])
        assert torch.equal(s["reference"], ref.permute(2, 0, 1).float() / 127.5 - 1)
        for name in ("frames", "augmented", "mel", "mel_shifted"):  # only the reference moves
            assert torch.equal(s[name], b[name]), name
    assert moved == len(base)
    half = [int(s["reference_clip"]) != int(s["clip"])
            for s in ClipDataset(DataConfig(str(root), samples_per_clip=8, reference_other_clip=0.5))]
    assert 0.25 < sum(half) / len(half) < 0.75
    with pytest.raises(ConfigError, match="reference_other_clip"):
        DataConfig(str(root), reference_other_clip=1.5)


def test_pose_twins_feed_the_encoder_another_face_at_the_same_frames(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path / "d", num_clips=6, frames=20, size=16, landmarks=False)
    twins = write_synthetic_dataset(tmp_path / "t", num_clips=5, frames=20, size=16, landmarks=False, seed=1)
    stored = {k: s for shard in sorted((twins / "shards").glob("*.tar")) for k, s in iter_shard(shard)}
    plain = AugmentConfig(p_color=0.0, p_perspective=0.0, p_crop=0.0)  # E then sees the stored frames as they are
    base = list(ClipDataset(DataConfig(str(root), samples_per_clip=3, augment=plain)))
    assert not any(bool(s["pose_twin"]) for s in base)
    ds = ClipDataset(DataConfig(str(root), samples_per_clip=3, augment=plain, pose_twins=str(twins),
                                pose_twin_prob=1.0))
    keys = [c.key for c in ds.clips]
    assert sorted(ds.twins) == [0, 1, 2, 3, 4]  # clip 5 has no twin: it keeps its own frames
    for s, b in zip(ds, base, strict=True):
        c, f = int(s["clip"]), s["frame"].tolist()
        assert bool(s["pose_twin"]) == (c != 5)
        for name in ("frames", "reference", "mel", "mel_shifted", "frame", "reference_frame"):  # only E's input moves
            assert torch.equal(s[name], b[name]), name
        if c == 5:
            assert torch.equal(s["augmented"], b["augmented"])
        else:
            want = torch.from_numpy(stored[keys[c]]["frames.npy"][f]).permute(0, 3, 1, 2).float() / 127.5 - 1
            assert torch.equal(s["augmented"], want)
            assert not torch.equal(s["augmented"], s["frames"])
    half = [bool(s["pose_twin"]) for s in ClipDataset(DataConfig(str(root), samples_per_clip=16, pose_twins=str(twins)))
            if int(s["clip"]) != 5]
    assert 0.3 < sum(half) / len(half) < 0.7  # pose_twin_prob = 0.5 by default
    with pytest.raises(ConfigError, match="pose_twin_prob"):
        DataConfig(str(root), pose_twins=str(twins), pose_twin_prob=-0.1)
    other = write_synthetic_dataset(tmp_path / "o", num_clips=2, frames=19, size=16, landmarks=False)
    with pytest.raises(ShardError, match="no clip matches .* by key and length.*--pose-twins"):
        ClipDataset(DataConfig(str(root), pose_twins=str(other)))
    bigger = write_synthetic_dataset(tmp_path / "b", num_clips=2, frames=20, size=24, landmarks=False)
    with pytest.raises(ShardError, match="stored at 24 px, the data at 16.*--size 16"):
        ClipDataset(DataConfig(str(root), pose_twins=str(bigger)))


def test_frames_and_mel_alignment(vox_dst: Path, synth: Path) -> None:
    for root in (vox_dst, synth):
        stored = {k: s for shard in sorted(root.glob("shards/*.tar")) for k, s in iter_shard(shard)}
        ds = ClipDataset(DataConfig(str(root), clip_len=2, shift_negatives=3, samples_per_clip=3))
        keys = [c.key for c in ds.clips]
        for s in ds:
            clip = stored[keys[int(s["clip"])]]
            mel = torch.from_numpy(clip["mel.npy"])
            frames = s["frame"].tolist()
            assert torch.equal(s["mel"], mel_windows(mel, frames))
            want = torch.from_numpy(clip["frames.npy"][frames]).permute(0, 3, 1, 2).float() / 127.5 - 1
            assert torch.equal(s["frames"], want)
            ref = torch.from_numpy(clip["frames.npy"][int(s["reference_frame"])]).permute(2, 0, 1).float() / 127.5 - 1
            assert torch.equal(s["reference"], ref)
            assert torch.equal(s["landmarks"], torch.from_numpy(clip["landmarks.npy"][frames].astype(np.float32)))
            t = clip["json"]["num_frames"]
            for m in range(3):  # each negative is the window block of a start >= 5 frames away
                starts = [st for st in range(t - 1) if abs(st - frames[0]) >= 5]
                assert any(torch.equal(s["mel_shifted"][:, m], mel_windows(mel, [st, st + 1])) for st in starts)


def test_resize_on_load(synth: Path) -> None:
    s32 = next(iter(ClipDataset(DataConfig(str(synth), image_size=None))))
    s16 = next(iter(ClipDataset(DataConfig(str(synth), image_size=16))))
    assert s16["frames"].shape == (1, 3, 16, 16) and s16["reference"].shape == (3, 16, 16)
    assert torch.allclose(s16["landmarks"], (s32["landmarks"] + 0.5) / 2 - 0.5)
    assert torch.equal(s16["frame"], s32["frame"]) and torch.equal(s16["mel"], s32["mel"])


def test_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(ShardError, match="pcavs preprocess"):
        ClipDataset(DataConfig(str(tmp_path)))
    assert os.listdir(tmp_path) == []


def test_index_without_sidecars(synth: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(synth, copy)
    for side in (copy / "shards").glob("*.json"):
        side.unlink()  # e.g. shards copied without their index files: the tars are scanned instead
    a, b = ClipDataset(DataConfig(str(synth))), ClipDataset(DataConfig(str(copy)))
    assert [(c.key, c.num_frames, c.label, c.members) for c in a.clips] == \
        [(c.key, c.num_frames, c.label, c.members) for c in b.clips]
    assert _equal(next(iter(a)), next(iter(b)))


def test_preprocess_synthtalk_with_exact_landmarks(tmp_path: Path) -> None:
    """SynthTalk clips are cropped from their sidecar's exact landmarks (no detector involved)."""
    from pcavs.synth.dataset import write_dataset

    write_dataset(tmp_path / "raw", num_identities=1, clips_per_identity=1, seconds=1.6, size=96, progress=False)
    meta = preprocess(tmp_path / "raw", tmp_path / "pre", PreprocessConfig(size=32, min_frames=20,
                                                                          landmarks="sidecar"), progress=False)
    assert meta["counts"]["clips"] == 1 and meta["counts"]["frames"] == 40
    (key, sample), = list(iter_shard(tmp_path / "pre" / "shards" / "shard-000000.tar"))
    assert sample["frames.npy"].shape == (40, 32, 32, 3)
    assert sample["json"]["groundtruth"]["format"] == "synthtalk-v1"
    # exact landmarks: the mouth centre lands on the official target in every crop (x 112/224, y 140/224)
    mouth = sample["landmarks.npy"].astype(np.float64)[:, 60:68].mean(1)
    assert np.abs(mouth - [16.0, 20.0]).max() < 1.0


def test_shards_of_another_crop_are_refused(synth: Path, tmp_path: Path) -> None:
    """Shards cropped the v1 way (every frame levelled) would train a model that never sees roll."""
    copy = tmp_path / "old"
    shutil.copytree(synth, copy)
    meta = json.loads((copy / "dataset.json").read_text())
    meta.update(crop="pcavs-official-align-v1", version=1)
    (copy / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(ShardError, match=r"'pcavs-official-align-v1'.*rerun `pcavs preprocess"):
        ClipDataset(DataConfig(str(copy)))


def test_shards_of_another_audio_front_end_are_refused(synth: Path, tmp_path: Path) -> None:
    """dataset.json records the mel front-end; another pairing of frames and windows is refused, and
    shards that predate the record (no 'audio') are read as the official constants."""
    meta = json.loads((synth / "dataset.json").read_text())
    assert meta["audio"]["rows_per_frame"] == 4 and meta["audio"]["window_rows"] == 20
    copy = tmp_path / "other-audio"
    shutil.copytree(synth, copy)
    for audio, ok in (({**meta["audio"], "mouth_offset_frames": 3}, False), (None, True)):
        changed = {k: v for k, v in meta.items() if k != "audio"}
        if audio is not None:
            changed["audio"] = audio
        (copy / "dataset.json").write_text(json.dumps(changed))
        if ok:
            assert len(ClipDataset(DataConfig(str(copy))).clips) == len(ClipDataset(DataConfig(str(synth))).clips)
        else:
            with pytest.raises(ShardError, match=r"mouth_offset_frames differ.*rerun `pcavs preprocess"):
                ClipDataset(DataConfig(str(copy)))
