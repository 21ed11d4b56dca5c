"""Synthetic speech (espeak-ng / flite) and the mouth and blink curves derived from it.

The mouth curve is a deterministic, local function of the audio: band energies
of 40 ms windows centred ``center_offset_s`` around each video frame time,
log-compressed with fixed (not per-clip) levels, then smoothed over +-2 frames
(co-articulation). Its support is therefore the 200 ms a model sees as the 20
mel rows around the frame, so the lips are learnable from that window.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from pcavs.errors import UserError

SAMPLE_RATE = 16000
FPS = 25.0

ESPEAK_VOICES = ("en-us", "en-gb", "en-us+f3", "en+m3", "en-gb+f2", "en-us+m7", "en-gb-scotland",
                 "en-029+f4", "en-us+f5", "en-gb-x-rp+m1", "en-us+klatt2", "en+f1")
FLITE_VOICES = ("slt", "rms", "awb", "kal16")

_WORDS = """
the a one two three four five six seven eight nine ten red blue green yellow black white orange purple
small big little large long short old new good bad happy sad quick slow bright dark warm cold soft loud
house river garden window table chair paper pencil letter music morning evening summer winter water
mountain forest city street market station friend family teacher doctor farmer driver sailor painter
dog cat horse bird fish rabbit mouse tiger lion monkey apple bread cheese coffee butter orange lemon
sugar milk rice soup cake go come see look walk run jump swim sing play read write open close bring
take make give find keep leave think know want need like love call help start stop turn move live
believe remember forget answer listen speak today tomorrow yesterday always never often sometimes
here there now then very really quite almost maybe please thank you hello goodbye yes no and but or
because before after under over between about around through without inside outside every many
some few more most other same different early late first last next again still already soon
world voice picture story question number minute hour moment reason problem idea people children
""".split()


class SpeechEngineMissing(UserError, RuntimeError):
    """The requested TTS program is not installed."""


@dataclass(frozen=True)
class Voice:
    """A TTS voice: engine ('espeak-ng' or 'flite'), voice name, and espeak rate/pitch."""

    engine: str = "espeak-ng"
    name: str = "en-us"
    speed: int = 160  # words per minute (espeak-ng only)
    pitch: int = 50  # 0..99 (espeak-ng only)


def have_espeak() -> bool:
    """Whether espeak-ng is on PATH."""
    return shutil.which("espeak-ng") is not None


def have_flite() -> bool:
    """Whether flite is on PATH."""
    return shutil.which("flite") is not None


def random_voice(rng: np.random.Generator, allow_flite: bool | None = None) -> Voice:
    """Mostly varied espeak-ng voices; a quarter flite voices if allowed (default: if installed).

    Draws the same random numbers either way, so the rest of a seeded stream
    does not depend on which engines are installed.
    """
    use_flite = rng.uniform() < 0.25
    flite_name = str(rng.choice(FLITE_VOICES))
    espeak = Voice("espeak-ng", str(rng.choice(ESPEAK_VOICES)), int(rng.integers(130, 190)),
                   int(rng.integers(25, 80)))
    if allow_flite is None:
        allow_flite = have_flite()
    return Voice("flite", flite_name) if use_flite and allow_flite else espeak


def random_sentence(rng: np.random.Generator, min_words: int = 4, max_words: int = 11) -> str:
    """A random sentence from the built-in word list."""
    n = int(rng.integers(min_words, max_words + 1))
    return " ".join(str(w) for w in rng.choice(_WORDS, size=n))


def read_wav(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read a PCM wav (any rate/channels) as mono float32 in [-1, 1] at ``sample_rate``."""
    with wave.open(str(path), "rb") as w:
        sr, ch, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
        raw = w.readframes(n)
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width in (2, 4):
        dt = np.int16 if width == 2 else np.int32
        x = np.frombuffer(raw, dt).astype(np.float32) / float(np.iinfo(dt).max)
    else:
        raise ValueError(f"unsupported wav sample width {width} bytes: {path}")
    x = x.reshape(-1, ch).mean(axis=1)
    if sr != sample_rate:
        g = gcd(sr, sample_rate)
        x = resample_poly(x, sample_rate // g, sr // g).astype(np.float32)
    return x.astype(np.float32)


def synthesize(text: str, voice: Voice | None = None, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Speak ``text`` with a TTS engine; returns mono float32 at ``sample_rate``."""
    voice = voice or Voice()
    with tempfile.TemporaryDirectory(prefix="pcavs_tts_") as tmp:
        out = Path(tmp) / "speech.wav"
        if voice.engine == "espeak-ng":
            exe = shutil.which("espeak-ng")
            if exe is None:
                raise SpeechEngineMissing("espeak-ng not found; install it: apt-get install espeak-ng")
            # text goes through stdin so nothing in it can be parsed as an option
            cmd = [exe, "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch), "-w", str(out), "--stdin"]
            subprocess.run(cmd, input=text.encode(), check=True, capture_output=True, timeout=60)
        elif voice.engine == "flite":
            exe = shutil.which("flite")
            if exe is None:
                raise SpeechEngineMissing("flite not found; install it: apt-get install flite")
            txt = Path(tmp) / "text.txt"
            txt.write_text(text)
            subprocess.run([exe, "-voice", voice.name, "-f", str(txt), "-o", str(out)], check=True,
                           capture_output=True, timeout=60)
        else:
            raise ValueError(f"unknown TTS engine {voice.engine!r}")
        return read_wav(out, sample_rate)


def _normalize(x: np.ndarray, rms_db: float = -20.0) -> np.ndarray:
    """Fixed loudness, so the fixed mouth-curve levels mean the same for every voice."""
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    if rms < 1e-6:
        return x
    y = x * (10 ** (rms_db / 20) / rms)
    return np.clip(y, -0.98, 0.98).astype(np.float32)


def speech_clip(seed: int, seconds: float, voice: Voice | None = None,
                sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, dict[str, Any]]:
    """Random sentences with pauses filling exactly ``seconds``; returns (audio, script metadata)."""
    rng = np.random.default_rng([seed, 0x5F])
    voice = voice or random_voice(rng)
    n = int(round(seconds * sample_rate))
    audio = np.zeros(n, np.float32)
    pos = int(rng.uniform(0.1, 0.5) * sample_rate)
    lines = []
    while pos < n:
        text = random_sentence(rng)
        x = _normalize(synthesize(text, voice, sample_rate))
        # trim the engines' own leading/trailing silence so our pauses set the rhythm
        loud = np.flatnonzero(np.abs(x) > 0.01)
        if len(loud):
            x = x[max(loud[0] - 160, 0): loud[-1] + 160]
        seg = x[: n - pos]
        audio[pos: pos + len(seg)] = seg
        lines.append({"text": text, "start": pos / sample_rate, "end": (pos + len(seg)) / sample_rate})
        pos += len(x) + int(rng.uniform(0.25, 0.8) * sample_rate)
    meta = {"voice": {"engine": voice.engine, "name": voice.name, "speed": voice.speed, "pitch": voice.pitch},
            "lines": lines}
    return audio, meta


# ---------------------------------------------------------------- mouth curves
@dataclass
class MouthTrack:
    """Per-video-frame mouth opening (0 closed .. 1 wide), width (0.5 neutral) and blink (0..1)."""

    open: np.ndarray
    width: np.ndarray
    blink: np.ndarray

    def __len__(self) -> int:
        return len(self.open)

    @classmethod
    def closed(cls, num_frames: int) -> MouthTrack:
        """Silent, neutral, eyes open."""
        return cls(np.zeros(num_frames), np.full(num_frames, 0.5), np.zeros(num_frames))


# Fixed dB levels (for audio at the -20 dBFS speech level of speech_clip): what counts as closed / wide open.
_OPEN_FLOOR_DB, _OPEN_RANGE_DB = -32.0, 44.0
_BANDS_HZ = ((300.0, 1000.0), (1000.0, 3000.0), (3000.0, 8000.0))
_COARTICULATION = np.array([0.1, 0.2, 0.4, 0.2, 0.1])


def band_energies(audio: np.ndarray, num_frames: int, sample_rate: int = SAMPLE_RATE, fps: float = FPS,
                  center_offset_s: float = -0.015, window_s: float = 0.04) -> np.ndarray:
    """(num_frames, 3) log band powers (dB) of Hann windows centred at i/fps + center_offset_s."""
    win = int(round(window_s * sample_rate))
    centres = np.round((np.arange(num_frames) / fps + center_offset_s) * sample_rate).astype(np.int64)
    pad = win
    x = np.concatenate([np.zeros(pad, np.float32), np.asarray(audio, np.float32), np.zeros(pad + win, np.float32)])
    starts = np.clip(centres - win // 2 + pad, 0, len(x) - win)
    frames = x[starts[:, None] + np.arange(win)[None, :]] * np.hanning(win).astype(np.float32)
    nfft = 1 << int(np.ceil(np.log2(win)))
    spec = np.abs(np.fft.rfft(frames, n=nfft, axis=1)) ** 2 / win
    freqs = np.fft.rfftfreq(nfft, 1.0 / sample_rate)
    bands = [spec[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in _BANDS_HZ]
    return 10.0 * np.log10(np.stack(bands, axis=1) + 1e-10)


def _smooth(v: np.ndarray) -> np.ndarray:
    pad = np.pad(v, 2, mode="edge")
    return np.convolve(pad, _COARTICULATION, mode="valid")


def blink_track(num_frames: int, seed: int, fps: float = FPS) -> np.ndarray:
    """Eye closure per frame: ~150 ms blinks every 1.5-5 s at seeded random times."""
    rng = np.random.default_rng([seed, 0xB1])
    t = np.arange(num_frames) / fps
    out = np.zeros(num_frames)
    if num_frames == 0:
        return out
    c = rng.uniform(0.3, 2.5)
    while c < t[-1] + 0.1:
        # 60 ms fully shut (always hit by a 40 ms frame grid) with 45 ms cosine ramps either side
        d = np.abs(t - c)
        ramp = 0.5 + 0.5 * np.cos(np.pi * np.clip((d - 0.03) / 0.045, 0.0, 1.0))
        out = np.maximum(out, np.where(d <= 0.075, ramp, 0.0))
        c += rng.uniform(1.5, 5.0)
    return out


def mouth_track(audio: np.ndarray, num_frames: int | None = None, *, sample_rate: int = SAMPLE_RATE,
                fps: float = FPS, blink_seed: int = 0, center_offset_s: float = -0.015) -> MouthTrack:
    """Mouth curves from audio (see module docstring); silence gives exactly 0 opening."""
    if num_frames is None:
        num_frames = int(round(len(audio) / sample_rate * fps))
    e = band_energies(audio, num_frames, sample_rate, fps, center_offset_s)
    low, mid, high = e[:, 0], e[:, 1], e[:, 2]
    voiced = 10.0 * np.log10(10 ** (low / 10) + 10 ** (mid / 10))
    raw_open = np.clip((voiced - _OPEN_FLOOR_DB) / _OPEN_RANGE_DB, 0.0, 1.0) ** 1.5
    # bright spectra (ee, s) spread the lips; dark ones (oo, oh) round them; only while speaking
    balance = np.tanh((high - 0.5 * (low + mid) + 11.0) / 7.0)
    gate = np.clip(raw_open * 3.0, 0.0, 1.0)
    raw_width = 0.5 + 0.4 * balance * gate
    return MouthTrack(np.clip(_smooth(raw_open), 0.0, 1.0), np.clip(_smooth(raw_width), 0.0, 1.0),
                      blink_track(num_frames, blink_seed, fps))
