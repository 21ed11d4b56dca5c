"""Audio of any PyAV-readable file as float32 samples, codec priming and padding removed."""

from __future__ import annotations

import os
from fractions import Fraction

import av
import av.error
import numpy as np

from .common import MediaError, _open_input


def read_audio(path: str | os.PathLike[str], sr: int = 16000) -> np.ndarray:
    """Decode the first audio stream of any PyAV-readable file to float32 mono at ``sr`` Hz.

    Encoder priming is removed: FFmpeg applies the container's skip information (MP4 edit list,
    MP3 LAME header, Opus pre-skip); samples that still carry negative timestamps are dropped and
    the last frame is cut to its packet duration (AAC end padding), so a sound at time t in the
    source is at sample ``t * sr`` in the result.
    """
    return _decode_audio(path, sr, "mono")[0].reshape(-1)


def read_audio_native(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """``(samples (N, C) float32, rate)``: the first audio stream at its own rate, mono or stereo (more
    channels are downmixed to stereo), priming removed as in :func:`read_audio`. For the output's
    soundtrack: the model reads :func:`read_audio`'s 16 kHz mono, the viewer hears the original."""
    p, container = _open_input(path)
    with container:
        if not container.streams.audio:
            raise MediaError(f"{p}: has no audio stream; pass an audio file or a video with sound")
        stream = container.streams.audio[0]
        rate, channels = int(stream.rate or 16000), int(stream.channels or 1)
    layout = "mono" if channels == 1 else "stereo"
    return _decode_audio(path, rate, layout)[0], rate


def _decode_audio(path: str | os.PathLike[str], sr: int, layout: str) -> tuple[np.ndarray, int]:
    """(samples (N, C), rate) of the first audio stream resampled to ``sr`` Hz and ``layout``."""
    nch = 1 if layout == "mono" else 2
    p, container = _open_input(path)
    with container:
        if not container.streams.audio:
            raise MediaError(f"{p}: has no audio stream; pass an audio file or a video with sound")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout=layout, rate=sr)
        chunks: list[np.ndarray] = []
        drop_s = Fraction(0)  # leading seconds with negative timestamps (priming not removed)
        tail_excess_s = Fraction(0)  # decoded-but-padding seconds in the last frame
        decoded_s = Fraction(0)
        try:
            for frame in container.decode(stream):
                if frame.samples == 0:
                    continue
                rate = frame.sample_rate
                tb = frame.time_base
                if frame.pts is not None and tb is not None and frame.pts < 0:
                    drop_s += min(Fraction(frame.samples, rate), -frame.pts * tb)
                tail_excess_s = Fraction(0)
                if frame.duration and tb is not None:
                    dur = frame.duration * tb
                    # Only trust a shorter duration when it is beyond timestamp rounding (MKV: 1 ms).
                    if 0 < dur and dur + tb < Fraction(frame.samples, rate):
                        tail_excess_s = Fraction(frame.samples, rate) - dur
                decoded_s += Fraction(frame.samples, rate)
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1, nch))  # packed: interleaved channels
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1, nch))
        except av.error.FFmpegError as e:
            raise MediaError(
                f"{p}: audio decoding failed after {float(decoded_s):.2f} s ({e.strerror or e}); the "
                "file is truncated or corrupt; re-export it"
            ) from None
    wave = np.concatenate(chunks) if chunks else np.zeros((0, nch), np.float32)
    start = round(drop_s * sr)
    stop = round((decoded_s - tail_excess_s) * sr)
    wave = wave[start : max(start, min(stop, len(wave)))]
    if wave.size == 0:
        raise MediaError(f"{p}: the audio stream contains no samples; use a file with actual sound")
    return np.ascontiguousarray(wave, dtype=np.float32), sr
