"""The video catalog: embeddings of whole videos, a persistent vector store, "more like this" search."""

from tubelet.catalog.embed import EmbedOptions, embed_video, load_embedder
from tubelet.catalog.store import Catalog, ModelInfo, VideoRecord

__all__ = ["Catalog", "EmbedOptions", "ModelInfo", "VideoRecord", "embed_video", "load_embedder"]
