"""Content embeddings of products: text encoders (tfidf, transformers) and the .pt artifact.

Offers :func:`build_product_embeddings` (processed catalogue -> ``product_embeddings.pt`` + the
fitted encoder), :func:`load_embeddings` / :func:`save_embeddings` / :class:`ProductEmbeddings`
(the artifact), :func:`get_encoder` (a new encoder by name), :func:`load_encoder` (the fitted
encoder saved beside the embeddings, to encode queries or new products in the same space) and
:class:`TextEncoder` (the interface).
"""

from recommender.embeddings.base import TextEncoder
from recommender.embeddings.encoders import get_encoder, load_encoder
from recommender.embeddings.pipeline import build_product_embeddings, embeddings_path, encoder_dir
from recommender.embeddings.store import ProductEmbeddings, load_embeddings, save_embeddings

__all__ = [
    "ProductEmbeddings",
    "TextEncoder",
    "build_product_embeddings",
    "embeddings_path",
    "encoder_dir",
    "get_encoder",
    "load_embeddings",
    "load_encoder",
    "save_embeddings",
]
