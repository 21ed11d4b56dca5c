"""torchrun integration: process group from the environment, DDP wrapping, rank-0 helpers.

``torchrun --nproc_per_node N -m pcavs.train ...`` sets RANK, WORLD_SIZE, LOCAL_RANK and the
rendezvous address; NCCL is used on GPUs and gloo on CPUs. Without those variables everything
runs in one process and nothing is wrapped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from pcavs.device import resolve_device
from pcavs.losses import LossTerm


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group torchrun prepared, or run single-process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def wrap(module: nn.Module, info: DistInfo) -> nn.Module:
    """DDP around a phase module when distributed.

    A stage may leave parameters out of the loss: a term at weight 0 is not computed into the total
    (``small-joint`` turns the identity and sync terms off, so V's classifier and E's visual-content
    mapping get no gradient). DDP then has to look for them each step (``find_unused_parameters``);
    globally unused parameters keep no gradient, as in one process, so the optimiser leaves them alone.
    """
    if not info.distributed or not any(p.requires_grad for p in module.parameters()):
        return module
    ids = [info.device.index] if info.device.type == "cuda" else None
    # buffers (BatchNorm) follow rank 0
    return DistributedDataParallel(_LiveTerms(module), device_ids=ids, find_unused_parameters=True)


class _LiveTerms(nn.Module):
    """A phase whose weight-0 terms come back detached: DDP counts every parameter a forward output
    reaches as used, and a term left out of the total would otherwise leave them waiting for a gradient."""

    def __init__(self, phase: nn.Module) -> None:
        super().__init__()
        self.phase = phase

    def forward(self, *args: object) -> tuple[list[LossTerm], dict[str, Tensor]]:
        terms, outputs = self.phase(*args)
        return [t if t.weight != 0 else replace(t, value=t.value.detach()) for t in terms], outputs


def average_scalars(values: dict[str, Tensor | float], info: DistInfo) -> dict[str, float]:
    """Each logged scalar as a float, averaged across ranks. The only host copy of the loss terms: the
    trainer keeps them on the device between logging steps (a copy every step stalls a GPU)."""
    if not values:
        return {}
    keys = sorted(values)
    t = torch.stack([torch.as_tensor(values[k]).detach().to(info.device, torch.float64).reshape(()) for k in keys])
    if info.distributed:
        dist.all_reduce(t)
        t = t / info.world_size
    return dict(zip(keys, t.tolist(), strict=True))


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank when ``flag`` is true on any (a stop request that reached one rank first)."""
    if not info.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather_objects(obj: object, info: DistInfo) -> list:
    """Every rank's ``obj`` in rank order, on every rank (pickled; small objects such as RNG states)."""
    if not info.distributed:
        return [obj]
    out: list = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
