"""Video input: exact, seek-based decoding (PyAV), sampling strategies, uint8 transforms, datasets, loaders."""

from tubelet.data.datasets import (
    ClipDataset,
    EpochBatchSampler,
    Loader,
    PretrainDataset,
    SegmentDataset,
    VideoItem,
    collate,
    list_videos,
    make_loader,
    write_shards,
)
from tubelet.data.decode import VideoInfo, VideoReader, probe, read_clip, read_clips, read_frames_at
from tubelet.data.sampling import sliding_windows

__all__ = [
    "ClipDataset", "EpochBatchSampler", "Loader", "PretrainDataset", "SegmentDataset", "VideoInfo", "VideoItem",
    "VideoReader", "collate", "list_videos", "make_loader", "probe", "read_clip", "read_clips", "read_frames_at",
    "sliding_windows", "write_shards",
]
