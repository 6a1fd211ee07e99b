"""The video catalog: embeddings of whole videos, a persistent vector store, "more like this" search, copies."""

from tubelet.catalog.copies import CopyReport, find_copies
from tubelet.catalog.embed import EmbedOptions, embed_video, load_embedder
from tubelet.catalog.store import Catalog, ModelInfo, VideoRecord

__all__ = [
    "Catalog", "CopyReport", "EmbedOptions", "ModelInfo", "VideoRecord", "embed_video", "find_copies", "load_embedder",
]
