"""Pass 2 of an evaluation: every per-frame measurement over aligned crops, batch by batch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import scipy.ndimage as ndi
from PIL import Image

from pcavs.eval.common import CROP_SIZE, EvalOptions, FrameSource
from pcavs.eval.cpbd import cpbd as cpbd_score
from pcavs.eval.ssim import psnr_batch, ssim_batch
from pcavs.eval.sync import ContrastiveSync
from pcavs.eval.syncnet import SyncNetScorer, smoothed_box_params, syncnet_boxes, syncnet_crop
from pcavs.eval.tracking import FaceTrack, analyzer_for, iter_frames, resize_square
from pcavs.face import (
    FaceAnalyzer,
    compose,
    crop_matrix,
    invert_affine,
    warp_to_input,
)


# ----------------------------------------------------------------------------------------- pass 2
@dataclass
class FrameSeries:
    """Pass 2 of one video: per-frame measurements (NaN where not measurable)."""

    num_frames: int
    sharpness: np.ndarray  # (T,) variance of the Laplacian of the crop's luma
    cpbd: np.ndarray  # (T,)
    embeddings: np.ndarray  # (T, 128) dlib descriptors; NaN rows where no face was detected
    visual: np.ndarray | None  # (T, D) PC-AVS visual speech content, with a sync model
    ssim: np.ndarray | None  # (N,) vs the reference, N = the shorter length
    psnr: np.ndarray | None  # (N,) uncapped
    reference_embedding: np.ndarray | None  # the reference's first detected face
    thumbnails: dict[int, np.ndarray] = field(default_factory=dict)  # requested crops
    syncnet_frames: int = 0  # frames pushed into the SyncNet scorer


def analysed_frames(source: FrameSource, track: FaceTrack, fps: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(analysed frame, aligned crop)`` per frame, decoding the video again."""
    frames = iter_frames(source, fps)
    inv_crop = invert_affine(crop_matrix(CROP_SIZE))
    try:
        for i, frame in enumerate(frames):
            if i >= track.num_frames:
                break
            if track.aligned_input:
                img = resize_square(frame, CROP_SIZE)
                yield img, img
            else:
                yield frame, warp_to_input(frame, compose(inv_crop, track.matrices[i]), CROP_SIZE)
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


def _gray8(rgb: np.ndarray) -> np.ndarray:
    """8-bit grayscale as Pillow's ``convert("L")`` (rounded BT.601 luma): how evaluation scripts usually
    load frames for the ``cpbd`` package (``imread(..., mode="L")``)."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).convert("L"))


def _laplacian_var(gray: np.ndarray) -> float:
    return float(ndi.laplace(gray.astype(np.float64)).var())


def scan_video(
    source: FrameSource,
    track: FaceTrack,
    *,
    reference: tuple[FrameSource, FaceTrack] | None = None,
    sync: ContrastiveSync | None = None,
    syncnet: SyncNetScorer | None = None,
    reference_embedding: bool = False,
    thumbnails: Iterable[int] = (),
    options: EvalOptions = EvalOptions(),
    analyzer: FaceAnalyzer | None = None,
) -> FrameSeries:
    """Pass 2: per-frame sharpness, CPBD, face descriptors, sync features and (with a reference) SSIM/PSNR."""
    an = analyzer_for(options, analyzer)
    t = track.num_frames
    sharp, cp = np.full(t, np.nan), np.full(t, np.nan)
    emb = np.full((t, 128), np.nan)
    visual: list[np.ndarray] = []
    ssim_v: list[np.ndarray] = []
    psnr_v: list[np.ndarray] = []
    want_thumbs = set(thumbnails)
    thumbs: dict[int, np.ndarray] = {}
    ref_emb: np.ndarray | None = None
    box_params = None
    if syncnet is not None:
        syncnet.reset()
        if np.isfinite(track.landmarks).all():
            box_params = smoothed_box_params(syncnet_boxes(track.landmarks))
    ref_iter = analysed_frames(reference[0], reference[1], options.fps) if reference is not None else None
    ref_track = reference[1] if reference is not None else None
    batch: list[np.ndarray] = []
    gen_b: list[np.ndarray] = []
    ref_b: list[np.ndarray] = []

    def flush_batches() -> None:
        if batch and sync is not None:
            visual.append(sync.visual_features(np.stack(batch)))
        batch.clear()
        if gen_b:
            g, r = np.stack(gen_b), np.stack(ref_b)
            ssim_v.append(ssim_batch(g, r))
            psnr_v.append(psnr_batch(g, r))
        gen_b.clear()
        ref_b.clear()

    def ref_descriptor(i: int, frame: np.ndarray) -> np.ndarray | None:
        assert ref_track is not None
        if i < ref_track.num_frames and ref_track.detected[i]:
            return an.embedding(frame, ref_track.landmarks[i])
        return None

    ref_done = ref_iter is None
    ref_count = 0
    try:
        for i, (frame, crop) in enumerate(analysed_frames(source, track, options.fps)):
            gray = _gray8(crop)
            sharp[i] = _laplacian_var(gray)
            cp[i] = cpbd_score(gray)
            if options.embeddings and track.detected[i] and i % options.embedding_stride == 0:
                emb[i] = an.embedding(frame, track.landmarks[i])
            if i in want_thumbs:
                thumbs[i] = crop
            if box_params is not None and syncnet is not None:
                syncnet.push(syncnet_crop(frame, *box_params[i]))
            if sync is not None:
                batch.append(crop)
            if not ref_done and ref_iter is not None:
                nxt = next(ref_iter, None)
                if nxt is None:
                    ref_done = True
                else:
                    ref_count += 1
                    gen_b.append(crop)
                    ref_b.append(nxt[1])
                    if reference_embedding and ref_emb is None:
                        ref_emb = ref_descriptor(i, nxt[0])
            if len(batch) >= options.batch_size or len(gen_b) >= options.batch_size:
                flush_batches()
        flush_batches()
        # the identity may first be visible in the reference after the generated video ended
        if reference_embedding and ref_emb is None and ref_iter is not None and not ref_done:
            for j, (frame, _) in enumerate(ref_iter, start=ref_count):
                ref_emb = ref_descriptor(j, frame)
                if ref_emb is not None:
                    break
    finally:
        if ref_iter is not None:
            ref_iter.close()
    return FrameSeries(
        num_frames=t,
        sharpness=sharp,
        cpbd=cp,
        embeddings=emb,
        visual=np.concatenate(visual) if visual else None,
        ssim=np.concatenate(ssim_v) if ssim_v else (np.zeros(0) if reference is not None else None),
        psnr=np.concatenate(psnr_v) if psnr_v else (np.zeros(0) if reference is not None else None),
        reference_embedding=ref_emb,
        thumbnails=thumbs,
        syncnet_frames=syncnet.frames_seen if syncnet is not None else 0,
    )
