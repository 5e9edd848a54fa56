"""Applications of the joint space: where in an image a query matches (`locate`), and detection by swapping class
embeddings (`detect`)."""

from bindkit.apps.boxes import Box, boxes_from_heatmap
from bindkit.apps.locate import Location, locate
from bindkit.apps.query import QueryEmbedding, query_embedding

__all__ = ["Box", "Location", "QueryEmbedding", "boxes_from_heatmap", "locate", "query_embedding"]
