"""Images through Pillow: RGB uint8, upright per EXIF, alpha composited on white."""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .common import IMAGE_MAX_PIXELS, MediaError, require_file


def _scale16(arr: np.ndarray) -> np.ndarray:
    # 0..65535 -> 0..255 with rounding (65535 maps to 255, 32896 to 128).
    a = np.clip(arr.astype(np.int64), 0, 65535)
    return ((a * 255 + 32767) // 65535).astype(np.uint8)


def _pil_to_rgb8(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(im)
        # 'I' holds 32-bit ints; Pillow uses it for 16-bit PNG/TIFF data, so treat it as 16-bit
        # unless every value already fits 8 bits.
        if mode == "I" and arr.max(initial=0) <= 255:
            gray = np.clip(arr, 0, 255).astype(np.uint8)
        else:
            gray = _scale16(arr)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        scale = 255.0 if finite.size and finite.max() <= 1.0 else 1.0  # [0,1] floats vs 0..255 floats
        gray = np.clip(np.nan_to_num(arr) * scale + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info)
    if has_alpha:
        # Composite on white: transparent cut-out portraits are meant to be seen on a light page,
        # and the RGB stored under alpha=0 is arbitrary (often black), so dropping alpha is worse.
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint16)
        a = rgba[:, :, 3:4]
        rgb = (rgba[:, :, :3] * a + 255 * (255 - a) + 127) // 255
        return rgb.astype(np.uint8)
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def read_image(path: str | os.PathLike[str], max_pixels: int = IMAGE_MAX_PIXELS) -> np.ndarray:
    """Read an image file as RGB ``uint8`` (H, W, 3), upright per EXIF, alpha composited on white.

    The size is checked from the header before any pixel is decoded; images above
    ``max_pixels`` are refused (Pillow itself refuses anything above ~179 MP).
    """
    p = require_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we apply our own limit
        try:
            im = Image.open(p)  # lazy: parses the header only
        except Image.DecompressionBombError as e:
            m = re.search(r"\((\d+) pixels\)", str(e))
            size = f"{int(m.group(1)) / 1e6:.0f} MP" if m else "too large"
            raise MediaError(
                f"{p}: image is {size}, larger than the {max_pixels / 1e6:.0f} MP limit; downscale it "
                "(e.g. to at most 4096 px on the long side)"
            ) from None
        except UnidentifiedImageError:
            raise MediaError(f"{p}: not an image Pillow can read; use a PNG, JPEG, WebP, BMP or TIFF file") from None
        except OSError as e:
            raise MediaError(f"{p}: cannot open image ({e}); check the file and its permissions") from None
    with im:
        w, h = im.size
        if w * h > max_pixels:
            raise MediaError(
                f"{p}: image is {w}x{h} ({w * h / 1e6:.0f} MP), larger than the {max_pixels / 1e6:.0f} MP "
                "limit; downscale it (e.g. to at most 4096 px on the long side)"
            )
        if w == 0 or h == 0:
            raise MediaError(f"{p}: image has zero size ({w}x{h}); use a real image")
        try:
            im.load()
            try:
                upright = ImageOps.exif_transpose(im)
            except (SyntaxError, ValueError, TypeError, KeyError, OSError):
                upright = im  # unreadable EXIF: keep the stored orientation rather than fail
            if upright is None:
                upright = im
            return _pil_to_rgb8(upright)
        except (OSError, SyntaxError, ValueError) as e:
            raise MediaError(f"{p}: image data is truncated or corrupt ({e}); re-export or re-download it") from None
