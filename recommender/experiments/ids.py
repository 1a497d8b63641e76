"""Recommendation ids: unique, unguessable, and carrying nothing about the user or variant."""

from __future__ import annotations

import uuid


def new_recommendation_id() -> str:
    """32 hex characters of a random UUID4 (what a storefront echoes on the events it sends)."""
    return uuid.uuid4().hex
