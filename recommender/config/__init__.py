"""Typed settings for serving and training: YAML + environment overlay + RECSYS_* variables.

Offers :class:`ServingSettings`, :class:`TrainingSettings`, :func:`load_serving_settings`,
:func:`load_training_settings`.
"""

from recommender.config.loader import load_serving_settings, load_training_settings
from recommender.config.serving import ServingSettings
from recommender.config.training import TrainingSettings

__all__ = [
    "ServingSettings",
    "TrainingSettings",
    "load_serving_settings",
    "load_training_settings",
]
