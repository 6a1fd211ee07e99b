"""torchrun support: process-group set-up from the environment, DDP/FSDP wrapping, rank-0 helpers.

A plain `python`/`tubelet` process is a world of one; under torchrun (RANK, WORLD_SIZE, LOCAL_RANK set) the
group starts with NCCL on CUDA and gloo on CPU.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from tubelet.errors import TubeletError
from tubelet.model.vit import Block


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' → this process's GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TubeletError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TubeletError(f"device {name!r} asked for, but torch sees no CUDA GPU")
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
    return device


def setup(device: str = "auto") -> DistInfo:
    """Join the torchrun process group when launched by torchrun; a world of one otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank, world, local_rank, dev)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, info: DistInfo, fsdp: bool = False) -> nn.Module:
    """DDP over the world, or FSDP (fully_shard per block, then the whole model); unchanged for one process."""
    if fsdp:
        from torch.distributed.fsdp import fully_shard

        if not info.distributed:
            raise TubeletError("FSDP needs several processes: launch with torchrun --nproc_per_node N")
        # the model's outputs are never modified in place, so FSDP's warning about returned views does not apply
        warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor")
        for module in model.modules():
            if isinstance(module, Block):
                fully_shard(module)
        fully_shard(model)
        return model
    if not info.distributed:
        return model
    ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module under torch.compile and DDP wrappers."""
    model = getattr(model, "_orig_mod", model)
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@contextlib.contextmanager
def no_grad_sync(model: nn.Module, skip: bool) -> Iterator[None]:
    """Skip the gradient all-reduce on micro-steps that only accumulate (DDP no_sync / FSDP2 requires_sync)."""
    inner = getattr(model, "_orig_mod", model)
    if not skip:
        yield
    elif isinstance(inner, nn.parallel.DistributedDataParallel):
        with inner.no_sync():
            yield
    elif hasattr(inner, "set_requires_gradient_sync"):
        inner.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            inner.set_requires_gradient_sync(True)
    else:
        yield


def across_ranks(value: float, info: DistInfo, op: str = "mean") -> float:
    """The mean (or max) of a float over all ranks (the value itself for one process)."""
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return t.item() if op == "max" else t.item() / info.world_size


def gather(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank."""
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


__all__ = ["DistInfo", "across_ranks", "barrier", "gather", "no_grad_sync", "pick_device", "setup", "teardown",
           "unwrap", "wrap"]
