"""The trainer's batch source: a preprocessed dataset read as this rank's shard of each epoch."""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor

from pcavs.config import preset
from pcavs.data.dataset import DataConfig, infinite_batches
from pcavs.train.config import TrainConfig
from pcavs.train.distributed import DistInfo
from pcavs.train.state import Position


def data_config(cfg: TrainConfig) -> DataConfig:
    size = preset(cfg.model_preset, cfg.model_overrides).image_size
    d = cfg.data
    return DataConfig(
        root=d.root, clip_len=d.clip_len, image_size=size, samples_per_clip=d.samples_per_clip,
        shift_negatives=d.shift_negatives, reference_other_clip=d.reference_other_clip, seed=cfg.seed,
        augment=d.augment, pose_twins=d.pose_twins or None, pose_twin_prob=d.pose_twin_prob,
    )  # fmt: skip


def batch_source(cfg: TrainConfig, info: DistInfo):
    """``source(position)`` yields ``(epoch, batch_index, batch)`` from where ``position`` stopped."""
    dcfg = data_config(cfg)

    def source(pos: Position) -> Iterator[tuple[int, int, dict[str, Tensor]]]:
        return infinite_batches(
            dcfg, cfg.batch_size, info.rank, info.world_size, cfg.data.num_workers,
            start_epoch=pos.epoch, start_batch=pos.batch_in_epoch,
        )  # fmt: skip

    return source
