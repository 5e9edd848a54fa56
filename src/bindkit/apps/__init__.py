"""Applications of the joint space: where in an image a query matches (`locate`), detection by swapping class
embeddings (`detect`), and images drawn from any modality's embedding (`generate`)."""

from bindkit.apps.boxes import Box, boxes_from_heatmap
from bindkit.apps.generate import generate, load_generator
from bindkit.apps.locate import Location, locate
from bindkit.apps.prior import MeanShiftPrior
from bindkit.apps.query import Embedding, QueryEmbedding, embed_query

__all__ = [
    "Box", "Embedding", "Location", "MeanShiftPrior", "QueryEmbedding", "boxes_from_heatmap", "embed_query",
    "generate", "load_generator", "locate",
]  # fmt: skip
