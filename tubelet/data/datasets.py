"""The pretraining and labelled-clip datasets over listed sources (`data/sources.py`), and their loaders.

Repeated sampling: `repeat(k)` makes an epoch draw k clips from every video (each with its own window and
augmentation), so a handful of long videos fills the batches of an epoch.
Robustness: a file that cannot be decoded is logged once per process, recorded in the sample's `skipped` list,
and replaced by another item chosen deterministically; the loader sums the skips of an epoch and logs the count
at its end. Determinism: every random choice of a sample comes from a generator seeded by (seed, epoch, index),
so a sample is the same whichever worker makes it and however many workers there are.
"""

from __future__ import annotations

import abc
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from tubelet.data import sampling, transforms
from tubelet.data.decode import Size, VideoReader, frames_at, window_from
from tubelet.data.sources import Source, list_sources
from tubelet.errors import TubeletError, VideoError

log = logging.getLogger("tubelet.data")

# --- datasets -------------------------------------------------------------------------------------------------

def sample_generator(seed: int, epoch: int, index: int, attempt: int = 0, purpose: int = 0) -> torch.Generator:
    """A generator fixed by (seed, epoch, index, attempt, purpose), independent of worker and process."""
    state = np.random.SeedSequence([seed, epoch, index, attempt, purpose]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


_LOGGED: set[str] = set()


def _log_skip(message: str) -> None:
    if message not in _LOGGED:
        _LOGGED.add(message)
        log.warning("skipping %s", message)


class VideoDataset(Dataset, abc.ABC):
    """Shared machinery: items, epoch, repeated sampling, per-sample generators, bad-file skipping."""

    def __init__(self, items: Sequence[Source] | str | os.PathLike, num_frames: int, stride: int,
                 seed: int, threads: int) -> None:
        self.items = list_sources(items) if isinstance(items, str | os.PathLike) else list(items)
        if not self.items:
            raise TubeletError("the dataset has no videos")
        if num_frames <= 0 or stride <= 0:
            raise TubeletError(f"num_frames and stride must be positive, got {num_frames} and {stride}")
        self.num_frames, self.stride, self.seed, self.threads = num_frames, stride, seed, threads
        self.epoch = 0
        self.clips_per_video = 1
        self._bad: dict[str, str] = {}  # name -> reason, per process

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def num_videos(self) -> int:
        return len(self.items)

    def repeat(self, clips_per_video: int) -> None:
        """Draw `clips_per_video` clips from every video per epoch (samples i and i + n·r read the same video)."""
        if clips_per_video < 1:
            raise TubeletError(f"clips_per_video must be >= 1, got {clips_per_video}")
        self.clips_per_video = clips_per_video

    def __len__(self) -> int:
        return len(self.items) * self.clips_per_video

    def _key(self, key: int | tuple[int, int]) -> tuple[int, int]:
        index, epoch = key if isinstance(key, tuple) else (key, self.epoch)
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return index % len(self), epoch

    def _robust(self, index: int, epoch: int) -> tuple[int, dict[str, Any], list[str]]:
        """(video index used, _make's result, skipped messages): sample `index` (a clip of video index mod n),
        or deterministic replacements from the other videos."""
        skipped: list[str] = []
        order: list[int] | None = None
        n = len(self.items)
        for attempt in range(n):
            if attempt == 0:
                i = index % n
            else:
                if order is None:  # a fixed random order of the other videos for this (seed, epoch, sample)
                    perm = torch.randperm(n, generator=sample_generator(self.seed, epoch, index, purpose=1))
                    order = [int(j) for j in perm if int(j) != index % n]
                i = order[attempt - 1]
            item = self.items[i]
            if item.name in self._bad:
                skipped.append(f"{item.name}: {self._bad[item.name]}")
                continue
            try:
                seed_index = index if attempt == 0 else i  # a repeat of a video draws its own window
                return i, self._make(item, sample_generator(self.seed, epoch, seed_index, attempt)), skipped
            except Exception as e:  # noqa: BLE001 — any failure on one file must not end the epoch
                message = str(e) if isinstance(e, VideoError) else f"{item.name}: {type(e).__name__}: {e}"
                reason = message.removeprefix(f"{item.name}: ")
                self._bad[item.name] = reason
                _log_skip(message)
                skipped.append(message)
        raise VideoError(f"no video in the dataset could be decoded ({n} tried; first: {skipped[0]})")

    @abc.abstractmethod
    def _make(self, item: Source, generator: torch.Generator) -> dict[str, Any]:
        """The sample's tensors from one item (raises on a bad file)."""

    def _window(self, reader: VideoReader, item: Source, generator: torch.Generator | None,
                size: Size) -> torch.Tensor:
        """One clip [T, H, W, 3]: a random window inside the item's [start_s, end_s] (centred when generator
        is None)."""
        lo, hi = self._bounds(reader, item)
        window_s = sampling.window_seconds(self.num_frames, self.stride, reader.fps)
        offset = (sampling.random_start(hi - lo, window_s, generator) if generator is not None
                  else sampling.center_start(hi - lo, window_s))
        return window_from(reader, lo + offset, self.num_frames, self.stride, size)[0]

    @staticmethod
    def _bounds(reader: VideoReader, item: Source) -> tuple[float, float]:
        lo = item.start_s or 0.0
        if lo > 0 and 0 < reader.duration_s <= lo:
            raise VideoError(f"{item.name}: start_s {lo:g} is beyond the end of the video ({reader.duration_s:.2f} s)")
        hi = item.end_s if item.end_s is not None else reader.duration_s
        return lo, max(lo, hi)


class PretrainDataset(VideoDataset):
    """VideoMAE pretraining clips: one random window per sample and `repeats` augmented views of it (the masks are
    drawn by the pretraining recipe, per batch).

    ds[i] (or ds[(i, epoch)]) → {"video": float32 [R, 3, T, S, S] normalised, "index": video used,
    "skipped": ["path: reason", …]}.
    Frames are scaled during decoding to a short side of `short_side` (default image_size·320/224, the usual
    Kinetics preprocessing) before the multi-scale crop.
    """

    def __init__(self, items: Sequence[Source] | str | os.PathLike, num_frames: int = 16, stride: int = 4,
                 image_size: int = 224, repeats: int = 1, seed: int = 0, short_side: int | None = None,
                 flip: bool = True, threads: int = 1) -> None:
        super().__init__(items, num_frames, stride, seed, threads)
        if repeats <= 0:
            raise TubeletError(f"repeats must be positive, got {repeats}")
        self.image_size, self.repeats, self.flip = image_size, repeats, flip
        self.short_side = short_side or round(image_size * 320 / 224)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, epoch = self._key(key)
        used, sample, skipped = self._robust(index, epoch)
        return {**sample, "index": used, "skipped": skipped}

    def _make(self, item: Source, generator: torch.Generator) -> dict[str, Any]:
        with VideoReader(item.input(), self.threads, name=item.name) as reader:
            clip = self._window(reader, item, generator, self.short_side)  # [T, H, W, 3] uint8
        views = [transforms.pretrain_view(clip, self.image_size, generator, self.flip) for _ in range(self.repeats)]
        return {"video": torch.stack(views)}  # [R, 3, T, S, S]


class ClipDataset(VideoDataset):
    """Labelled clips for fine-tuning (train=True) and evaluation (train=False).

    train: one random window, `repeats` views (random resized crop + optional flip; turn flip off when
    left/right carries the label). test: `num_clips` windows spread uniformly over the item × `num_crops`
    (1 centre or 3 along the long side) views, short side resized to image_size.
    ds[i] → {"video": float32 [V, 3, T, S, S], "label": int64 [V], "index": int64 [V], "skipped": [...]}.
    `classes`: label names in class-index order (default: sorted labels of the items).
    """

    def __init__(self, items: Sequence[Source] | str | os.PathLike, classes: Sequence[str] | None = None,
                 num_frames: int = 16, stride: int = 4, image_size: int = 224, train: bool = True,
                 num_clips: int = 1, num_crops: int = 1, repeats: int = 1, flip: bool = True,
                 scale: tuple[float, float] = (0.08, 1.0), short_side: int | None = None, seed: int = 0,
                 threads: int = 1) -> None:
        super().__init__(items, num_frames, stride, seed, threads)
        unlabelled = [it.name for it in self.items if it.label is None]
        if unlabelled:
            raise TubeletError(f"{len(unlabelled)} item(s) have no label, e.g. {unlabelled[0]}")
        self.classes = list(classes) if classes is not None else sorted({it.label for it in self.items})  # type: ignore
        self.class_index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted({it.label for it in self.items} - set(self.class_index))  # type: ignore[arg-type]
        if unknown:
            raise TubeletError(f"label(s) not among the classes: {', '.join(unknown[:5])}")
        if num_crops not in (1, 3) or num_clips <= 0 or repeats <= 0:
            raise TubeletError("num_crops must be 1 or 3; num_clips and repeats positive")
        self.image_size, self.train, self.num_clips, self.num_crops = image_size, train, num_clips, num_crops
        self.repeats, self.flip, self.scale = repeats, flip, scale
        self.short_side = short_side or (round(image_size * 320 / 224) if train else image_size)

    @property
    def views(self) -> int:
        return self.repeats if self.train else self.num_clips * self.num_crops

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, epoch = self._key(key)
        used, sample, skipped = self._robust(index, epoch)
        label = self.class_index[self.items[used].label]  # type: ignore[index]
        v = sample["video"].shape[0]
        return {**sample, "label": torch.full((v,), label, dtype=torch.int64),
                "index": torch.full((v,), used, dtype=torch.int64), "skipped": skipped}

    def _make(self, item: Source, generator: torch.Generator) -> dict[str, Any]:
        with VideoReader(item.input(), self.threads, name=item.name) as reader:
            if self.train:
                clip = self._window(reader, item, generator, self.short_side)
                views = [transforms.train_view(clip, self.image_size, generator, self.flip, self.scale)
                         for _ in range(self.repeats)]
            else:
                lo, hi = self._bounds(reader, item)
                window_s = sampling.window_seconds(self.num_frames, self.stride, reader.fps)
                views = []
                for start in sampling.uniform_starts(hi - lo, window_s, self.num_clips):
                    clip = window_from(reader, lo + start, self.num_frames, self.stride, self.short_side)[0]
                    views += transforms.test_views(clip, self.image_size, self.num_crops)
        return {"video": torch.stack(views)}


class SegmentDataset(ClipDataset):
    """ClipDataset with TSN/SSv2 sampling: num_frames frames, one per equal segment of the item (random within
    the segment when training, the middle when testing), instead of a dense window."""

    def _make(self, item: Source, generator: torch.Generator) -> dict[str, Any]:
        with VideoReader(item.input(), self.threads, name=item.name) as reader:
            lo, hi = self._bounds(reader, item)
            times = sampling.segment_times(hi - lo, self.num_frames, generator if self.train else None, lo)
            clip, _ = frames_at(reader, times, self.short_side)
        if self.train:
            views = [transforms.train_view(clip, self.image_size, generator, self.flip, self.scale)
                     for _ in range(self.repeats)]
        else:
            views = transforms.test_views(clip, self.image_size, self.num_crops)
        return {"video": torch.stack(views)}


# --- loader ---------------------------------------------------------------------------------------------------

class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of (index, epoch): shuffled by (seed, epoch) like DistributedSampler, this rank's share only,
    starting at `start_batch` without touching the batches before it."""

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True, drop_last: bool = True) -> None:
        if batch_size <= 0 or not 0 <= rank < world_size:
            raise TubeletError(f"bad loader setting: batch_size={batch_size}, rank={rank}, world_size={world_size}")
        self.n, self.batch_size, self.seed, self.rank, self.world_size = n, batch_size, seed, rank, world_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.epoch, self.start_batch = 0, 0

    def indices(self) -> list[int]:
        """This rank's item indices for the epoch (DistributedSampler's shuffle, padding and striding)."""
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        else:
            order = list(range(self.n))
        if self.drop_last:
            order = order[:self.n - self.n % self.world_size]
        else:
            pad = -self.n % self.world_size
            order += (order * (pad // max(1, self.n) + 1))[:pad]
        return order[self.rank::self.world_size]

    def __len__(self) -> int:
        per_rank = (self.n // self.world_size) if self.drop_last else -(-self.n // self.world_size)
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        idx = self.indices()
        for b in range(self.start_batch, len(self)):
            yield [(i, self.epoch) for i in idx[b * self.batch_size:(b + 1) * self.batch_size]]


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate views: video [B·V, …], label/index [B·V]; skipped lists joined."""
    out: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if key == "skipped":
            out[key] = [m for v in values for m in v]
        elif key == "index" and not torch.is_tensor(values[0]):
            reps = [s["video"].shape[0] for s in samples]
            out[key] = torch.repeat_interleave(torch.tensor(values, dtype=torch.int64), torch.tensor(reps))
        else:
            out[key] = torch.cat(values)
    return out


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # decoding and transforms run one per worker; threads would fight over cores


class Loader:
    """Batches of a dataset for one rank. Iterate for one epoch; each full pass moves on to the next epoch;
    set_epoch(e, start_batch) jumps (exact resume). `skipped` lists the files skipped in the current epoch."""

    def __init__(self, dataset: Dataset, sampler: EpochBatchSampler, loader: DataLoader) -> None:
        self.dataset, self.sampler, self.loader = dataset, sampler, loader
        self.skipped: list[str] = []

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        if not 0 <= start_batch <= len(self):
            raise TubeletError(f"start_batch {start_batch} outside the epoch's {len(self)} batches")
        self.sampler.epoch, self.sampler.start_batch = epoch, start_batch
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.skipped = []
        for batch in self.loader:
            self.skipped.extend(batch["skipped"])
            yield batch
        if self.skipped:
            log.warning("epoch %d: skipped %d undecodable file(s) (%d distinct)", self.epoch, len(self.skipped),
                        len(set(self.skipped)))
        self.set_epoch(self.epoch + 1)


def make_loader(dataset: Dataset, batch_size: int, workers: int = 2, seed: int = 0, epoch: int = 0,
                start_batch: int = 0, rank: int = 0, world_size: int = 1, shuffle: bool = True,
                drop_last: bool = True, prefetch: int = 2) -> Loader:
    """A Loader over `dataset` with persistent worker processes, prefetching and (with CUDA) pinned memory."""
    sampler = EpochBatchSampler(len(dataset), batch_size, seed, rank, world_size, shuffle, drop_last)
    loader = DataLoader(
        dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate,
        pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0,
        prefetch_factor=prefetch if workers > 0 else None, worker_init_fn=_worker_init if workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
    )
    out = Loader(dataset, sampler, loader)
    out.set_epoch(epoch, start_batch)
    return out
