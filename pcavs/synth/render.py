"""Rasterise SynthTalk heads: perspective projection + antialiased PIL polygons.

Each frame is drawn painter's-style on a canvas ``supersample`` times larger
than the output and box-downsampled, which antialiases every edge. Surfaces
(skin, hair, beard, nose) are quad/triangle meshes: faces whose normal points
away from the camera are culled and the rest are Lambert-shaded under a light
fixed in the world, so a turned head is lit (and occluded) like one.

Image coordinates in the ground truth are continuous pixels: pixel (i, j)
covers x in [j, j+1), y in [i, i+1), so its centre is (j + 0.5, i + 0.5).
Pose convention: yaw > 0 turns the nose towards the image right, pitch > 0
lifts the nose, roll > 0 tilts the head counter-clockwise on screen; rotation
R = Ry(yaw) Rx(pitch) Rz(roll). tx, ty shift the head centre by that fraction
of the image size; scale zooms about the head centre.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw
from scipy.spatial import ConvexHull

from .face_model import FaceIdentity
from .geometry import HeadGeometry
from .motion import PoseTrack
from .speech import MouthTrack, mouth_track, read_wav

DISTANCE = 6.0  # camera to head centre, head units
FOCAL = 1.7  # focal length as a multiple of the image size
CENTER_Y = 0.45  # head centre height, fraction of the image (room for the shoulders)
LIGHT = np.array([-0.45, 0.55, 0.70]) / np.linalg.norm([-0.45, 0.55, 0.70])
AMBIENT = 0.62
_SHIRT = np.array([[-2.6, -4.5], [-2.5, -2.5], [-2.1, -1.95], [-1.3, -1.68], [-0.6, -1.55], [-0.32, -1.7],
                   [0.0, -1.76], [0.32, -1.7], [0.6, -1.55], [1.3, -1.68], [2.1, -1.95], [2.5, -2.5],
                   [2.6, -4.5]])


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Ry(yaw) Rx(pitch) Rz(roll), angles in degrees (see module docstring for signs)."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def _hull(pts: np.ndarray) -> np.ndarray:
    """Convex hull vertices (in order) of (N, 2) points."""
    return pts[ConvexHull(pts).vertices]


def _lambert(normals: np.ndarray) -> np.ndarray:
    return AMBIENT + (1.0 - AMBIENT) * np.clip(normals @ LIGHT, 0.0, 1.0)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _rgb(c: np.ndarray | tuple) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in np.clip(np.asarray(c, float), 0, 255))
    return (r, g, b)


class Renderer:
    """Draws one identity at one image size; reuse it for every frame of a clip.

    Drawing happens in two layers on the supersampled canvas. The skin layer
    (head, ears, nose, beard, lips, eyes, brows) is drawn in flat colours and
    then multiplied by smooth per-pixel Lambert shading of the head ellipsoid,
    so it has no facets. Hair is drawn afterwards as individually shaded quads.
    """

    def __init__(self, identity: FaceIdentity, size: int, supersample: int | None = None) -> None:
        if size < 16:
            raise ValueError(f"size must be >= 16, got {size}")
        self.identity = identity
        self.size = int(size)
        # enough canvas pixels for smooth edges, but not so many that big frames get slow
        self.ss = int(supersample or int(np.clip(round(300 / size), 2, 4)))
        self.geom = HeadGeometry(identity, detail=float(np.clip(size / 200, 0.5, 1.0)))
        self._bg = self._background()
        self._col = {k: np.array(getattr(identity, k), float)
                     for k in ("skin", "hair", "lip_color", "eye_color", "brow_color", "shirt")}
        hair, skin = self._col["hair"], self._col["skin"]
        self._beard_col = hair if identity.beard != "stubble" else 0.45 * hair + 0.55 * skin

    def _background(self) -> Image.Image:
        n = self.size * self.ss
        ident = self.identity
        ang = np.radians(ident.bg_angle)
        yy, xx = np.mgrid[0:n, 0:n] / max(n - 1, 1) - 0.5
        t = np.clip(0.5 + yy * np.cos(ang) + xx * np.sin(ang), 0.0, 1.0)[..., None]
        img = np.array(ident.bg_top, float) * (1 - t) + np.array(ident.bg_bottom, float) * t
        return Image.fromarray(img.astype(np.uint8), "RGB")

    def _shading(self, R: np.ndarray, k: float, cx: float, cy: float, box: tuple[int, int, int, int]) -> np.ndarray:
        """Lambert factor per canvas pixel of ``box`` by casting rays at the head ellipsoid.

        Rays that miss use the closest ellipsoid silhouette point, which keeps the
        field continuous over the chin and jaw that stick out of the ellipsoid.
        """
        x0, y0, x1, y1 = box
        ss = self.ss
        # evaluate at output-pixel resolution, then repeat: the field is smooth
        ox0, oy0, ox1, oy1 = x0 // ss, y0 // ss, -(-x1 // ss), -(-y1 // ss)
        v, u = np.mgrid[oy0:oy1, ox0:ox1] + 0.5
        d_cam = np.stack([(u - cx) / k, -(v - cy) / k, -np.ones_like(u)], axis=-1)
        abc = np.array([self.geom.a, self.geom.b, self.geom.c])
        o = (R.T @ np.array([0.0, 0.0, DISTANCE])) / abc
        d = (d_cam @ R) / abc
        A = np.sum(d * d, axis=-1)
        B = d @ o
        C = o @ o - 1.0
        disc = B * B - A * C
        t_hit = (-B - np.sqrt(np.clip(disc, 0.0, None))) / A
        p = o + t_hit[..., None] * d
        p = np.where((disc >= 0)[..., None], p, _unit(p))
        shade = _lambert(_unit(p / abc) @ R.T).astype(np.float32)
        shade = np.repeat(np.repeat(shade, ss, axis=0), ss, axis=1)
        return shade[y0 - oy0 * ss: y1 - oy0 * ss, x0 - ox0 * ss: x1 - ox0 * ss]

    # ------------------------------------------------------------------ frame
    def render_frame(self, pose: Mapping[str, float], mouth_open: float = 0.0, mouth_width: float = 0.5,
                     blink: float = 0.0) -> tuple[np.ndarray, dict[str, Any]]:
        """Render one frame; ``pose`` has yaw/pitch/roll (deg), tx/ty, scale. Returns (H,W,3) uint8 and GT."""
        g, ss, col = self.geom, self.ss, self._col
        yaw, pitch, roll = float(pose["yaw"]), float(pose["pitch"]), float(pose["roll"])
        tx, ty, scale = float(pose.get("tx", 0.0)), float(pose.get("ty", 0.0)), float(pose.get("scale", 1.0))
        mouth_open = float(np.clip(mouth_open, 0.0, 1.0))
        blink = float(np.clip(blink, 0.0, 1.0))
        R = rotation_matrix(yaw, pitch, roll)
        cam = np.array([0.0, 0.0, DISTANCE])
        k = scale * FOCAL * self.size
        cx, cy = self.size * (0.5 + tx), self.size * (CENTER_Y + ty)
        px_per_unit = k / DISTANCE * ss  # canvas pixels per head unit near the face

        def to_cam(p: np.ndarray) -> np.ndarray:
            return p @ R.T

        def proj(pc: np.ndarray) -> np.ndarray:  # camera-frame points -> output pixels
            d = DISTANCE - pc[..., 2]
            return np.stack([cx + k * pc[..., 0] / d, cy - k * pc[..., 1] / d], axis=-1)

        def canvas(uv: np.ndarray) -> list[float]:
            return (uv * ss).ravel().tolist()  # PIL: pixel (i, j) spans [j, j+1) x [i, i+1)

        def facing(p: np.ndarray, n: np.ndarray) -> np.ndarray:  # head-frame points & normals
            return np.sum((n @ R.T) * (cam - p @ R.T), axis=-1) > 0

        img = self._bg.copy()
        draw = ImageDraw.Draw(img)
        mask = Image.new("L", img.size, 0)  # which canvas pixels get the smooth skin shading
        mdraw = ImageDraw.Draw(mask)

        def poly(pc: np.ndarray, color: np.ndarray | tuple, masked: bool = False) -> None:
            xy = canvas(proj(pc))
            draw.polygon(xy, fill=_rgb(color))
            if masked:
                mdraw.polygon(xy, fill=255)

        def mesh(v: np.ndarray, color: np.ndarray, shaded: bool) -> None:
            vc = to_cam(v)
            a, b, c, d = vc[:-1, :-1], vc[1:, :-1], vc[1:, 1:], vc[:-1, 1:]
            n = np.cross(c - a, d - b).reshape(-1, 3)
            centre = ((a + b + c + d) / 4).reshape(-1, 3)
            vis = np.sum(n * (cam - centre), axis=1) > 0
            order = np.argsort(centre[:, 2])  # far to near
            order = order[vis[order]]
            if shaded:
                colors = np.clip(color[None] * _lambert(_unit(n))[:, None], 0, 255).astype(np.uint8).tolist()
            else:
                colors = [_rgb(color)] * len(n)
            flat = (proj(np.stack([a, b, c, d], axis=2).reshape(-1, 4, 3)) * ss).reshape(-1, 8)
            for i in order:
                fill = tuple(colors[i])
                draw.polygon(flat[i].tolist(), fill=fill, outline=fill)  # outline closes cracks

        jaw = g.jaw_drop(mouth_open)
        head_hull = _hull(proj(to_cam(g.deform(g.hull_points, jaw))))

        # --- behind the head: hair curtain, neck, shoulders, far-side ears
        if g.hair_curtain is not None:
            draw.polygon(canvas(_hull(proj(to_cam(g.hair_curtain)))), fill=_rgb(col["hair"] * 0.72))
        neck_bottom = np.stack([g.neck_top[:, 0] * 1.2, np.full(len(g.neck_top), -1.9),
                                g.neck_top[:, 2] * 1.1 - 0.1], axis=-1)
        neck = np.concatenate([to_cam(g.neck_top), neck_bottom])
        draw.polygon(canvas(_hull(proj(neck))), fill=_rgb(col["skin"] * 0.68))
        poly(np.concatenate([_SHIRT, np.full((len(_SHIRT), 1), -0.3)], axis=1), col["shirt"])
        ears_front = []
        for ear in g.ears:
            if facing(ear["anchor"], ear["side"]):
                ears_front.append(ear)
            else:
                poly(to_cam(ear["outer"]), col["skin"] * 0.8, masked=True)

        # --- skin layer, flat colours
        xy = canvas(head_hull)
        draw.polygon(xy, fill=_rgb(col["skin"]))
        mdraw.polygon(xy, fill=255)
        for ear in ears_front:
            poly(to_cam(ear["outer"]), col["skin"] * 0.93, masked=True)
            poly(to_cam(ear["inner"]), col["skin"] * 0.7, masked=True)
        if g.beard_grid is not None:
            mesh(g.deform(g.beard_grid, jaw), self._beard_col, shaded=False)

        # nose triangles carry their shading relative to the face behind them
        nv = to_cam(g.nose_vertices)
        tri = np.array(g.nose_faces)
        tn = _unit(np.cross(nv[tri[:, 1]] - nv[tri[:, 0]], nv[tri[:, 2]] - nv[tri[:, 0]]))
        tc = nv[tri].mean(axis=1)
        tvis = np.sum(tn * (cam - tc), axis=1) > 0
        base = _lambert(to_cam(g.normals(g.nose_vertices[[3]])))[0]
        rel = np.clip(_lambert(tn) / base, 0.72, 1.08)
        for i in np.argsort(tc[:, 2]):
            if tvis[i]:
                poly(nv[tri[i]], col["skin"] * rel[i], masked=True)
        for pts, face in g.nostrils:
            if tvis[face]:
                poly(to_cam(pts), col["skin"] * 0.3)

        m = g.mouth(mouth_open, mouth_width)
        if facing(m["landmarks"][[3]], g.normals(m["landmarks"][[3]]))[0]:
            poly(to_cam(m["upper_lip"]), col["lip_color"] * 0.86)
            poly(to_cam(m["lower_lip"]), col["lip_color"])
            if mouth_open > 0.02:
                poly(to_cam(m["inner"]), (45, 12, 18))
                poly(to_cam(m["teeth"]), (236, 232, 220))
            draw.line(canvas(proj(to_cam(m["seam"]))), fill=_rgb(col["lip_color"] * 0.45),
                      width=max(1, int(round(0.008 * px_per_unit))))

        eyes = [g.eye(s, blink) for s in (-1, 1)]
        for e in eyes:
            if not facing(e["center"][None], g.normals(e["center"][None]))[0]:
                continue
            poly(to_cam(e["white"]), (238, 236, 230))
            poly(to_cam(e["iris"]), col["eye_color"])
            poly(to_cam(e["pupil"]), (12, 10, 10))
            draw.line(canvas(proj(to_cam(e["lash"]))), fill=(35, 25, 22),
                      width=max(1, int(round(0.012 * px_per_unit))))
        for br in g.brows:
            centre = br["landmarks"][2:3]
            if facing(centre, g.normals(centre))[0]:
                poly(to_cam(br["poly"]), col["brow_color"])

        # --- smooth shading of the skin layer inside its mask
        mbox = mask.getbbox()
        if mbox is not None:
            arr = np.asarray(img).copy()
            x0, y0, x1, y1 = mbox
            sub = arr[y0:y1, x0:x1].astype(np.float32)
            w = np.asarray(mask)[y0:y1, x0:x1, None].astype(np.float32) / 255.0
            shade = self._shading(R, k, cx, cy, mbox)[..., None]
            arr[y0:y1, x0:x1] = np.clip(sub * (1.0 - w + w * shade), 0, 255).astype(np.uint8)
            img = Image.fromarray(arr)
            draw = ImageDraw.Draw(img)

        # --- hair on top, each quad lit on its own
        if g.hair_grid is not None:
            mesh(g.hair_grid, col["hair"], shaded=True)

        frame = np.asarray(img.reduce(ss) if ss > 1 else img).copy()

        # --- ground truth
        lm3 = np.concatenate([g.deform(g.jaw_points, jaw), g.brows[0]["landmarks"], g.brows[1]["landmarks"],
                              g.nose_landmarks(), eyes[0]["landmarks"], eyes[1]["landmarks"], m["landmarks"]])
        lm2 = proj(to_cam(lm3))
        centers = proj(to_cam(np.stack([eyes[0]["center"], eyes[1]["center"]])))

        def r3(x: np.ndarray) -> list:
            return np.round(x, 3).tolist()

        gt = {
            "yaw": yaw, "pitch": pitch, "roll": roll, "tx": tx, "ty": ty, "scale": scale,
            "mouth_open": mouth_open, "mouth_width": float(mouth_width), "blink": blink,
            "landmarks": r3(lm2),
            "landmarks_visible": facing(lm3, g.normals(lm3)).tolist(),
            "eye_centers": r3(centers),
            "mouth_center": r3(lm2[48:68].mean(axis=0)),
            "mouth_corners": r3(lm2[[48, 54]]),
            "nose_tip": r3(lm2[30]),
            "head_center": r3(proj(np.zeros(3))),
            "mouth_box": r3(np.concatenate([lm2[48:68].min(axis=0), lm2[48:68].max(axis=0)])),
            "head_box": r3(np.concatenate([head_hull.min(axis=0), head_hull.max(axis=0)])),
        }
        return frame, gt


class Rendered(NamedTuple):
    """Output of :func:`render`: frames (T, H, W, 3) uint8 and one GT dict per frame."""

    frames: np.ndarray
    ground_truth: list[dict[str, Any]]


Drive = MouthTrack | np.ndarray | str | Path


def _as_mouth(drive: Drive, n: int, blink_seed: int) -> MouthTrack:
    if isinstance(drive, MouthTrack):
        if len(drive) < n:
            raise ValueError(f"mouth track has {len(drive)} frames, pose track {n}")
        return drive
    if isinstance(drive, (str, Path)):
        drive = read_wav(drive)
    return mouth_track(np.asarray(drive, np.float32), n, blink_seed=blink_seed)


def render_iter(identity: FaceIdentity, pose_track: PoseTrack, drive: Drive, size: int,
                *, blink_seed: int = 0) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """Yield (frame, gt) for each pose frame.

    ``drive`` is a MouthTrack, 16 kHz mono float audio, or a wav path (audio
    shorter than the pose track leaves the mouth closed; blinks then come from
    ``blink_seed``). Streams, so arbitrarily long videos need constant memory.
    """
    n = len(pose_track)
    mt = _as_mouth(drive, n, blink_seed)
    r = Renderer(identity, size)
    for i in range(n):
        frame, gt = r.render_frame(pose_track[i], float(mt.open[i]), float(mt.width[i]), float(mt.blink[i]))
        gt["frame"] = i
        yield frame, gt


def render(identity: FaceIdentity, pose_track: PoseTrack, drive: Drive, size: int,
           *, blink_seed: int = 0) -> Rendered:
    """Render a whole clip: identity's look, pose_track's motion, drive's mouth (see :func:`render_iter`)."""
    frames, gts = [], []
    for f, g in render_iter(identity, pose_track, drive, size, blink_seed=blink_seed):
        frames.append(f)
        gts.append(g)
    arr = np.stack(frames) if frames else np.zeros((0, size, size, 3), np.uint8)
    return Rendered(arr, gts)
