"""`pcavs live`: a file played in real time or PCM on stdin -> a fragmented mp4 / HLS playlist that grows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from pcavs.audio import num_video_frames
from pcavs.cli import main
from pcavs.infer.live import drive, paced_chunks
from pcavs.media import read_audio

DEMO = Path(__file__).resolve().parents[1] / "pcavs" / "assets" / "demo"
SR = 16000


def _wav(path: Path, x: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def _decoded(path: Path) -> tuple[int, int]:
    """(video frames, audio samples) a decoder gets out of ``path`` (a partial file included)."""
    frames = samples = 0
    with av.open(str(path)) as c:
        for packet in c.demux():
            try:
                for f in packet.decode():
                    if isinstance(f, av.VideoFrame):
                        frames += 1
                    else:
                        samples += f.samples
            except av.error.InvalidDataError:
                break
    return frames, samples


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pcavs", "live", "--threads", "1", *args]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_live_writes_a_fragmented_mp4_that_is_readable_while_it_grows(tmp_path: Path) -> None:
    speech = read_audio(DEMO / "speech.wav")[: 2 * SR]
    src = _wav(tmp_path / "speech.wav", speech)
    out = tmp_path / "live.mp4"
    proc = subprocess.Popen(_cmd("--audio", str(src), "-o", str(out), "--keyframe-s", "0.4"), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = 0
    try:
        while proc.poll() is None:  # copy the growing file and decode the copy, as a player would
            time.sleep(0.3)
            if out.exists() and out.stat().st_size > 2000:
                shutil.copy(out, tmp_path / "snapshot.mp4")
                try:
                    seen = max(seen, _decoded(tmp_path / "snapshot.mp4")[0])
                except av.error.FFmpegError:
                    pass
                if proc.poll() is None and seen:
                    break
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert 0 < seen < 50, "no frame was playable before the stream ended"
    assert "wrote" in stdout and "frames/s" in stdout and "algorithmic 120 ms" in stdout
    frames, samples = _decoded(out)
    assert frames == num_video_frames(speech.size) == 50  # every slot has a frame (held or made)
    assert abs(samples - speech.size) < 2048  # the sound, whole (AAC pads its last frame)


def test_live_reads_pcm_from_stdin_into_an_hls_playlist(tmp_path: Path) -> None:
    speech = read_audio(DEMO / "speech.wav")[:SR]
    pcm = (np.clip(speech, -1, 1) * 32767).astype("<i2").tobytes()
    out = tmp_path / "live.m3u8"
    res = subprocess.run(_cmd("--audio", "-", "-o", str(out), "--keyframe-s", "0.4"), input=pcm, env=_env(),
                         capture_output=True, timeout=180)
    assert res.returncode == 0, res.stderr.decode()
    playlist = out.read_text()
    assert "#EXT-X-ENDLIST" in playlist and "live_00000.ts" in playlist
    frames, _ = _decoded(out)
    assert frames == num_video_frames(speech.size) == 25


def test_file_pacing_delivers_each_chunk_at_its_time() -> None:
    t = [0.0]
    got = list(paced_chunks(np.zeros(SR, np.float32), SR, 20, clock=lambda: t[0],
                            sleep=lambda s: t.__setitem__(0, t[0] + s)))
    assert [len(b) for b in got] == [1] * 50
    assert [b[0][1] for b in got] == pytest.approx([0.02 * (k + 1) for k in range(50)])


def test_a_busy_consumer_gets_the_missed_chunks_at_once() -> None:
    t = [0.0]

    class Slow:  # a stream whose pull takes 100 ms: five 20 ms chunks pile up meanwhile
        pushed: list[list[float]] = []

        def push_audio(self, x: np.ndarray, sample_rate: int, at: float) -> None:
            self.pushed[-1].append(at)

        def pull(self) -> list:
            t[0] += 0.1
            self.pushed.append([])
            return []

        def finish(self) -> None:
            pass

    s = Slow()
    s.pushed.append([])
    drive(s, paced_chunks(np.zeros(SR // 2, np.float32), SR, 20, clock=lambda: t[0],
                          sleep=lambda d: t.__setitem__(0, t[0] + d)))
    sizes = [len(p) for p in s.pushed if p]
    assert sizes[0] == 1 and max(sizes) == 5 and sum(sizes) == 25


@pytest.mark.parametrize("args, message", [
    (["-o", "{tmp}/out.avi"], "unsupported extension"),
    (["-o", "{tmp}/exists.mp4"], "already exists"),
    (["-o", "{tmp}/no/such/out.mp4"], "does not exist"),
    (["-o", "{tmp}/out.mp4", "--chunk-ms", "0"], "--chunk-ms must be > 0"),
])
def test_live_refuses_bad_command_lines_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       args: list[str], message: str) -> None:
    (tmp_path / "exists.mp4").write_bytes(b"x")
    argv = ["live", "--audio", str(DEMO / "speech.wav")] + [a.format(tmp=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.mp4"]  # nothing written
    assert (tmp_path / "exists.mp4").read_bytes() == b"x"
