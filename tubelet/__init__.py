"""tubelet: Video Masked Autoencoders (VideoMAE v1 and v2).

The names below load on first use (PEP 562), so `tubelet --help` and other light commands start without torch.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_WHERE = {
    "Catalog": "tubelet.catalog", "embed_video": "tubelet.catalog", "find_copies": "tubelet.catalog",
    "PRESETS": "tubelet.config", "ModelConfig": "tubelet.config", "preset": "tubelet.config",
    "probe": "tubelet.data", "read_clip": "tubelet.data",
    "CheckpointError": "tubelet.errors", "TubeletError": "tubelet.errors", "VideoError": "tubelet.errors",
    "VideoMAE": "tubelet.model", "VideoMAEOutput": "tubelet.model", "running_cell_mask": "tubelet.model",
    "tube_mask": "tubelet.model", "load_model": "tubelet.model.checkpoints", "save_model": "tubelet.model.checkpoints",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'tubelet' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
