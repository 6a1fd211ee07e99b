"""The video catalog: embeddings of whole videos, a persistent vector store, "more like this" search."""

from tubelet.catalog.store import Catalog, ModelInfo, VideoRecord

__all__ = ["Catalog", "ModelInfo", "VideoRecord"]
