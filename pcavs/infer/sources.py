"""Inference inputs: validation of paths and arrays, the identity photo, and time-aligned speech features.

Everything here is cheap next to running the model, so :func:`pcavs.infer.pipeline.prepare_inputs`
calls it before any weights are loaded: a bad file fails in a fraction of a second with a message that
names the file, says what is wrong and what to do, and no output is ever started.

Audio timing. The official front end (``pcavs.audio``) drives video frame ``i`` with mel rows
``[4(i-2), 4(i-2)+20)``. Row ``r`` is an STFT frame of 1280 samples whose centre lies at sample
``160 r - 480`` (lws pads 1120 zeros on the left), so the 20-row window of frame ``i`` is centred at
sample ``640 i - 240``, 15 ms before the frame's display time ``i / 25`` s. That is the pairing the
networks were trained with (the official model, and ours: ``pcavs.data`` pairs frame ``f`` with the
same rows), so a trained model maps the window centred at ``t - 15 ms`` to the mouth at ``t``: with
these windows frame ``i`` shows the mouth for the sound at ``i / 25`` s and the output is in sync.
``align_audio=True`` centres every window on its frame instead (features computed on the waveform
advanced by 240 samples: ``lead`` zeros prepended and the first ``drop`` rows discarded, with
``drop * 160 - lead = 240``); for a model trained with the official pairing that makes the picture
lead the sound by 15 ms, so it is off by default and meant for models trained with centred windows.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from pcavs.audio import DEFAULT_AUDIO, AudioConfig, mel_windows, melspectrogram, num_stft_frames
from pcavs.errors import UserError
from pcavs.media import _VIDEO_FORMATS, MediaError, read_audio, read_image, require_file

__all__ = [
    "InputError",
    "InputWarning",
    "SILENCE_PEAK",
    "check_input_file",
    "check_output_path",
    "input_role",
    "load_audio",
    "load_image",
    "window_centre_offset_samples",
    "window_start_rows",
    "feature_shift",
    "mel_rows",
    "rms_gain",
    "speech_features",
    "speech_windows",
    "window_last_row",
    "lookahead_samples",
    "timing_error_ms",
]

#: Peak amplitude below which the audio counts as silent (-60 dBFS).
SILENCE_PEAK = 1e-3
_SUM_BLOCK = 1 << 20  # samples per block when summing squares: bounded float64 temporaries
_MEL_CHUNK_ROWS = 500  # mel rows per chunk (5 s): the STFT temporaries stay ~15 MB at any length


class InputError(UserError, ValueError):
    """An input or option the user can fix (a path, an array, a combination of options)."""


class InputWarning(UserWarning):
    """Usable input that probably is not what the user meant (e.g. silent audio)."""


# ------------------------------------------------------------------------------------------ paths
def check_input_file(path: str | os.PathLike[str], role: str) -> Path:
    """The path of an input file that exists and is a file; ``role`` names it in the message."""
    return require_file(path, role, InputError)


@contextmanager
def input_role(role: str, path: object) -> Iterator[None]:
    """Prefix media errors about ``path`` with its role: "pose video x.mp4: file is truncated ..."."""
    try:
        yield
    except MediaError as exc:
        text = str(exc)
        if isinstance(path, str | os.PathLike) and text.startswith(str(path)):
            raise MediaError(f"{role} {text}") from None
        raise


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """Refuse an output the writer would refuse, before any work is done."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: is a folder; give a file name such as {p / 'out.mp4'}")
    if not p.parent.is_dir():
        raise InputError(f"{p}: output folder {p.parent} does not exist; create it or choose another -o")
    if p.suffix.lower() not in _VIDEO_FORMATS:
        raise InputError(f"{p}: unsupported output extension {p.suffix!r}; use .mp4 (or .mov/.mkv)")
    return p


# ------------------------------------------------------------------------------------------ image
def load_image(source: str | os.PathLike[str] | np.ndarray, role: str = "identity photo") -> tuple[np.ndarray, str]:
    """``(RGB uint8 image, name for messages)`` from a path (any Pillow format) or an array."""
    if isinstance(source, np.ndarray):
        arr = source
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (3, 4) or min(arr.shape[:2]) < 2:
            raise InputError(
                f"the {role} array must be an HxWx3 uint8 RGB image, got shape {arr.shape} {arr.dtype}"
            )
        return np.ascontiguousarray(arr[:, :, :3]), f"the {role} array"
    p = check_input_file(source, role)
    with input_role(role, p):
        return read_image(p), str(p)


# ------------------------------------------------------------------------------------------ audio
def load_audio(
    source: str | os.PathLike[str] | np.ndarray, fps: int = 25, cfg: AudioConfig = DEFAULT_AUDIO
) -> tuple[np.ndarray, str, list[str]]:
    """``(float32 mono waveform at cfg.sample_rate, name, warnings)`` from a path or an array.

    Arrays are taken to be mono at ``cfg.sample_rate`` (16 kHz). The audio must last at least one
    video frame; silent audio is allowed but reported (a warning is issued and returned).
    """
    sr = cfg.sample_rate
    if isinstance(source, np.ndarray | torch.Tensor):
        wave = source.detach().cpu().numpy() if isinstance(source, torch.Tensor) else source
        name = "the audio array"
        if wave.ndim != 1:
            raise InputError(f"{name} must be 1-D mono at {sr} Hz, got shape {wave.shape}; downmix it first")
        if wave.dtype.kind not in "fiu":
            raise InputError(f"{name} must hold numbers, got dtype {wave.dtype}")
        wave = np.asarray(wave, dtype=np.float32)
        if wave.size == 0:
            raise InputError(f"{name} contains no samples; pass speech audio")
        if not np.all(np.isfinite(wave)):
            raise InputError(f"{name} contains NaN or infinite samples; fix the waveform")
    else:
        p = check_input_file(source, "audio")
        with input_role("audio", p):
            wave = read_audio(p, sr=sr)  # MediaError: not media, truncated, no audio stream, no samples
        name = f"audio {p}"
    frame = sr / fps
    if wave.size < frame:
        raise InputError(
            f"{name}: the audio lasts {wave.size / sr * 1000:.1f} ms, shorter than one video frame "
            f"({1000 / fps:.0f} ms at {fps} fps); use a longer recording"
        )
    notes = []
    peak = float(np.max(np.abs(wave)))
    if peak < SILENCE_PEAK:
        level = "-inf" if peak == 0 else f"{20 * math.log10(peak):.0f}"
        notes.append(
            f"{name}: the audio is silent (peak {level} dBFS); the video is made, but the lips will not "
            "follow any speech; check the file or its volume"
        )
    for note in notes:
        warnings.warn(note, InputWarning, stacklevel=2)
    return wave, name, notes


# ------------------------------------------------------------------------------------------ timing
def window_centre_offset_samples(cfg: AudioConfig = DEFAULT_AUDIO) -> int:
    """Where the official window of frame ``i`` is centred, relative to the frame's time, in samples.

    Row ``r`` is centred at sample ``hop*r - (n_fft - hop) + n_fft/2``; the window starts at row
    ``rows_per_frame * (i - mouth_offset_frames)`` and spans ``window_rows`` rows. -240 (-15 ms) for the
    official constants.
    """
    centre_row = -cfg.rows_per_frame * cfg.mouth_offset_frames + (cfg.window_rows - 1) / 2
    offset = cfg.hop * centre_row - (cfg.n_fft - cfg.hop) + cfg.n_fft / 2
    if offset != int(offset):
        raise ValueError(f"window centre falls between samples ({offset}); unsupported audio config")
    return int(offset)


def _shift(align_audio: bool, cfg: AudioConfig) -> tuple[int, int]:
    """``(lead zeros, rows dropped)`` that advance the features by the window's offset."""
    advance = -window_centre_offset_samples(cfg) if align_audio else 0
    if advance <= 0:
        return 0, 0  # nothing to compensate (or a config whose window lags: not needed here)
    drop = -(-advance // cfg.hop)
    return drop * cfg.hop - advance, drop


def window_start_rows(frames: Sequence[int], fps: int = 25, cfg: AudioConfig = DEFAULT_AUDIO) -> list[int]:
    """First mel row of each frame's window; exactly ``4 (i - 2)`` at 25 fps.

    Other frame rates round the frame time to the 10 ms row grid (at most 5 ms off).
    """
    rows_per_second = cfg.sample_rate / cfg.hop
    back = cfg.rows_per_frame * cfg.mouth_offset_frames
    if fps * cfg.rows_per_frame == rows_per_second:
        return [cfg.rows_per_frame * int(i) - back for i in frames]
    return [int(math.floor(i * rows_per_second / fps + 0.5)) - back for i in frames]


def rms_gain(wave: np.ndarray, cfg: AudioConfig = DEFAULT_AUDIO) -> float:
    """The factor that brings ``wave``'s RMS to ``cfg.rms`` (0 for silence), summed in bounded blocks.

    The official front end normalises the whole clip; a live stream cannot, and passes its own gain
    (:class:`pcavs.infer.stream.TalkingFaceStream`), so the gain is a separate step.
    """
    x = np.asarray(wave, dtype=np.float32)
    sumsq = 0.0
    for s in range(0, x.size, _SUM_BLOCK):
        block = x[s : s + _SUM_BLOCK].astype(np.float64)
        sumsq += float(np.dot(block, block))
    rms = math.sqrt(sumsq / x.size) if x.size else 0.0
    # Same rule as pcavs.audio.normalize_rms: silence stays silence instead of becoming inf/NaN.
    return cfg.rms / rms if math.isfinite(rms) and rms >= 1e-12 else 0.0


def feature_shift(align_audio: bool, cfg: AudioConfig = DEFAULT_AUDIO) -> tuple[int, int]:
    """``(lead, drop)``: feature row ``k`` is row ``k + drop`` of the signal ``lead`` zeros + wave."""
    return _shift(align_audio, cfg)


def mel_rows(
    x: np.ndarray, x_start: int, r0: int, r1: int, scale: float, cfg: AudioConfig = DEFAULT_AUDIO
) -> torch.Tensor:
    """Mel rows ``r0 .. r1-1`` (float32, (r1 - r0, n_mels)) of a signal known in part.

    ``x`` (float32) holds samples ``x_start .. x_start + len(x) - 1`` of the signal, times ``scale``;
    every other sample is zero (the STFT's padding, or audio not needed). Row ``r`` reads samples
    ``hop*r - (n_fft - hop) .. hop*r + hop - 1``, so it is exact once those are in ``x``. The one
    implementation of the chunked mel: :func:`speech_features` (whole clips) and the live stream
    (:mod:`pcavs.infer.stream_features`) both call it, so a chunk boundary never changes a row.
    """
    context = cfg.n_fft - cfg.hop
    if context % cfg.hop:
        raise ValueError("n_fft - hop must be a multiple of hop for chunked features")
    ctx_rows = context // cfg.hop
    # Chunk = the signal from sample hop*r0 - context, long enough that its rows ctx_rows ..
    # ctx_rows + (r1 - r0) are the whole signal's rows r0 .. r1 (lws pads the left with `context` zeros).
    start = cfg.hop * r0 - context
    seg = np.zeros(cfg.hop * (r1 - r0 + ctx_rows), dtype=np.float64)
    a, b = max(start - x_start, 0), min(start - x_start + seg.size, x.size)
    if a < b:
        seg[a - (start - x_start) : b - (start - x_start)] = x[a:b].astype(np.float64) * scale
    mel = melspectrogram(seg, normalize=False, cfg=cfg)
    return mel[ctx_rows : ctx_rows + (r1 - r0)]


def speech_features(
    wave: np.ndarray, align_audio: bool = False, cfg: AudioConfig = DEFAULT_AUDIO, chunk_rows: int = _MEL_CHUNK_ROWS
) -> torch.Tensor:
    """The official normalised log-mel (rows, n_mels), computed in chunks; see the module docstring.

    Equal to ``melspectrogram(wave)`` when ``align_audio`` is False (up to the last bit of the RMS
    scale, which is summed blockwise here). Chunking keeps the float64 temporaries a few MB however
    long the audio is: each chunk is the exact STFT input its rows see (1120 samples of context on
    the left, zeros beyond the ends, as lws pads), so the rows are identical to a single pass.
    """
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D waveform, got shape {x.shape}")
    scale = rms_gain(x, cfg)
    lead, drop = _shift(align_audio, cfg)
    total_rows = num_stft_frames(lead + x.size, cfg)
    out = torch.zeros((max(total_rows - drop, 0), cfg.n_mels), dtype=torch.float32)
    for r0 in range(drop, total_rows, chunk_rows):
        r1 = min(r0 + chunk_rows, total_rows)
        out[r0 - drop : r1 - drop] = mel_rows(x, lead, r0, r1, scale, cfg)
    return out


def speech_windows(
    mel: torch.Tensor, frames: Sequence[int], fps: int = 25, cfg: AudioConfig = DEFAULT_AUDIO, first_row: int = 0
) -> torch.Tensor:
    """Model inputs (n, 1, n_mels, window_rows) for video ``frames``; rows outside the mel are silence.

    ``mel`` holds rows ``first_row ..`` of the features (a live stream keeps only the recent rows).
    """
    if first_row == 0 and fps * cfg.rows_per_frame * cfg.hop == cfg.sample_rate:
        return mel_windows(mel, list(frames), cfg=cfg)  # the official indexing, unchanged
    out = mel.new_zeros((len(frames), 1, cfg.n_mels, cfg.window_rows))
    for j, a in enumerate(window_start_rows(frames, fps, cfg)):
        a -= first_row
        lo, hi = max(a, 0), min(a + cfg.window_rows, mel.shape[0])
        if lo < hi:
            out[j, 0, :, lo - a : hi - a] = mel[lo:hi].T
    return out


def window_last_row(frame: int, fps: int = 25, cfg: AudioConfig = DEFAULT_AUDIO) -> int:
    """The last feature row that frame ``frame``'s speech window reads."""
    return window_start_rows([frame], fps, cfg)[0] + cfg.window_rows - 1


def lookahead_samples(fps: int = 25, align_audio: bool = False, cfg: AudioConfig = DEFAULT_AUDIO) -> int:
    """How far past a frame's display time its speech window reaches, in samples (the worst frame).

    Frame ``i`` (shown at ``i / fps``) cannot be made before this much audio after ``i / fps`` has
    arrived: the algorithmic latency of any live use. 1920 samples (120 ms) for the official
    constants at 25 fps (the window spans 80 ms of past and 120 ms of future rows, and its last row
    reads one hop past its centre), 2160 (135 ms) with ``align_audio``.
    """
    lead, drop = _shift(align_audio, cfg)
    worst = -(10**9)
    for i in range(fps):  # the pattern repeats every second
        # last row r (of the shifted signal) reads samples up to hop*(r+1) - 1 of lead zeros + wave
        need = cfg.hop * (window_last_row(i, fps, cfg) + drop + 1) - lead
        worst = max(worst, need - (i * cfg.sample_rate) // fps)
    return worst


def timing_error_ms(fps: int, align_audio: bool, cfg: AudioConfig = DEFAULT_AUDIO) -> tuple[float, float]:
    """``(mean, max |.|)`` over one second of frames of the picture's lead over the sound, in ms.

    Measured against the training pairing (window centred 15 ms before its frame): ``(0, 0)`` at 25 fps
    with the official windows, ``(15, 15)`` with ``align_audio``; other frame rates add the rounding
    of frame times to the 10 ms mel rows.
    """
    frames = list(range(fps))
    advance = -window_centre_offset_samples(cfg) if align_audio else 0
    trained = window_centre_offset_samples(cfg)
    errs = []
    for i, a in zip(frames, window_start_rows(frames, fps, cfg), strict=True):
        # centre of rows [a, a + W) on the official grid, moved by the advance applied to the features
        centre = cfg.hop * (a + (cfg.window_rows - 1) / 2) - (cfg.n_fft - cfg.hop) + cfg.n_fft / 2 + advance
        errs.append((centre - i * cfg.sample_rate / fps - trained) * 1000 / cfg.sample_rate)
    return float(np.mean(errs)), float(np.max(np.abs(errs)))
