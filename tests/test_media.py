"""Media I/O on files generated in tmp_path (Pillow images, PyAV-encoded audio and video)."""

from __future__ import annotations

import struct
import time
import wave
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from pcavs.media import (
    MediaError,
    VideoWriter,
    probe_output,
    probe_video,
    read_audio,
    read_image,
    read_video_frames,
)

SR_IN = 44100
CLICK_S = 0.5


# ------------------------------------------------------------------------------------- helpers


def _click_signal(n: int, sr: int, channels: int, at: float = CLICK_S) -> np.ndarray:
    """Quiet tone with a short loud click starting at ``at`` seconds; shape (channels, n)."""
    t = np.arange(n) / sr
    x = 0.02 * np.sin(2 * np.pi * 440 * t)
    c = int(round(at * sr))
    x[c : c + max(2, sr // 2000)] = 0.9
    return np.repeat(x[None], channels, axis=0).astype(np.float32)


def _encode_audio(path: Path, codec: str, x: np.ndarray, sr: int, fmt: str | None = None) -> list[int]:
    """Encode planar float ``x`` (channels, n); returns the first packet timestamps."""
    layout = "mono" if x.shape[0] == 1 else "stereo"
    first_pts: list[int] = []
    with av.open(str(path), "w", format=fmt) as out:
        s = out.add_stream(codec, rate=sr, layout=layout, options={"strict": "experimental"})
        step = 4096
        for i in range(0, x.shape[1], step):
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i : i + step]), format="fltp", layout=layout)
            f.sample_rate, f.pts, f.time_base = sr, i, Fraction(1, sr)
            for p in s.encode(f):
                if len(first_pts) < 2:
                    first_pts.append(p.pts)
                out.mux(p)
        out.mux(s.encode(None))
    return first_pts


def _click_time(y: np.ndarray, sr: int) -> float:
    return float(np.argmax(np.abs(y) > 0.3)) / sr


def _write_video(path: Path, times_ms: list[int], size=(48, 64), rotation: int = 0, audio: bool = False) -> None:
    """H.264 video whose frame j (value (10 + 20 j) % 240) is shown at times_ms[j]."""
    h, w = size
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=1000)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            s.set_display_rotation(rotation)
        for j, t in enumerate(times_ms):
            img = np.full((h, w, 3), (10 + 20 * j) % 240, np.uint8)
            img[:4, :8] = 255  # marker in the top-left corner
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            out.mux(s.encode(f))
        out.mux(s.encode(None))


def _png_with_size(path: Path, width: int, height: int) -> None:
    """A tiny valid PNG whose IHDR claims ``width`` x ``height`` (data is never decoded)."""
    Image.new("RGB", (4, 4)).save(path)
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))


# -------------------------------------------------------------------------------------- images


def test_image_rgb_and_gray(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgb)
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (9, 7, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :, 2], rgb[:, :, 0])
    Image.fromarray(rgb).save(tmp_path / "a.webp", lossless=True)
    np.testing.assert_array_equal(read_image(tmp_path / "a.webp"), rgb)


def test_image_rgba_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (0, 0, 0, 0)  # transparent black -> white
    rgba[0, 1] = (200, 10, 10, 255)  # opaque -> unchanged
    rgba[1, 0] = (0, 0, 0, 128)  # half black over white -> ~127
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    out = read_image(tmp_path / "t.png")
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[0, 1]) == (200, 10, 10)
    assert abs(int(out[1, 0, 0]) - 127) <= 1


def test_image_palette_and_16bit(tmp_path: Path) -> None:
    p = Image.new("P", (3, 1))
    p.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    p.putdata([0, 1, 2])
    p.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_image(tmp_path / "p.png")[0], [[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    p.save(tmp_path / "pt.png", transparency=1)  # green entry transparent -> white
    np.testing.assert_array_equal(read_image(tmp_path / "pt.png")[0, 1], [255, 255, 255])

    g16 = np.array([[0, 257, 32896, 65535]], np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")
    out = read_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])


def test_image_exif_orientation(tmp_path: Path) -> None:
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :10] = 255  # white band on the stored left side
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    Image.fromarray(img).save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = read_image(tmp_path / "r.jpg")
    assert out.shape == (40, 20, 3)
    assert out[:10].mean() > 200 and out[12:].mean() < 30  # left band is now at the top


def test_image_too_large_refused_from_header(tmp_path: Path) -> None:
    huge = tmp_path / "huge.png"
    _png_with_size(huge, 20000, 20000)
    t = time.perf_counter()
    with pytest.raises(MediaError, match=r"huge\.png.*400 MP.*100 MP limit; downscale"):
        read_image(huge)
    big = tmp_path / "big.png"
    _png_with_size(big, 12000, 9000)  # above our limit, below Pillow's own
    with pytest.raises(MediaError, match=r"12000x9000 .*100 MP limit; downscale"):
        read_image(big)
    assert time.perf_counter() - t < 1.0


def test_image_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="nope.png: file not found"):
        read_image(tmp_path / "nope.png")
    bad = tmp_path / "notes.png"
    bad.write_text("hello, not an image")
    with pytest.raises(MediaError, match=r"notes\.png: not an image.*PNG, JPEG"):
        read_image(bad)
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match=r"cut\.png: image data is truncated"):
        read_image(tmp_path / "cut.png")
    assert issubclass(MediaError, ValueError)


# --------------------------------------------------------------------------------------- audio


@pytest.mark.parametrize(
    "name,codec,fmt",
    [
        ("a.wav", "pcm_s16le", None),
        ("a.flac", "flac", None),
        ("a.mp3", "libmp3lame", None),
        ("a.m4a", "aac", "ipod"),
        ("a.ogg", "vorbis", None),
    ],
)
def test_read_audio_formats(tmp_path: Path, name: str, codec: str, fmt: str | None) -> None:
    x = _click_signal(SR_IN, SR_IN, channels=2)  # 1 s of 44.1 kHz stereo
    first = _encode_audio(tmp_path / name, codec, x, SR_IN, fmt)
    y = read_audio(tmp_path / name)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size - 16000) <= 32, y.size  # lossy codecs may add a few samples at the end
    err_ms = abs(_click_time(y, 16000) - CLICK_S) * 1000
    print(f"{name}: {y.size} samples, click offset {err_ms:.3f} ms, first packet pts {first}")
    assert err_ms < 1.0
    if codec == "aac":
        # Empirical fact this relies on: FFmpeg's AAC encoder emits 1024 priming samples with
        # negative timestamps; the MP4 edit list lets the decoder drop them.
        assert first[0] == -1024
        assert y.size == 16000


def test_read_audio_sample_rates(tmp_path: Path) -> None:
    x = _click_signal(8000, 8000, channels=1)
    _encode_audio(tmp_path / "a8k.wav", "pcm_s16le", x, 8000)
    y = read_audio(tmp_path / "a8k.wav", sr=16000)
    assert y.size == 16000 and abs(_click_time(y, 16000) - CLICK_S) < 1e-3
    y22 = read_audio(tmp_path / "a8k.wav", sr=22050)
    assert y22.size == 22050


def test_read_audio_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="missing.wav: file not found"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "junk.mp3").write_bytes(b"\x00garbage" * 50)
    with pytest.raises(MediaError, match=r"junk\.mp3: not a readable media file"):
        read_audio(tmp_path / "junk.mp3")
    _write_video(tmp_path / "silent.mp4", [0, 40, 80])
    with pytest.raises(MediaError, match=r"silent\.mp4: has no audio stream"):
        read_audio(tmp_path / "silent.mp4")
    with wave.open(str(tmp_path / "empty.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
    with pytest.raises(MediaError, match=r"empty\.wav: .*no samples"):
        read_audio(tmp_path / "empty.wav")


# --------------------------------------------------------------------------------------- video


def test_vfr_video_resampled_to_25fps(tmp_path: Path) -> None:
    times = [0, 40, 50, 130, 200, 400, 410, 420, 990]
    _write_video(tmp_path / "vfr.mp4", times)
    frames = list(read_video_frames(tmp_path / "vfr.mp4"))
    info = probe_video(tmp_path / "vfr.mp4")
    assert len(frames) == info.num_frames
    assert (info.width, info.height, info.has_audio, info.source_frames) == (64, 48, False, 9)
    # Sample-and-hold: output k shows the latest source frame at or before k * 40 ms.
    expect = [max(j for j, t in enumerate(times) if t <= 40 * k) for k in range(len(frames))]
    got = [int(round((int(f[24, 32, 0]) - 10) / 20)) for f in frames]
    assert got == expect
    # The last frame lasts one lower-median interval (40 ms): 990 + 40 ms -> ceil(25.75) frames.
    assert len(frames) == 26 and info.duration == pytest.approx(1.03)


def test_constant_rate_conversion_matches_probe(tmp_path: Path) -> None:
    _write_video(tmp_path / "30.mp4", [round(1000 * j / 30) for j in range(45)])  # 1.5 s at 30 fps
    info = probe_video(tmp_path / "30.mp4")
    n = sum(1 for _ in read_video_frames(tmp_path / "30.mp4"))
    assert n == info.num_frames == 38  # ceil(1.5 s * 25)


def test_rotation_metadata_applied(tmp_path: Path) -> None:
    _write_video(tmp_path / "rot.mp4", [0, 40], size=(48, 64), rotation=90)
    info = probe_video(tmp_path / "rot.mp4")
    assert (info.rotation, info.width, info.height) == (90, 48, 64)
    f = next(read_video_frames(tmp_path / "rot.mp4"))
    assert f.shape == (64, 48, 3)
    # 90 degrees counter-clockwise: the stored top-left marker ends at the bottom-left.
    assert f[-3:, :2].mean() > 200 and f[:3, :2].mean() < 100


def test_frames_are_independent_copies(tmp_path: Path) -> None:
    _write_video(tmp_path / "slow.mp4", [0, 200])
    frames = list(read_video_frames(tmp_path / "slow.mp4"))
    frames[0][:] = 0
    assert frames[1].max() > 0


# -------------------------------------------------------------------------------------- writer


def test_writer_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(40, 216, (50, 1, 1, 3), dtype=np.uint8), 64, 1).repeat(80, 2)
    audio = 0.3 * np.sin(2 * np.pi * 220 * np.arange(32000) / 16000)
    out = tmp_path / "out.mp4"
    with VideoWriter(out, audio=audio) as w:
        for i in range(0, 50, 16):
            w.write(frames[i : i + 16])
    s = probe_output(out)
    print(s)
    v, a = s.stream("video"), s.stream("audio")
    assert v is not None and a is not None
    assert (v.codec, v.pix_fmt, v.width, v.height, v.frames, v.fps) == ("h264", "yuv420p", 80, 64, 50, 25.0)
    assert (a.codec, a.sample_rate, a.channels) == ("aac", 16000, 1)
    assert v.duration == pytest.approx(2.0) and s.duration == pytest.approx(2.0, abs=0.03)
    back = list(read_video_frames(out))
    assert len(back) == 50
    err = np.abs(np.stack(back).astype(int) - frames.astype(int)).mean()
    assert err < 2.0, err
    y = read_audio(out)
    assert y.size == 32000
    assert abs(np.sqrt(np.mean(y**2)) - 0.3 / np.sqrt(2)) < 0.01
    assert not list(tmp_path.glob(".*partial*"))


def test_writer_av_offset(tmp_path: Path) -> None:
    """Frames flash at k and a click sounds at k/25 s; both read back must agree within 10 ms."""
    sr, n_frames, flashes = 16000, 75, [12, 37, 61]
    frames = np.full((n_frames, 32, 32, 3), 30, np.uint8)
    audio = np.zeros(n_frames * sr // 25, np.float32)
    for k in flashes:
        frames[k] = 220
        audio[k * sr // 25 : k * sr // 25 + 16] = 0.9
    out = tmp_path / "sync.mp4"
    with VideoWriter(out, audio=audio) as w:
        w.write(frames)
    bright = [i for i, f in enumerate(read_video_frames(out)) if f.mean() > 128]
    assert bright == flashes
    y = read_audio(out)
    offsets = []
    for k in flashes:
        lo = (k - 5) * sr // 25
        click = (lo + int(np.argmax(np.abs(y[lo : lo + 10 * sr // 25]) > 0.3))) / sr
        offsets.append(click - k / 25)
    worst = max(abs(o) for o in offsets)
    print(f"writer A/V offset (audio - video): {[round(o * 1000, 3) for o in offsets]} ms")
    assert worst < 0.010

    # Independent of read_audio's trimming: the container itself must put the AAC priming before
    # t = 0 (first packet at -1024 samples) and video frame 0 at t = 0; placing every decoded
    # sample by its own frame timestamp must put the first click at 12 / 25 s.
    with av.open(str(out)) as c:
        a_s, v_s = c.streams.audio[0], c.streams.video[0]
        first_a = next(p for p in c.demux(a_s) if p.size)
        assert first_a.pts * a_s.time_base == Fraction(-1024, sr)
        c.seek(0)
        first_v = min(p.pts for p in c.demux(v_s) if p.size)
        assert first_v == 0
    with av.open(str(out)) as c:
        for f in c.decode(audio=0):
            hit = np.flatnonzero(np.abs(f.to_ndarray()[0]) > 0.3)
            if hit.size:
                raw = float(f.pts * f.time_base) + hit[0] / f.sample_rate - flashes[0] / 25
                break
    print(f"writer A/V offset from raw frame timestamps: {raw * 1000:.3f} ms")
    assert abs(raw) < 0.010


def test_writer_odd_size_padded(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    with VideoWriter(out) as w:
        w.write(np.full((3, 33, 45, 3), 100, np.uint8))
    s = probe_output(out)
    v = s.stream("video")
    assert v is not None and (v.width, v.height, v.frames) == (46, 34, 3) and s.stream("audio") is None


def test_writer_atomic_on_exception(tmp_path: Path) -> None:
    out = tmp_path / "fail.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, audio=np.zeros(16000)) as w:
            w.write(np.zeros((5, 16, 16, 3), np.uint8))
            assert (tmp_path / ".fail.mp4.partial").exists() and not out.exists()
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"folder .*nowhere does not exist; create it or choose another -o"):
        VideoWriter(tmp_path / "nowhere" / "x.mp4")
    with pytest.raises(MediaError, match="unsupported extension"):
        VideoWriter(tmp_path / "x.gif")
    with pytest.raises(MediaError, match="uint8"):
        with VideoWriter(tmp_path / "f.mp4") as w:
            w.write(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(MediaError, match="no frames"):
        with VideoWriter(tmp_path / "empty.mp4"):
            pass
    with pytest.raises(MediaError, match="size changed"):
        with VideoWriter(tmp_path / "s.mp4") as w:
            w.write(np.zeros((1, 8, 8, 3), np.uint8))
            w.write(np.zeros((1, 8, 10, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_truncated_mp4_refused(tmp_path: Path) -> None:
    out = tmp_path / "full.mp4"
    with VideoWriter(out, audio=np.zeros(16000, np.float32)) as w:
        w.write(np.random.default_rng(0).integers(0, 256, (25, 32, 32, 3), dtype=np.uint8))
    data = out.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.8)])
    for fn in (read_audio, probe_video, lambda p: list(read_video_frames(p))):
        with pytest.raises(MediaError, match=r"cut\.mp4: .*truncated"):
            fn(cut)
    head = tmp_path / "head.mp4"
    head.write_bytes(data[:200])
    with pytest.raises(MediaError, match=r"head\.mp4: contains no audio or video stream; it is truncated"):
        read_audio(head)


def test_audio_from_video_track(tmp_path: Path) -> None:
    audio = _click_signal(24000, 16000, channels=1)[0]
    out = tmp_path / "talk.mp4"
    with VideoWriter(out, audio=audio) as w:
        w.write(np.zeros((38, 16, 16, 3), np.uint8))
    info = probe_video(out)
    assert info.has_audio and info.audio_sample_rate == 16000 and info.num_frames == 38
    y = read_audio(out)
    assert y.size == 24000 and abs(_click_time(y, 16000) - CLICK_S) < 1e-3


# ------------------------------------------------------------------------------ broken timestamps
def _write_bursted(path: Path, n: int = 90, ticks: int = 33, size=(48, 64)) -> None:
    """H.264 video whose n frames are stamped ``ticks``/90000 s apart (33: 2700 fps, 0.033 s in all)."""
    h, w = size
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.time_base = Fraction(1, 90000)
        for j in range(n):
            img = np.full((h, w, 3), (10 + 2 * j) % 240, np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = j * ticks, Fraction(1, 90000)
            out.mux(s.encode(f))
        out.mux(s.encode(None))


def test_broken_timestamps_read_by_frame_order_with_a_warning(tmp_path: Path) -> None:
    from pcavs.media import MediaWarning

    path = tmp_path / "burst.mp4"
    _write_bursted(path)
    info = probe_video(path)
    assert info.timing_note is not None and info.num_frames == 90 and info.duration == pytest.approx(3.6)
    with pytest.warns(MediaWarning) as caught:
        frames = list(read_video_frames(path))
    message = str(caught[0].message)
    assert "burst.mp4" in message and "90 frames" in message and "read as 25 fps by frame order" in message
    assert "0.033 s" in message and "fps)" in message
    # every source frame once, in order (without the fix: 1 frame, an almost still video)
    assert len(frames) == 90
    got = np.array([(float(f[24, 32, 0]) - 10) / 2 for f in frames])  # gray level 10 + 2 j (+-1 from H.264)
    assert np.abs(got - np.arange(90)).max() <= 1


def test_plausible_high_rate_is_not_flagged(tmp_path: Path) -> None:
    path = tmp_path / "240.mp4"
    _write_bursted(path, n=24, ticks=375)  # 240 fps: a high-speed recording, read by its timestamps
    assert probe_video(path).timing_note is None
    assert len(list(read_video_frames(path))) == 3  # 0.1 s at 25 fps


def test_stereo_48k_soundtrack_round_trip(tmp_path) -> None:
    """The writer keeps the input's rate and channels; read_audio_native gives them back in place."""
    from pcavs.media import VideoWriter, read_audio, read_audio_native

    rate, n = 48000, 48000
    t = np.arange(n) / rate
    left, right = 0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)
    sound = np.stack([left, right], 1).astype(np.float32)
    out = tmp_path / "s.mp4"
    with VideoWriter(out, audio=sound, sample_rate=rate, preset="ultrafast") as w:
        w.write(np.zeros((25, 16, 16, 3), np.uint8))
    back, back_rate = read_audio_native(out)
    assert back_rate == 48000 and back.shape[1] == 2 and abs(len(back) - n) < 1024
    m = min(len(back), n) - 2000
    for c in range(2):  # each channel stays itself (not swapped, not downmixed) and in place
        corr = np.corrcoef(back[1000:m, c], sound[1000:m, c])[0, 1]
        assert corr > 0.95
    assert abs(read_audio(out).size - n / 3) < 400  # the model's view: 16 kHz mono
