"""Vietnamese cosmetics recommender: a library with no HTTP in it.

Subpackages: ``data`` (sources, preparation, processed files), ``text`` (normalisation,
segmentation), ``embeddings`` (content encoders), ``scoring`` (signals and the hybrid),
``training`` (ALS/BPR/item-kNN), ``evaluation`` (protocol and metrics), ``serving`` (bundle,
engine, caches), plus ``registry``, ``config``, ``errors``, ``storage`` and ``vocabulary``.
"""

__version__ = "1.0.0"
