"""tubelet: Video Masked Autoencoders (VideoMAE v1 and v2)."""

from tubelet.catalog import Catalog, embed_video, find_copies
from tubelet.config import PRESETS, ModelConfig, preset
from tubelet.data import probe, read_clip
from tubelet.errors import CheckpointError, TubeletError, VideoError
from tubelet.model import VideoMAE, VideoMAEOutput, running_cell_mask, tube_mask
from tubelet.model.checkpoints import load_model, save_model

__version__ = "0.1.0"

__all__ = [
    "Catalog", "embed_video", "find_copies",
    "PRESETS", "CheckpointError", "ModelConfig", "TubeletError", "VideoError", "VideoMAE", "VideoMAEOutput",
    "load_model", "preset", "probe", "read_clip", "running_cell_mask", "save_model", "tube_mask",
]
