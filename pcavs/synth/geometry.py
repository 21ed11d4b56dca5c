"""3D head geometry for SynthTalk, in head coordinates.

Head coordinates: origin at the head centre, x to the image right of a frontal
face, y up, z towards the camera; lengths in head units. The head is an
ellipsoid with a tapered jaw; features are 2D outlines in the frontal (x, y)
plane lifted onto the ellipsoid surface, so rotating the head moves them as on
a real 3D head. Everything identity-specific but pose-independent is built once
in :class:`HeadGeometry`; per-frame parts (mouth, lids, jaw drop) are cheap
vector maths.
"""

from __future__ import annotations

import numpy as np

from .face_model import FaceIdentity


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _circular_smooth(v: np.ndarray, k: int) -> np.ndarray:
    """Box-smooth a periodic sequence (rounds the corners of interpolated hairlines)."""
    if k <= 1:
        return v
    pad = np.concatenate([v[-k:], v, v[:k]])
    out = np.convolve(pad, np.ones(k) / k, mode="same")
    return out[k:-k]


class HeadGeometry:
    """Identity-specific 3D geometry; per-frame methods return head-coordinate points."""

    def __init__(self, identity: FaceIdentity, detail: float = 1.0) -> None:
        self.ident = ident = identity
        self.a, self.b, self.c = ident.head_width, ident.head_height, ident.head_depth
        self.y_eye = ident.eye_y
        self.y_nose = ident.eye_y - ident.nose_length  # nose-tip height
        self.y_mouth = self.y_nose - ident.mouth_gap
        self.y_cheek = -0.1 * self.b  # the jaw taper starts below this line
        self.y_brow = ident.eye_y + ident.eye_height + ident.brow_gap
        rows, cols = max(8, int(20 * detail)), max(16, int(40 * detail))
        self.skin_grid = self._grid(np.linspace(0, np.pi, rows + 1), np.linspace(-np.pi, np.pi, cols + 1))
        self.hull_points = self._grid(np.linspace(0, np.pi, 15), np.linspace(-np.pi, np.pi, 29)).reshape(-1, 3)
        self.hair_grid = self._hair_grid(detail)
        self.hair_curtain = self._hair_curtain()
        self.beard_grid, self.beard_volume = self._beard_grid(detail)
        self.brows = [self._brow(s) for s in (-1, 1)]
        self.nose_vertices, self.nose_faces, self.nostrils = self._nose()
        self.ears = [self._ear(s) for s in (-1, 1)]
        self.neck_top = self._neck_top()
        self.jaw_points = self._jaw_points()

    # ------------------------------------------------------------------ basics
    def surface(self, x: np.ndarray | float, y: np.ndarray | float, lift: np.ndarray | float = 0.0) -> np.ndarray:
        """Front-surface points at frontal coordinates (x, y), pushed out ``lift`` along the normal."""
        x, y, lift = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float), np.asarray(lift, float))
        a, b, c = self.a, self.b, self.c
        z = c * np.sqrt(np.clip(1.0 - (x / a) ** 2 - (y / b) ** 2, 0.0, None))
        p = np.stack([x, y, z], axis=-1)
        return p + lift[..., None] * self.normals(p)

    def normals(self, p: np.ndarray) -> np.ndarray:
        """Unit outward normals of the (undeformed) ellipsoid at or near points ``p``."""
        n = p / np.array([self.a**2, self.b**2, self.c**2])
        return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-9)

    def deform(self, p: np.ndarray, jaw: float = 0.0) -> np.ndarray:
        """Apply jaw taper, chin length and the jaw drop of an open mouth."""
        x, y, z = p[..., 0], p[..., 1], p[..., 2]
        t = np.clip((self.y_cheek - y) / (self.b + self.y_cheek), 0.0, 1.0) ** 2
        front = np.clip(z / self.c, 0.0, 1.0)
        x = x * (1.0 - self.ident.jaw_taper * t)
        y = y - self.ident.chin * t * front
        if jaw:
            # the mandible swings down: most at the chin front, little at the jaw angle
            drop = _smoothstep((self.y_mouth - y) / 0.25) * np.clip(0.35 + z / self.c, 0.0, 1.0)
            y = y - jaw * drop
        return np.stack([x, y, z], axis=-1)

    def _grid(self, theta: np.ndarray, phi: np.ndarray, grow: float | np.ndarray = 0.0) -> np.ndarray:
        """Ellipsoid vertices on a (theta from top) x (phi from front, + towards +x) grid."""
        th, ph = np.meshgrid(theta, phi, indexing="ij")
        return self._sphere(th, ph, grow)

    def _sphere(self, th: np.ndarray, ph: np.ndarray, grow: float | np.ndarray = 0.0) -> np.ndarray:
        s = np.sin(th)
        return np.stack([(self.a + grow) * s * np.sin(ph), (self.b + grow) * np.cos(th),
                         (self.c + grow) * s * np.cos(ph)], axis=-1)

    # -------------------------------------------------------------------- hair
    def _hairline(self, phi: np.ndarray) -> np.ndarray:
        """Height (head units) of the hairline at azimuth phi (0 = forehead)."""
        ident, b = self.ident, self.b
        front = ident.hairline * b
        keys = [0, 40, 62, 80, 100, 125, 180]
        vals = [front, front - 0.02, front - 0.12, self.y_eye - 0.1, self.y_eye - 0.05, self.y_eye + 0.12,
                -0.45 * b]
        if ident.hair_style == "afro":
            vals = [v - 0.05 for v in vals]
        deg = np.degrees(np.abs(phi))
        y = _circular_smooth(np.interp(deg, keys, vals), 3)
        if ident.fringe:
            # bangs: pull the front hairline down towards the brows, optionally zig-zag
            floor = self.y_brow + ident.brow_thickness + 0.03
            w = np.clip(np.cos(phi * 1.7), 0.0, None) ** 0.5 * (np.abs(phi) < np.pi / 3.4)
            y = y - ident.fringe * (front - floor) * w
            y = y - ident.fringe_jag * 0.05 * w * (0.5 + 0.5 * np.cos(phi * 26))
        y = y + 0.06 * ident.hair_part * np.sin(2 * phi) * (np.abs(phi) < np.pi / 2)
        return np.clip(y, -0.97 * b, 0.97 * b)

    def _hair_grid(self, detail: float) -> np.ndarray | None:
        ident = self.ident
        if ident.hair_style == "bald":
            return None
        cols, rows = max(24, int(56 * detail)), max(5, int(9 * detail))
        phi = np.linspace(-np.pi, np.pi, cols + 1)
        theta_max = np.arccos(self._hairline(phi) / self.b)
        r = np.linspace(0.0, 1.0, rows + 1)[:, None]
        th = theta_max[None, :] * r
        ph = np.broadcast_to(phi, th.shape)
        vol = ident.hair_volume * (1.0 - 0.75 * r**3)  # hair thins towards its edge
        if ident.hair_style == "afro":
            vol = vol * (1.0 + 0.22 * np.sin(9 * ph + 1.3) * np.sin(7 * th))
        return self.deform(self._sphere(th, ph, vol))

    def _hair_curtain(self) -> np.ndarray | None:
        """Point cloud whose hull is long hair hanging behind the head (drawn before the head)."""
        ident = self.ident
        if ident.hair_style not in ("long", "bob"):
            return None
        v = ident.hair_volume
        cap = self._grid(np.linspace(0, np.pi / 2, 6), np.linspace(-np.pi, np.pi, 17), v).reshape(-1, 3)
        psi = np.linspace(np.pi / 2 - 0.15, 3 * np.pi / 2 + 0.15, 13)
        spread = 1.12 if ident.hair_style == "long" else 1.0
        ring = np.stack([(self.a + v) * spread * np.sin(psi), np.full_like(psi, -ident.hair_length),
                         (self.c + v) * 0.7 * np.cos(psi) - 0.1], axis=-1)
        return np.concatenate([cap, ring])

    def _beard_grid(self, detail: float) -> tuple[np.ndarray | None, float]:
        ident = self.ident
        if ident.beard == "none":
            return None, 0.0
        if ident.beard == "goatee":
            phi_max, keys, vals, vol = 0.6, [0, 35], [self.y_mouth - 0.05, self.y_mouth - 0.07], 0.025
        else:
            phi_max = 1.55
            keys = [0, 14, 40, 70, 90]
            vals = [self.y_nose - 0.05, self.y_nose - 0.09, self.y_mouth + 0.02, self.y_eye - 0.3,
                    self.y_eye - 0.14]
            vol = 0.03 if ident.beard == "full" else 0.004
        cols, rows = max(12, int(28 * detail)), max(4, int(7 * detail))
        phi = np.linspace(-phi_max, phi_max, cols + 1)
        top = np.arccos(np.interp(np.degrees(np.abs(phi)), keys, vals) / self.b)
        # stop under the chin: an ellipsoid's underside is far bigger than a real jaw's
        bottom = np.arccos(-0.86 if ident.beard == "goatee" else -0.92)
        r = np.linspace(0.0, 1.0, rows + 1)[:, None]
        th = top[None, :] + (bottom - top[None, :]) * r
        return self._sphere(th, np.broadcast_to(phi, th.shape), vol), vol

    # ----------------------------------------------------------------- features
    def _lids(self, s: int, u: np.ndarray, blink: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Eye outline in frontal coords: x, upper-lid y, lower-lid y at outward coordinate u in [-1, 1]."""
        ident = self.ident
        w, h = ident.eye_width, ident.eye_height
        cx = s * ident.eye_spacing
        x = cx + s * u * w
        prof = np.clip(1.0 - u**2, 0.0, None)
        base = self.y_eye + ident.eye_tilt * u * w
        upper = base + h * prof**0.7 * (1.0 - 0.18 * u)
        lower = base - 0.62 * h * prof**0.85 * (1.0 + 0.12 * u)
        closed = lower + 0.12 * h * prof
        return x, upper + (closed - upper) * blink, lower

    def eye(self, s: int, blink: float) -> dict[str, np.ndarray]:
        """Eye of side ``s`` (-1 = image left): white, iris and pupil outlines, lash line, landmarks."""
        ident = self.ident
        u = np.linspace(-1.0, 1.0, 17)
        x, up, lo = self._lids(s, u, blink)
        white = self.surface(np.concatenate([x, x[::-1]]), np.concatenate([up, lo[::-1]]))
        cx, r = s * ident.eye_spacing, min(0.46 * ident.eye_width, 1.05 * ident.eye_height)
        # iris centre a little above the eye line: the lower lid sits closer to it than the upper
        cy = self.y_eye + 0.15 * ident.eye_height
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        out = {"white": white, "lash": self.surface(x, up, 0.003), "center": self.surface(cx, cy)}
        for name, rad in (("iris", r), ("pupil", 0.42 * r)):
            px, py = cx + rad * np.cos(t), cy + rad * np.sin(t)
            uu = np.clip(s * (px - cx) / ident.eye_width, -1.0, 1.0)
            _, up_u, lo_u = self._lids(s, uu, blink)
            out[name] = self.surface(px, np.clip(py, lo_u, np.maximum(up_u, lo_u)), 0.001)
        # dlib order: 36-41 start at the image-left corner and go clockwise on screen
        corners = -s * np.array([1.0, 1 / 3, -1 / 3, -1.0])
        xs, ups, _ = self._lids(s, corners, blink)
        xl, _, los = self._lids(s, s * np.array([1 / 3, -1 / 3]), blink)
        lm = np.stack([np.concatenate([xs, xl]), np.concatenate([ups[:3], [ups[3]], los])], axis=-1)
        out["landmarks"] = self.surface(lm[:, 0], lm[:, 1])
        return out

    def _brow(self, s: int) -> dict[str, np.ndarray]:
        ident = self.ident
        w = ident.eye_width
        v = np.linspace(0.0, 1.0, 12)  # inner -> outer
        x = s * (ident.eye_spacing - 0.9 * w + v * 2.05 * w)
        yc = self.y_brow + ident.brow_arch * np.sin(np.pi * v**0.85) + ident.brow_tilt * (v - 0.5)
        th = ident.brow_thickness * (1.0 - 0.5 * v) * np.clip(0.55 + 2.5 * v, 0.0, 1.0)
        poly = self.surface(np.concatenate([x, x[::-1]]), np.concatenate([yc + th / 2, (yc - th / 2)[::-1]]),
                            0.012)
        vl = np.array([1.0, 0.75, 0.5, 0.25, 0.0]) if s < 0 else np.array([0.0, 0.25, 0.5, 0.75, 1.0])
        xl = s * (ident.eye_spacing - 0.9 * w + vl * 2.05 * w)
        yl = (self.y_brow + ident.brow_arch * np.sin(np.pi * vl**0.85) + ident.brow_tilt * (vl - 0.5)
              + ident.brow_thickness * (1.0 - 0.5 * vl) / 2)
        return {"poly": self.deform(poly), "landmarks": self.deform(self.surface(xl, yl, 0.012))}

    def _nose(self) -> tuple[np.ndarray, list[tuple[int, int, int]], list[tuple[np.ndarray, int]]]:
        ident = self.ident
        yt, yn, nw, p = self.y_eye - 0.02, self.y_nose, ident.nose_width, ident.nose_depth
        ym = yt + 0.55 * (yn - yt)
        spec = [  # frontal x, y, lift
            (0.0, yt, 0.015),  # 0 T  bridge top
            (-0.045, ym, 0.45 * p), (0.045, ym, 0.45 * p),  # 1 BL, 2 BR  bridge sides
            (0.0, yn + 0.015, p),  # 3 P  tip
            (-nw, yn - 0.005, 0.22 * p), (nw, yn - 0.005, 0.22 * p),  # 4 AL, 5 AR  wings
            (0.0, yn - 0.04, 0.55 * p),  # 6 Q  columella base
            (-0.45 * nw, yn - 0.045, 0.3 * p), (0.45 * nw, yn - 0.045, 0.3 * p),  # 7 ML, 8 MR
        ]
        arr = np.array(spec)
        verts = self.deform(self.surface(arr[:, 0], arr[:, 1], arr[:, 2]))
        # counter-clockwise as seen from the front, so n = (v1-v0) x (v2-v0) points outwards
        faces = [(0, 1, 3), (0, 3, 2), (1, 4, 3), (2, 3, 5), (4, 7, 6), (4, 6, 3), (5, 3, 6), (5, 6, 8)]
        t = np.linspace(0, 2 * np.pi, 12, endpoint=False)[:, None]
        nostrils = []
        for (wing, base), face in (((4, 7), 4), ((5, 8), 7)):
            centre = 0.45 * verts[base] + 0.3 * verts[wing] + 0.25 * verts[6]
            e1, e2 = 0.3 * (verts[6] - verts[wing]), 0.45 * (verts[base] - 0.5 * (verts[wing] + verts[6]))
            nostrils.append((centre + e1 * np.cos(t) + e2 * np.sin(t), face))
        return verts, faces, nostrils

    def nose_landmarks(self) -> np.ndarray:
        """Points 27-35: bridge top to tip, then the nostril base from image left to right."""
        ident = self.ident
        yt, yn, nw, p = self.y_eye - 0.01, self.y_nose, ident.nose_width, ident.nose_depth
        f = np.linspace(0.0, 1.0, 4)
        bridge = self.surface(np.zeros(4), yt + f * (yn + 0.015 - yt), 0.015 + (p - 0.015) * f**1.5)
        bx = np.array([-0.75, -0.38, 0.0, 0.38, 0.75]) * nw
        base = self.surface(bx, yn - 0.04 - 0.005 * np.cos(bx / nw * np.pi / 2), 0.3 * p + 0.25 * p * (bx == 0))
        return self.deform(np.concatenate([bridge, base]))

    def mouth(self, mouth_open: float, mouth_width: float) -> dict[str, np.ndarray]:
        """Lip, inner-mouth and teeth outlines plus landmarks 48-67 for one frame."""
        ident = self.ident
        W = ident.mouth_width * (0.82 + 0.36 * mouth_width) * (1.0 - 0.12 * mouth_open)
        Wi, O, ym = 0.86 * W, ident.max_open * mouth_open, self.y_mouth

        def env(x: np.ndarray, half: float) -> np.ndarray:
            return np.sqrt(np.clip(1.0 - (x / half) ** 2, 0.0, None))

        def upper_inner(x: np.ndarray) -> np.ndarray:
            return ym + 0.3 * O * env(x, Wi)

        def lower_inner(x: np.ndarray) -> np.ndarray:
            return ym - 0.7 * O * env(x, Wi)

        def upper_outer(x: np.ndarray) -> np.ndarray:
            bow = 1.0 - 0.3 * np.exp(-((x / (0.18 * W)) ** 2))  # cupid's bow dip
            return ym + ident.lip_upper * env(x, W) ** 0.8 * bow + 0.3 * O * env(x, W)

        def lower_outer(x: np.ndarray) -> np.ndarray:
            return ym - ident.lip_lower * env(x, W) ** 0.8 - 0.7 * O * env(x, W)

        def lift(x: np.ndarray) -> np.ndarray:
            return 0.01 + 0.025 * env(x, W)

        xo = W * np.sin(np.linspace(-np.pi / 2, np.pi / 2, 17))  # denser near the corners
        xi = Wi * np.sin(np.linspace(-np.pi / 2, np.pi / 2, 15))
        out = {
            "upper_lip": self.surface(np.concatenate([xo, xi[::-1]]),
                                      np.concatenate([upper_outer(xo), upper_inner(xi[::-1])]),
                                      np.concatenate([lift(xo), lift(xi[::-1])])),
            "lower_lip": self.surface(np.concatenate([xo, xi[::-1]]),
                                      np.concatenate([lower_outer(xo), lower_inner(xi[::-1])]),
                                      np.concatenate([lift(xo), lift(xi[::-1])])),
            "inner": self.surface(np.concatenate([xi, xi[::-1]]),
                                  np.concatenate([upper_inner(xi), lower_inner(xi[::-1])]), 0.012),
            "seam": self.surface(xi, upper_inner(xi) - 0.15 * O * env(xi, Wi), 0.014),
        }
        xt = 0.8 * xi
        teeth_h = np.minimum(0.3 * O, 0.03) * env(xt, 0.8 * Wi) ** 0.5
        out["teeth"] = self.surface(np.concatenate([xt, xt[::-1]]),
                                    np.concatenate([upper_inner(xt), (upper_inner(xt) - teeth_h)[::-1]]), 0.013)
        lm_x = np.array([-W, -0.6 * W, -0.3 * W, 0, 0.3 * W, 0.6 * W, W,  # 48-54
                         0.6 * W, 0.3 * W, 0, -0.3 * W, -0.6 * W,  # 55-59
                         -Wi, -0.5 * Wi, 0, 0.5 * Wi, Wi, 0.5 * Wi, 0, -0.5 * Wi])  # 60-67
        lm_y = np.concatenate([[ym], upper_outer(lm_x[1:6]), [ym], lower_outer(lm_x[7:12]),
                               [ym], upper_inner(lm_x[13:16]), [ym], lower_inner(lm_x[17:20])])
        out["landmarks"] = self.surface(lm_x, lm_y, lift(lm_x))
        return {k: self.deform(v) for k, v in out.items()}

    def _ear(self, s: int) -> dict[str, np.ndarray]:
        ident = self.ident
        y = self.y_eye - 0.13
        z = -0.05 * self.c
        x = self.a * np.sqrt(max(1.0 - (y / self.b) ** 2 - (z / self.c) ** 2, 0.0)) * 0.97
        anchor = np.array([s * x, y, z])
        d = np.array([s * np.sin(np.radians(35)), 0.0, -np.cos(np.radians(35))])  # flares back and out
        up = np.array([0.0, 1.0, 0.0])
        eh, ew = 0.2 * ident.ear_size, 0.085 * ident.ear_size
        t = np.linspace(0, 2 * np.pi, 20, endpoint=False)[:, None]
        outer = anchor + d * ew * (1 + np.cos(t)) + up * eh * np.sin(t)
        inner = anchor + d * ew * (1 + 0.5 * np.cos(t)) * 0.95 + up * (0.55 * eh * np.sin(t) - 0.02)
        return {"outer": outer, "inner": inner, "anchor": anchor, "side": np.array([float(s), 0.0, 0.0])}

    def _neck_top(self) -> np.ndarray:
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        return np.stack([0.5 * self.a * np.cos(t), np.full_like(t, -0.5 * self.b),
                         -0.2 * self.c + 0.4 * self.c * np.sin(t)], axis=-1)

    def _jaw_points(self) -> np.ndarray:
        """Undeformed points 0-16 from the image-left ear down round the chin to the right ear."""
        phi = np.radians(np.linspace(-82, 82, 17))
        k = (np.abs(phi) / np.radians(82)) ** 1.6
        y = (-0.96 * self.b) + k * (self.y_eye - 0.17 + 0.96 * self.b)
        r = np.sqrt(np.clip(1.0 - (y / self.b) ** 2, 0.0, None))
        return np.stack([self.a * r * np.sin(phi), y, self.c * r * np.cos(phi)], axis=-1)

    def jaw_drop(self, mouth_open: float) -> float:
        """How far the chin drops (head units) for a mouth opening."""
        return 0.55 * self.ident.max_open * mouth_open
