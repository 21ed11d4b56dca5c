"""Parametric face identities for SynthTalk.

A :class:`FaceIdentity` is a flat bag of shape and colour parameters; every
distance is in *head units* (the head ellipsoid's half-height is about 1), so
one identity renders identically at any image size. ``sample_identity(seed)``
draws one deterministically from an integer seed.
"""

from __future__ import annotations

import colorsys
import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

RGB = tuple[int, int, int]

HAIR_STYLES = ("short", "long", "bob", "buzz", "afro", "bald")
BEARD_STYLES = ("none", "stubble", "full", "goatee")

# Salt mixed into every seed so identity seed 7 and pose seed 7 are unrelated streams.
_SALT_IDENTITY = 0x1D
_SALT_BACKGROUND = 0xB6

# Palettes of plausible real-world colours; identities interpolate between neighbours.
_SKIN = [(255, 226, 200), (246, 206, 176), (234, 186, 150), (214, 160, 120), (190, 136, 96),
         (160, 106, 74), (128, 82, 56), (98, 62, 42), (74, 46, 32)]
_HAIR = [(22, 18, 16), (48, 32, 22), (82, 54, 34), (120, 80, 48), (160, 118, 70), (206, 168, 108),
         (232, 214, 170), (128, 52, 26), (176, 86, 40), (140, 138, 136), (214, 212, 206)]
_DYED = [(60, 80, 170), (190, 70, 140), (60, 140, 110), (120, 60, 160)]
_EYES = [(96, 60, 34), (60, 38, 22), (132, 98, 52), (78, 118, 70), (70, 116, 176), (112, 132, 146),
         (166, 118, 44)]
_LIPSTICK = [(176, 30, 48), (200, 80, 110), (120, 36, 60), (214, 110, 100)]


@dataclass(frozen=True)
class FaceIdentity:
    """Look of one synthetic person; all lengths in head units (head half-height ~ 1)."""

    seed: int
    head_width: float  # ellipsoid semi-axis x
    head_height: float  # ellipsoid semi-axis y
    head_depth: float  # ellipsoid semi-axis z
    jaw_taper: float  # 0 = square jaw .. 0.4 = narrow, pointed lower face
    chin: float  # extra downward length of the chin
    skin: RGB
    hair: RGB
    hair_style: str  # one of HAIR_STYLES
    hairline: float  # front hairline height, fraction of head_height
    hair_volume: float  # how far hair stands off the scalp
    fringe: float  # 0 = none .. 1 = bangs down to the brows
    fringe_jag: float  # 0 = straight fringe edge .. 1 = jagged
    hair_part: float  # -1..1 asymmetry of the front hairline (side parting)
    hair_length: float  # how far long styles hang below the head centre
    beard: str  # one of BEARD_STYLES
    eye_color: RGB
    eye_y: float  # eye-line height
    eye_spacing: float  # half distance between the eye centres
    eye_width: float  # half width of the eye opening
    eye_height: float  # height of the open upper lid above the eye line
    eye_tilt: float  # canthal tilt (outer corner up when > 0)
    brow_color: RGB
    brow_gap: float  # brow height above the upper lid
    brow_thickness: float
    brow_arch: float
    brow_tilt: float
    nose_length: float
    nose_width: float
    nose_depth: float  # protrusion of the tip
    mouth_gap: float  # nose tip to mouth line
    mouth_width: float  # half width at rest
    lip_color: RGB
    lip_upper: float  # upper lip thickness
    lip_lower: float  # lower lip thickness
    max_open: float  # inner-lip gap at mouth_open = 1
    ear_size: float
    bg_top: RGB
    bg_bottom: RGB
    bg_angle: float  # gradient direction in degrees
    shirt: RGB

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FaceIdentity:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _mix(c1: RGB | np.ndarray, c2: RGB | np.ndarray, t: float) -> RGB:
    a, b = np.asarray(c1, float), np.asarray(c2, float)
    return _rgb(a + (b - a) * t)


def _rgb(c: np.ndarray | tuple) -> RGB:
    r, g, b = (int(round(float(v))) for v in np.clip(np.asarray(c, float), 0, 255))
    return (r, g, b)


def _palette(rng: np.random.Generator, palette: list[RGB], jitter: float) -> RGB:
    """Random point between two neighbouring palette entries, plus per-channel jitter."""
    i = int(rng.integers(len(palette)))
    j = min(i + 1, len(palette) - 1)
    c = _mix(palette[i], palette[j], float(rng.uniform()))
    return _rgb(np.asarray(c, float) + rng.normal(0, jitter, 3))


def _hsv(h: float, s: float, v: float) -> RGB:
    return _rgb(np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255)


def sample_background(seed: int) -> dict[str, Any]:
    """Background gradient (``bg_top``, ``bg_bottom``, ``bg_angle``) from a seed.

    Kept separate so a dataset can give each video of one identity its own room.
    """
    rng = np.random.default_rng([seed, _SALT_BACKGROUND])
    h = rng.uniform()
    s = rng.uniform(0.05, 0.55)
    v = rng.uniform(0.25, 0.95)
    top = _hsv(h, s, v)
    bottom = _hsv(h + rng.uniform(-0.15, 0.15), s * rng.uniform(0.5, 1.3), v * rng.uniform(0.45, 0.95))
    return {"bg_top": top, "bg_bottom": bottom, "bg_angle": float(rng.uniform(-40, 40))}


def sample_identity(seed: int) -> FaceIdentity:
    """Draw a face deterministically from a non-negative integer seed."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    rng = np.random.default_rng([seed, _SALT_IDENTITY])
    u = rng.uniform

    skin = _palette(rng, _SKIN, 5.0)
    style = str(rng.choice(HAIR_STYLES, p=[0.34, 0.2, 0.14, 0.12, 0.1, 0.1]))
    if rng.uniform() < 0.05:
        hair = _palette(rng, _DYED, 10.0)
    else:
        hair = _palette(rng, _HAIR, 6.0)
    if style == "buzz":  # scalp shows through very short hair
        hair = _mix(hair, skin, 0.35)
    grey = abs(hair[0] - hair[2]) < 12 and hair[0] > 120
    brow = _mix(hair, (30, 22, 18), 0.25 if grey else 0.45)
    volume = {"short": u(0.03, 0.09), "long": u(0.04, 0.1), "bob": u(0.06, 0.13), "buzz": u(0.005, 0.015),
              "afro": u(0.2, 0.32), "bald": 0.0}[style]
    fringe = float(u(0.3, 1.0)) if style in ("short", "long", "bob") and rng.uniform() < 0.35 else 0.0
    length = {"long": u(1.5, 2.2), "bob": u(0.75, 1.0)}.get(style, 0.0)

    beard = "none"
    if rng.uniform() < 0.3:
        beard = str(rng.choice(BEARD_STYLES[1:], p=[0.45, 0.35, 0.2]))
    if rng.uniform() < 0.15:
        lip = _palette(rng, _LIPSTICK, 6.0)
    else:
        lip = _mix(skin, (190, 70, 80), u(0.25, 0.45))
        lip = _mix(lip, (0, 0, 0), u(0.0, 0.2))

    eye_width = u(0.1, 0.14)
    nose_length = u(0.26, 0.36)
    return FaceIdentity(
        seed=int(seed),
        head_width=u(0.72, 0.86),
        head_height=u(0.98, 1.1),
        head_depth=u(0.88, 1.0),
        jaw_taper=u(0.0, 0.38),
        chin=u(0.0, 0.12),
        skin=skin,
        hair=hair,
        hair_style=style,
        hairline=u(0.5, 0.68) if style != "bald" else 1.0,
        hair_volume=float(volume),
        fringe=fringe,
        fringe_jag=u(0.0, 1.0) if fringe else 0.0,
        hair_part=u(-1.0, 1.0),
        hair_length=float(length),
        beard=beard,
        eye_color=_palette(rng, _EYES, 8.0),
        eye_y=u(0.04, 0.14),
        eye_spacing=u(0.26, 0.33),
        eye_width=eye_width,
        eye_height=u(0.42, 0.58) * eye_width,
        eye_tilt=u(-0.08, 0.18),
        brow_color=brow,
        brow_gap=u(0.05, 0.11),
        brow_thickness=u(0.025, 0.06),
        brow_arch=u(0.0, 0.06),
        brow_tilt=u(-0.06, 0.05),
        nose_length=nose_length,
        nose_width=u(0.07, 0.115),
        nose_depth=u(0.12, 0.22),
        mouth_gap=u(0.15, 0.22),
        mouth_width=u(0.16, 0.24),
        lip_color=lip,
        lip_upper=u(0.025, 0.045),
        lip_lower=u(0.035, 0.06),
        max_open=u(0.17, 0.24),
        ear_size=u(0.85, 1.15),
        shirt=_hsv(u(), u(0.0, 0.7), u(0.15, 0.9)),
        **sample_background(seed),
    )
