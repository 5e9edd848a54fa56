"""Applications of the joint space: images drawn from any modality's embedding (`generate`).

    from bindkit.apps import generate
    images = generate("model/", [("audio", "dog.wav", 1.0), ("image", "beach.jpg", 1.0)], pipeline="unclip/")
"""

from bindkit.apps.generate import Embedding, embed_query, generate, load_generator

__all__ = ["Embedding", "embed_query", "generate", "load_generator"]
