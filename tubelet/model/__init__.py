"""The VideoMAE model: ViT parts, masking, the pretraining/classification model, checkpoint I/O."""

from tubelet.model.masking import make_mask, random_mask, running_cell_mask, tube_mask
from tubelet.model.videomae import VideoMAE, VideoMAEOutput

__all__ = ["VideoMAE", "VideoMAEOutput", "make_mask", "random_mask", "running_cell_mask", "tube_mask"]
