"""Video input: source listing, exact seek-based decoding (PyAV), sampling strategies, uint8 transforms, datasets,
loaders."""

from tubelet.data.datasets import (
    ClipDataset,
    EpochBatchSampler,
    Loader,
    PretrainDataset,
    SegmentDataset,
    collate,
    make_loader,
)
from tubelet.data.decode import VideoInfo, VideoReader, probe, read_clip, read_clips, read_frames_at
from tubelet.data.sampling import sliding_windows
from tubelet.data.sources import VIDEO_EXTENSIONS, Source, list_sources, write_shards

__all__ = [
    "ClipDataset", "EpochBatchSampler", "Loader", "PretrainDataset", "SegmentDataset", "Source", "VIDEO_EXTENSIONS",
    "VideoInfo", "VideoReader", "collate", "list_sources", "make_loader", "probe", "read_clip", "read_clips",
    "read_frames_at", "sliding_windows", "write_shards",
]
