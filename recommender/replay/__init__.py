"""Prequential (replay) evaluation: build before a cut-off time, stream the rest as events.

Sits above serving and training (it builds a model with the training pipeline and serves it with
the service's engine and live state), below the commands: :func:`run_replay` is the body of
``evaluate --replay``; :func:`replay_events` the streaming loop; :func:`summarise` and
:func:`format_replay_table` the numbers.
"""

from recommender.replay.run import interactions_to_events, run_replay
from recommender.replay.stream import VARIANTS, Observation, StreamCounts, replay_events
from recommender.replay.summary import REPORT_SEGMENTS, format_replay_table, summarise

__all__ = [
    "REPORT_SEGMENTS",
    "VARIANTS",
    "Observation",
    "StreamCounts",
    "format_replay_table",
    "interactions_to_events",
    "replay_events",
    "run_replay",
    "summarise",
]
