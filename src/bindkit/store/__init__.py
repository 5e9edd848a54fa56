"""Embed collections into a LanceDB store and search them across modalities (`embed_paths`, `search`)."""

from bindkit.store.detect import DetectError, detect_modality, kinds
from bindkit.store.embed import EmbedReport, embed_paths
from bindkit.store.search import QueryError, search
from bindkit.store.store import Hit, Store, model_key

__all__ = [
    "DetectError", "EmbedReport", "Hit", "QueryError", "Store", "detect_modality", "embed_paths", "kinds",
    "model_key", "search",
]  # fmt: skip
