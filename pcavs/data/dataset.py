"""Training data pipeline over the shards written by ``pcavs preprocess``.

Sampling, per epoch ``e`` (everything is a pure function of ``(seed, e)`` and the dataset):

1. *Clip order*: shards are permuted, then the clips inside each shard (``Generator(seed, e)``).
2. *Split*: with ``W = world_size * num_workers`` global workers, clip at position ``p`` of the order
   goes to global worker ``p % W``; every worker keeps ``C // W`` clips, so **the last ``C mod W``
   clips of each epoch's order are dropped** (a different few each epoch) and every rank sees the
   same number of batches. Nothing is repeated.
3. *Windows*: each clip gives ``samples_per_clip`` K-frame windows (distinct starts when the clip is
   long enough), drawn from ``Generator(seed, e, clip)``: independent of ``W``, so the union over all
   workers is the same whatever the worker count.
4. *Shuffle*: a per-worker shuffle buffer (``Generator(seed, e, global worker)``) over lightweight
   sample *plans*; a plan is turned into tensors only when it leaves the buffer, by reading just the
   needed frames/mel rows from the uncompressed tar at the byte offsets recorded in the shard index.
   Reference frame, shifted-mel negatives and augmentation of sample ``g`` (its global draw index)
   come from ``Generator(seed, e, g)``.
5. Each worker's stream is batched by the DataLoader (``drop_last``: at most ``batch_size - 1``
   samples per worker are dropped per epoch); the DataLoader returns batch ``b`` from worker ``b % nw``.

Resume: the trainer stores ``(epoch, batches_consumed)`` for its rank. ``make_loader(..., epoch,
skip_batches=n)`` regenerates the same plans, lets loader worker ``w`` play the role of worker
``(w + n) % nw`` (the DataLoader always starts at worker 0) and skip that role's first
``ceil((n - role) / nw)`` batches of plans without reading any pixels, so batch ``j`` of the resumed
loader equals batch ``n + j`` of the uninterrupted one. :func:`infinite_batches` does this for you.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from pcavs.audio import DEFAULT_AUDIO, mel_windows, window_rows_of
from pcavs.config import ConfigError
from pcavs.data.augment import AugmentConfig, augment_nonidentity
from pcavs.data.batch import Batch
from pcavs.data.index import ClipInfo, load_index
from pcavs.data.shards import NpyMember, ShardError, open_url, read_npy_header, read_npy_rows
from pcavs.media import images_to_tensor

__all__ = ["ClipDataset", "DataConfig", "batches_per_epoch", "infinite_batches", "make_loader"]

EDGE_MARGIN = 2  # window starts keep 2 frames from the clip ends when possible: mel windows stay inside the audio


@dataclass(frozen=True)
class DataConfig:
    """What the trainer reads; see the module docstring for how samples are drawn."""

    root: str
    clip_len: int = 1  # K frames per sample
    image_size: int | None = None  # None = the stored crop size; otherwise resized on load
    samples_per_clip: int = 4
    shift_negatives: int = 2  # M time-shifted mel windows per frame (extra contrastive negatives)
    min_shift: int = 5  # frames between a target window and its shifted negatives
    min_ref_distance: int = 25  # frames between reference and target window, when the clip allows
    # probability that the reference is a random frame of another clip with the same label (same person,
    # another head pose and crop), where the person has one; 0 draws nothing, so samples stay as before
    reference_other_clip: float = 0.0
    # pose twins (ours; SynthTalk's `pcavs synth --pose-twins`, preprocessed like the data): a dataset whose
    # clip with the same key shows another person at exactly the same head pose and mouth, frame by frame.
    # A share pose_twin_prob of samples then give the non-identity encoder the twin's frames (augmented as
    # usual), so E reads the pose from one face while G draws another. None draws nothing.
    pose_twins: str | None = None
    pose_twin_prob: float = 0.5
    shuffle_buffer: int = 256  # plans are small: thousands cost nothing
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0
    split: str | None = None  # LRW: keep only clips of this split (train/val/test)

    def __post_init__(self) -> None:
        if self.clip_len < 1 or self.samples_per_clip < 1:
            raise ConfigError("clip_len and samples_per_clip must be >= 1")
        if self.shift_negatives < 0 or self.min_shift < 1 or self.min_ref_distance < 0 or self.shuffle_buffer < 0:
            raise ConfigError("shift_negatives, min_ref_distance and shuffle_buffer must be >= 0, min_shift >= 1")
        if not 0.0 <= self.reference_other_clip <= 1.0:
            raise ConfigError(f"reference_other_clip must be in [0, 1], got {self.reference_other_clip}")
        if not 0.0 <= self.pose_twin_prob <= 1.0:
            raise ConfigError(f"pose_twin_prob must be in [0, 1], got {self.pose_twin_prob}")
        if self.image_size is not None and self.image_size < 8:
            raise ConfigError(f"image_size must be >= 8, got {self.image_size}")


def _rng(*words: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(w) for w in words])))


_TAG_ORDER, _TAG_WINDOWS, _TAG_SHUFFLE, _TAG_SAMPLE = 1, 2, 3, 4


class _Reader:
    """Per-worker random access to tar members: a few open files, cached .npy headers."""

    def __init__(self, max_open: int = 16) -> None:
        self.files: OrderedDict[str, BinaryIO] = OrderedDict()
        self.headers: dict[tuple[str, str, str], NpyMember] = {}
        self.max_open = max_open

    def _file(self, url: str) -> BinaryIO:
        f = self.files.pop(url, None)
        if f is None:
            f = open_url(url)
            if not f.seekable():  # object-store stream: spool to a local temp file for random access
                tmp = tempfile.TemporaryFile()
                shutil.copyfileobj(f, tmp)
                f.close()
                f = tmp  # type: ignore[assignment]
            if len(self.files) >= self.max_open:
                self.files.popitem(last=False)[1].close()
        self.files[url] = f
        return f

    def rows(self, clip: ClipInfo, ext: str, start: int, stop: int) -> np.ndarray:
        f = self._file(clip.shard)
        hk = (clip.shard, clip.key, ext)
        header = self.headers.get(hk)
        if header is None:
            header = self.headers[hk] = read_npy_header(f, clip.members[ext][0])
        return read_npy_rows(f, header, start, stop)

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()


class ClipDataset(IterableDataset):
    """Iterable over training samples (dicts of tensors); see the module docstring.

    Each sample (S = image size, K = clip_len, M = shift_negatives): ``frames`` (K,3,S,S) in [-1, 1];
    ``augmented`` (K,3,S,S) = ``augment_nonidentity(frames)``; ``reference`` (3,S,S), a frame at least
    ``min_ref_distance`` from the window (else the farthest frame); ``mel`` (K,1,80,20) =
    ``mel_windows(mel, frame)``; ``mel_shifted`` (K,M,1,80,20), windows of K-frame blocks starting at
    least ``min_shift`` frames away; ``label``, ``clip``, ``reference_frame``, ``sample`` (int64 scalars);
    ``frame`` (K,) int64; ``landmarks`` (K,68,2) float32 crop pixels, when stored.

    Args:
        cfg: data configuration.
        rank, world_size: DDP position of this process.
        epoch: epoch whose samples are produced (change with :meth:`set_epoch`).
        skip_batches: batches of this rank already consumed in ``epoch`` (resume).
        batch_size: the DataLoader batch size (needed to translate ``skip_batches`` into samples).
    """

    def __init__(self, cfg: DataConfig, rank: int = 0, world_size: int = 1, epoch: int = 0, skip_batches: int = 0,
                 batch_size: int = 1) -> None:
        super().__init__()
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
        self.cfg = cfg
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip_batches, self.batch_size = epoch, skip_batches, batch_size
        self.meta, clips = load_index(cfg.root, cfg.split)
        self.clips = [c for c in clips if c.num_frames >= cfg.clip_len]  # too short for a window: unusable
        if not self.clips:
            raise ShardError(f"{cfg.root}: no clip with at least clip_len={cfg.clip_len} frames (split={cfg.split})")
        self.labels: list[str] = list(self.meta["labels"])
        self.clips_of_label: dict[int, list[int]] = {}
        for i, c in enumerate(self.clips):
            self.clips_of_label.setdefault(c.label, []).append(i)
        self.stored_size = int(self.meta["size"])
        self.size = cfg.image_size or self.stored_size
        self.twins: dict[int, ClipInfo] = {}
        if cfg.pose_twins:
            self.twins = self._match_twins(cfg.pose_twins)

    def _match_twins(self, root: str) -> dict[int, ClipInfo]:
        """Clip index -> the twin clip with the same key and frame count (clips without one keep their own)."""
        meta, clips = load_index(root)
        if int(meta["size"]) != self.stored_size:
            raise ShardError(f"{root}: pose twins stored at {meta['size']} px, the data at {self.stored_size}; "
                             f"preprocess the twins with --size {self.stored_size}")
        by_key = {c.key: c for c in clips}
        twins = {i: by_key[c.key] for i, c in enumerate(self.clips)
                 if c.key in by_key and by_key[c.key].num_frames == c.num_frames}
        if not twins:
            raise ShardError(f"{root}: no clip matches a clip of {self.cfg.root} by key and length; make the twins "
                             "with `pcavs synth --pose-twins` and the options that made the data, then preprocess "
                             "them with the same settings")
        return twins

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Produce ``epoch`` next, skipping the first ``skip_batches`` batches of this rank."""
        self.epoch, self.skip_batches = epoch, skip_batches

    # ------------------------------------------------------------------ planning (no pixels)
    def clip_order(self, epoch: int) -> np.ndarray:
        """Clip indices in this epoch's order (shards permuted, then clips within each shard)."""
        shards: dict[str, list[int]] = {}
        for i, c in enumerate(self.clips):
            shards.setdefault(c.shard, []).append(i)
        rng = _rng(self.cfg.seed, epoch, _TAG_ORDER)
        groups = list(shards.values())
        return np.array([groups[s][j] for s in rng.permutation(len(groups)) for j in rng.permutation(len(groups[s]))],
                        dtype=np.int64)

    def window_starts(self, clip: int, epoch: int) -> np.ndarray:
        """The ``samples_per_clip`` window starts of ``clip`` in ``epoch``."""
        k, t = self.cfg.clip_len, self.clips[clip].num_frames
        lo, hi = (EDGE_MARGIN, t - k - EDGE_MARGIN) if t - k - 2 * EDGE_MARGIN >= 0 else (0, t - k)
        n = hi - lo + 1
        rng = _rng(self.cfg.seed, epoch, _TAG_WINDOWS, clip)
        spc = self.cfg.samples_per_clip
        return lo + (rng.choice(n, spc, replace=False) if n >= spc else rng.integers(0, n, spc))

    def worker_plans(self, epoch: int, global_worker: int, num_global: int) -> list[tuple[int, int, int]]:
        """Unshuffled ``(sample index g, clip, start)`` plans of one global worker."""
        order = self.clip_order(epoch)
        per_worker = len(order) // num_global
        spc = self.cfg.samples_per_clip
        plans = []
        for pos in range(global_worker, global_worker + per_worker * num_global, num_global):
            clip = int(order[pos])
            plans += [(pos * spc + j, clip, int(s)) for j, s in enumerate(self.window_starts(clip, epoch))]
        return plans

    def _shuffled(self, plans: list[tuple[int, int, int]], epoch: int, global_worker: int) -> Iterator[tuple]:
        size = self.cfg.shuffle_buffer
        if size <= 1:
            yield from plans
            return
        rng = _rng(self.cfg.seed, epoch, _TAG_SHUFFLE, global_worker)
        buf: list[tuple[int, int, int]] = []
        for p in plans:
            if len(buf) < size:
                buf.append(p)
                continue
            i = int(rng.integers(len(buf)))
            yield buf[i]
            buf[i] = p
        for i in rng.permutation(len(buf)):
            yield buf[i]

    def _position(self) -> tuple[int, int, int]:
        """(global worker id, number of global workers, samples to skip) for the calling worker."""
        info = get_worker_info()
        nw, wid = (info.num_workers, info.id) if info is not None else (1, 0)
        role = (wid + self.skip_batches) % nw  # the DataLoader restarts at worker 0 after a resume
        consumed = max(0, -(-(self.skip_batches - role) // nw))
        return self.rank * nw + role, self.world_size * nw, consumed * self.batch_size

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        gid, num_global, skip = self._position()
        epoch = self.epoch
        stream = self._shuffled(self.worker_plans(epoch, gid, num_global), epoch, gid)
        reader = _Reader()
        try:
            for n, (g, clip, start) in enumerate(stream):
                if n >= skip:
                    yield self.materialize(reader, g, clip, start, epoch)
        finally:
            reader.close()

    # ------------------------------------------------------------------ tensors
    def _reference(self, rng: np.random.Generator, t: int, start: int) -> int:
        k, d = self.cfg.clip_len, self.cfg.min_ref_distance
        before = max(0, start - d + 1)  # frames 0 .. start-d
        after = max(0, t - (start + k - 1 + d))  # frames start+k-1+d .. t-1
        if before + after == 0:  # clip too short: the frame farthest from the window
            return 0 if start >= t - (start + k) else t - 1
        i = int(rng.integers(before + after))
        return i if i < before else start + k - 1 + d + (i - before)

    def _shifts(self, rng: np.random.Generator, t: int, start: int) -> list[int]:
        k, m, d = self.cfg.clip_len, self.cfg.shift_negatives, self.cfg.min_shift
        if m == 0:
            return []
        starts = np.arange(t - k + 1)
        valid = starts[np.abs(starts - start) >= d]
        if valid.size == 0:  # too short: a window past the clip end (silence-padded)
            return [start + d] * m
        return [int(s) for s in rng.choice(valid, m, replace=valid.size < m)]

    def _reference_clip(self, rng: np.random.Generator, clip: int) -> int:
        p = self.cfg.reference_other_clip
        if p == 0.0:  # no draw: the sample stream is the one made before this option existed
            return clip
        others = [c for c in self.clips_of_label[self.clips[clip].label] if c != clip]
        if rng.random() >= p or not others:
            return clip
        return others[int(rng.integers(len(others)))]

    def _pose_twin(self, rng: np.random.Generator, clip: int) -> ClipInfo | None:
        if not self.cfg.pose_twins:  # no draw: the sample stream is the one made before this option existed
            return None
        use = rng.random() < self.cfg.pose_twin_prob
        return self.twins.get(clip) if use else None

    def _windows(self, reader: _Reader, clip: ClipInfo, start: int) -> torch.Tensor:
        # Read only the mel rows the K windows use; lo is a multiple of rows_per_frame, so frame f of the
        # clip is frame f - lo/rows_per_frame of the slice and mel_windows' zero-padding beyond the
        # stored rows is unchanged.
        k, per = self.cfg.clip_len, DEFAULT_AUDIO.rows_per_frame
        lo = max(0, window_rows_of(start)[0])
        sub = torch.from_numpy(reader.rows(clip, "mel.npy", lo, window_rows_of(start + k - 1)[1]).copy())
        if sub.shape[0] == 0:
            sub = torch.zeros(0, DEFAULT_AUDIO.n_mels)
        return mel_windows(sub, [f - lo // per for f in range(start, start + k)])

    def _images(self, u8: np.ndarray) -> torch.Tensor:
        x = images_to_tensor(u8)
        if self.size != self.stored_size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return x

    def materialize(self, reader: _Reader, g: int, clip_idx: int, start: int, epoch: int) -> Batch:
        """One planned sample (a :class:`Batch` without the batch axis; deterministic in ``(seed, epoch, g)``)."""
        clip, k = self.clips[clip_idx], self.cfg.clip_len
        rng = _rng(self.cfg.seed, epoch, _TAG_SAMPLE, g)
        ref = self._reference(rng, clip.num_frames, start)
        shifts = self._shifts(rng, clip.num_frames, start)
        frames = self._images(reader.rows(clip, "frames.npy", start, start + k))
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        ref_clip = self._reference_clip(rng, clip_idx)  # drawn last: everything else stays as without it
        if ref_clip != clip_idx:
            ref = int(rng.integers(self.clips[ref_clip].num_frames))
        twin = self._pose_twin(rng, clip_idx)  # after everything else, for the same reason
        seen = frames if twin is None else self._images(reader.rows(twin, "frames.npy", start, start + k))
        out: Batch = {
            "frames": frames,
            "augmented": augment_nonidentity(seen, gen, self.cfg.augment),
            "reference": self._images(reader.rows(self.clips[ref_clip], "frames.npy", ref, ref + 1))[0],
            "mel": self._windows(reader, clip, start),
            "mel_shifted": torch.stack([self._windows(reader, clip, s) for s in shifts], 1) if shifts
            else torch.zeros(k, 0, 1, DEFAULT_AUDIO.n_mels, DEFAULT_AUDIO.window_rows),
            "label": torch.tensor(clip.label, dtype=torch.int64),
            "clip": torch.tensor(clip_idx, dtype=torch.int64),
            "frame": torch.arange(start, start + k, dtype=torch.int64),
            "reference_frame": torch.tensor(ref, dtype=torch.int64),
            "reference_clip": torch.tensor(ref_clip, dtype=torch.int64),
            "pose_twin": torch.tensor(twin is not None, dtype=torch.bool),
            "sample": torch.tensor(g, dtype=torch.int64),
        }
        if "landmarks.npy" in clip.members:
            lm = torch.from_numpy(reader.rows(clip, "landmarks.npy", start, start + k).astype(np.float32))
            if self.size != self.stored_size:  # pixel-centre convention, as the crop itself
                lm = (lm + 0.5) * (self.size / self.stored_size) - 0.5
            out["landmarks"] = lm
        return out


# ---------------------------------------------------------------------------------- loaders
def batches_per_epoch(dataset: ClipDataset, batch_size: int, num_workers: int = 0) -> int:
    """Batches each rank's loader yields per epoch (the same on every rank)."""
    nw = max(1, num_workers)
    per_worker = len(dataset.clips) // (dataset.world_size * nw) * dataset.cfg.samples_per_clip
    return per_worker // batch_size * nw


def make_loader(cfg: DataConfig, batch_size: int, rank: int = 0, world_size: int = 1, num_workers: int = 0,
                epoch: int = 0, skip_batches: int = 0, multiprocessing_context: str | None = None,
                dataset: ClipDataset | None = None) -> DataLoader:
    """DataLoader for one epoch of this rank, starting after ``skip_batches`` consumed batches."""
    ds = dataset or ClipDataset(cfg, rank, world_size)
    ds.rank, ds.world_size, ds.batch_size = rank, world_size, batch_size
    ds.set_epoch(epoch, skip_batches)
    # A DataLoader iterator draws its base seed from the global torch RNG unless given a generator; that draw
    # happens when an epoch starts *and* when a resumed run restarts mid-epoch, so it shifted every later
    # dropout/noise draw of a resumed run (issue 24). The samples do not use that seed (they come from
    # (seed, epoch, g)), so a private generator fixed by (seed, epoch, rank) keeps the global stream intact.
    gen = torch.Generator().manual_seed(int(_rng(cfg.seed, epoch, rank, 24).integers(2**62)))
    return DataLoader(ds, batch_size=batch_size, num_workers=num_workers, drop_last=True, persistent_workers=False,
                      pin_memory=torch.cuda.is_available(), generator=gen,
                      multiprocessing_context=multiprocessing_context if num_workers > 0 else None)


def infinite_batches(cfg: DataConfig, batch_size: int, rank: int = 0, world_size: int = 1, num_workers: int = 0,
                     start_epoch: int = 0, start_batch: int = 0,
                     multiprocessing_context: str | None = None) -> Iterator[tuple[int, int, dict[str, torch.Tensor]]]:
    """Endless ``(epoch, batch_index, batch)``; resume with the ``(epoch, batch_index + 1)`` of the last
    batch the trainer finished (a finished epoch rolls over to the next one)."""
    ds = ClipDataset(cfg, rank, world_size)
    if batches_per_epoch(ds, batch_size, num_workers) == 0:
        raise ShardError(
            f"{cfg.root}: {len(ds.clips)} clips give no full batch of {batch_size} per worker with world_size="
            f"{world_size}, num_workers={num_workers}; use a smaller batch or more samples_per_clip"
        )
    epoch, skip = start_epoch, start_batch
    while True:
        loader = make_loader(cfg, batch_size, rank, world_size, num_workers, epoch, skip, multiprocessing_context, ds)
        for i, batch in enumerate(loader, start=skip):
            yield epoch, i, batch
        epoch, skip = epoch + 1, 0
