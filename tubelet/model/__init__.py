"""The VideoMAE model: ViT parts, masking, the pretraining/classification model, checkpoint I/O."""

from tubelet.model.masking import Masking, random_mask, running_cell_mask, tube_mask
from tubelet.model.videomae import VideoMAE, VideoMAEOutput

__all__ = ["VideoMAE", "VideoMAEOutput", "Masking", "random_mask", "running_cell_mask", "tube_mask"]
